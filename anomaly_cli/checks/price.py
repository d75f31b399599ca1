"""price: line items sold far below or above their catalog price."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.checks._price_probes import catalog_first, catalog_judgeable, has_items
from anomaly_cli.errors import UsageError
from anomaly_cli.model import Finding, Severity
from anomaly_cli.params import Param
from anomaly_cli.wording import CENT, long_date, money, percent, severity_word

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class PricedItem:
    """One line item as measured: prices in whole cents (exact on every engine)."""

    transaction_id: Any
    item_id: Any
    customer_id: Any
    customer_name: str | None
    product_id: Any
    product_name: str | None
    transaction_date: datetime | None
    status: str | None
    quantity: int | None
    catalog_cents: int | None
    sold_cents: int | None


def severity_for(deviation_pct: Decimal) -> Severity:
    """> 50 % critical, 25-50 % high, 10-25 % medium, otherwise low (by |deviation|)."""
    size = abs(deviation_pct)
    if size > 50:
        return Severity.CRITICAL
    if size >= 25:
        return Severity.HIGH
    if size >= 10:
        return Severity.MEDIUM
    return Severity.LOW


def skip_reason(item: PricedItem) -> str | None:
    """Why an item cannot be judged, or None when it can."""
    if item.catalog_cents is None:
        return "no_catalog_price"
    if item.catalog_cents <= 0:
        return "nonpositive_catalog_price"
    if item.sold_cents is None:
        return "no_sold_price"
    if item.transaction_date is None:
        return "no_date"
    return None


def judge(item: PricedItem, below: Decimal, above: Decimal, currency: str) -> Finding | None:
    """The finding for a judgeable item outside [below, above] x catalog, else None."""
    assert item.catalog_cents is not None and item.sold_cents is not None
    catalog = Decimal(item.catalog_cents) / HUNDRED
    sold = Decimal(item.sold_cents) / HUNDRED
    if catalog * below <= sold <= catalog * above:
        return None
    quantity = item.quantity if item.quantity is not None else 1
    deviation = (sold - catalog) / catalog * HUNDRED
    severity = severity_for(deviation)
    direction = "discount" if sold < catalog else "markup"
    assert item.transaction_date is not None
    fields = {
        "transaction_id": item.transaction_id,
        "item_id": item.item_id,
        "customer_id": item.customer_id,
        "customer_name": item.customer_name,
        "product_id": item.product_id,
        "product_name": item.product_name,
        "transaction_date": item.transaction_date,
        "status": item.status,
        "quantity": quantity,
        "catalog_price": catalog.quantize(CENT),
        "sold_price": sold.quantize(CENT),
        "deviation_pct": deviation.quantize(CENT),
        "direction": direction,
        "revenue_impact": ((catalog - sold) * quantity).quantize(CENT),
    }
    return Finding(
        check=PriceCheck.name,
        key=f"price:{item.transaction_id}:{item.item_id}",
        severity=severity,
        message=template_line(fields, severity, currency),
        fields=fields,
    )


def template_line(fields: dict[str, Any], severity: Severity, currency: str) -> str:
    """The seed's sentence, filled deterministically."""
    impact = "significant revenue loss" if fields["direction"] == "discount" else "customer overcharged"
    return (
        f"Transaction ID {fields['transaction_id']}: Customer {fields['customer_name'] or 'unknown'} "
        f"(ID: {fields['customer_id']}) purchased {fields['product_name'] or fields['product_id']} "
        f"on {long_date(fields['transaction_date'])}. The product has an actual catalog price of "
        f"{money(fields['catalog_price'], currency)} but was sold for {money(fields['sold_price'], currency)}, "
        f"resulting in a {percent(abs(fields['deviation_pct']))} {fields['direction']}. "
        f"This represents a {severity_word(severity)} price anomaly - {impact}."
    )


@register
class PriceCheck(Check):
    """Line items sold below --below or above --above times their catalog price.

    Severity by the size of the deviation: over 50 % critical, 25-50 % high, 10-25 % medium,
    otherwise low. revenue_impact = (catalog - sold) x quantity (negative for a markup).
    Prices are compared exactly, in whole cents. Items that cannot be judged are skipped and
    counted in the summary by reason: no or a non-positive catalog price, no sold price, no
    date, and values that are not what the column holds (a date of '12/09/2025', a price of
    'abc' or 1e30, a quantity of 1.5: bad_date, bad_price, bad_catalog_price, bad_quantity).
    A window without transactions, or whose transactions have no line items, is not evaluated.
    """

    name = "price"
    llm_target = ("Transaction ID [ID]: Customer [NAME] (ID: [CUSTOMER_ID]) purchased [PRODUCT] on [DATE]. The "
                  "product has an actual catalog price of [CATALOG] but was sold for [SOLD], resulting in a "
                  "[PCT]% [discount|markup]. This represents a [SEVERITY] price anomaly - [IMPACT].")
    llm_advice = "the catalog price, coupon and discount rules of the products named, and who entered those sales"
    order = 10
    params = (
        Param("below", Decimal("0.75"), "flag items sold below this fraction of the catalog price",
              kind=Decimal, exclusive_minimum=0),
        Param("above", Decimal("1.05"), "flag items sold above this multiple of the catalog price",
              kind=Decimal, exclusive_minimum=0),
    )
    fields = (
        "transaction_id", "item_id", "customer_id", "customer_name", "product_id", "product_name",
        "transaction_date", "status", "quantity", "catalog_price", "sold_price", "deviation_pct",
        "direction", "revenue_impact",
    )
    columns = (
        Column("transaction_id", "Txn", "right"),
        Column("transaction_date", "Date"),
        Column("customer_name", "Customer"),
        Column("product_name", "Product"),
        Column("catalog_price", "Catalog", "right"),
        Column("sold_price", "Sold", "right"),
        Column("deviation_pct", "Dev %", "right"),
        Column("revenue_impact", "Impact", "right"),
    )
    totals = ("revenue_impact",)
    needs = {
        "transactions": ("transaction_id", "customer_id", "transaction_date", "status"),
        "transaction_items": ("item_id", "transaction_id", "product_id", "product_name",
                              "product_price", "quantity"),
        "products": ("product_id", "product_name", "product_price"),
        "customers": ("customer_id", "customer_name"),
    }

    # The window on the date, and items found by their transaction (--since); the same date
    # index as sales and failed, so one index serves all three. Without a window, SQLite reads
    # the items product by product from the third (see catalog_first), holding what the WHERE
    # clause tests, so that an item is judged without a lookup of its catalog row.
    indexes = (
        ("transactions", ("transaction_date", "status", "total_amount")),
        ("transaction_items", ("transaction_id",)),
        ("transaction_items", ("product_id", "product_price", "quantity")),
    )

    @classmethod
    def validate(cls, params: dict[str, Any]) -> None:
        for name in ("below", "above"):
            # The comparison multiplies cents by the threshold's fraction: keep it in BIGINT range.
            if -params[name].normalize().as_tuple().exponent > 6:
                raise UsageError(f"--{name} {params[name]} has more than 6 decimal places")
        if params["below"] > 1:
            raise UsageError(f"--below {params['below']} is above 1: every item at catalog price would be flagged")
        if params["above"] < 1:
            raise UsageError(f"--above {params['above']} is below 1: every item at catalog price would be flagged")

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        below, above = ctx.params["below"], ctx.params["above"]
        streamed = False
        for item in measure(ctx, below, above):
            streamed = True
            reason = skip_reason(item)
            if reason is not None:
                ctx.stats.skip(reason)
                continue
            finding = judge(item, below, above, ctx.currency)
            if finding is not None:
                yield finding
        # measure() streams only the items worth a look, so no row does not mean "all judged":
        # a shop that loads transactions without their line items has nothing to judge. An item
        # streamed already proves there are some: the probe only runs when none was.
        if not streamed and ctx.stats.reason is None and not has_items(ctx):
            ctx.stats.not_evaluated("no line items in the window")


def measure(ctx: CheckContext, below: Decimal, above: Decimal) -> Iterator[PricedItem]:
    """Stream the items the database flags, counting those it cannot judge by reason.

    The WHERE clause is a cheap superset of the flagged items (plain comparisons, widened by
    the rounding to cents and the float error), and of every item that cannot be judged; the
    exact comparison in whole cents is judge()'s, in Python, on those few rows.
    """
    import sqlalchemy as sa

    from anomaly_cli.db import cents, has_rows, table, window_bounds
    from anomaly_cli.sqlfn import (MONEY_LIMIT, QUANTITY_LIMIT, bare, datetime_columns, is_bad_number,
                                   lenient_text, stream, to_datetime, usable_date)

    t = table(ctx.schema, "transactions")
    ti = table(ctx.schema, "transaction_items")
    p = table(ctx.schema, "products")
    c = table(ctx.schema, "customers")
    # Counted first: a second query cannot run while a streamed result is open on MariaDB.
    for reason, count in count_undated(ctx, t, ti).items():
        ctx.stats.skip(reason, count)

    # A sold price rounds to cents by at most half a cent, as does the catalog price: the
    # margins keep every item the exact test flags; the relative factor covers float error.
    low, high = float(below), float(above)
    bounds = window_bounds(t.c.transaction_date, ctx.window.since, ctx.window.until)
    sqlite = ctx.conn.dialect.name == "sqlite"
    judgeable_catalog = sqlite and catalog_judgeable(ctx.conn, p, high)
    by_product = sqlite and not bounds and catalog_first(ctx.conn, ti, p)
    if by_product:
        # Each catalog row's edges computed once, not once per item (a fifth of the query).
        price = p.c.product_price
        p = sa.select(p.c.product_id, p.c.product_name, price,
                      (price * (low * (1 + 1e-9)) + (0.005 * (1 + low) + 0.001)).label("low_edge"),
                      (price * (high * (1 - 1e-9)) - (0.005 * (1 + high) + 0.001)).label("high_edge"),
                      ).cte("anomaly_catalog").prefix_with("MATERIALIZED")
        low_edge, high_edge = p.c.low_edge, p.c.high_edge
    catalog, sold, quantity = p.c.product_price, ti.c.product_price, ti.c.quantity
    if not by_product:
        low_edge = catalog * (low * (1 + 1e-9)) + (0.005 * (1 + low) + 0.001)
        high_edge = catalog * (high * (1 - 1e-9)) - (0.005 * (1 + high) + 0.001)
    if judgeable_catalog:
        # Catalog prices are NULL, 0 or numbers in (0, MONEY_LIMIT / above): then one range test
        # per item also catches what cannot be judged. NULL is not 1 (no catalog or sold price);
        # a catalog price of 0 makes the range empty; a sold price that is text or a blob sorts
        # after every number, and one beyond +-MONEY_LIMIT falls outside. One more test catches
        # every bad quantity: two tests per item instead of eleven, a third of the query's time.
        # CAST(q AS INTEGER) % limit differs from q for text, blobs, fractions and anything of
        # magnitude >= limit (bare: compared as stored, whatever the column's affinity).
        whole = sa.cast(bare(quantity), sa.Integer).op("%")(int(QUANTITY_LIMIT))
        where = sa.or_(sa.between(bare(sold), low_edge, high_edge).is_not(sa.true()),
                       whole.is_distinct_from(bare(quantity)))
    else:
        where = sa.or_(sold < low_edge, sold > high_edge, *unjudgeable_items(ctx, catalog, sold, quantity))
    bad_quantity = is_bad_number(quantity, QUANTITY_LIMIT, integer=True)
    # Only for the rows that pass the WHERE clause: why an item cannot be judged, if it cannot.
    reason = sa.case(
        (catalog.is_(None), "no_catalog_price"),
        (is_bad_number(catalog, MONEY_LIMIT), "bad_catalog_price"),
        (catalog <= 0, "nonpositive_catalog_price"),
        (sold.is_(None), "no_sold_price"),
        (is_bad_number(sold, MONEY_LIMIT), "bad_price"),
        (sa.and_(quantity.is_not(None), bad_quantity), "bad_quantity"),
        else_=None,
    )
    judgeable = reason.is_(None)
    raw_date, normalized_date = datetime_columns(t.c.transaction_date)
    columns = (
        t.c.transaction_id, ti.c.item_id, t.c.customer_id, lenient_text(c.c.customer_name),
        lenient_text(ti.c.product_id), lenient_text(sa.func.coalesce(p.c.product_name, ti.c.product_name)),
        sa.case((usable_date(t.c.transaction_date), raw_date), else_=None),
        sa.case((usable_date(t.c.transaction_date), normalized_date), else_=None),
        lenient_text(t.c.status),
        sa.case((judgeable, quantity), else_=None),
        sa.case((judgeable, cents(catalog)), else_=None),
        sa.case((judgeable, cents(sold)), else_=None),
        reason,
    )
    if not has_rows(ctx.conn, t, *bounds):
        ctx.stats.not_evaluated("no transactions in the window")
        return
    if bounds:
        # The window narrows the transactions: let the engine find them first (by a date index).
        source = (ti.join(t, ti.c.transaction_id == t.c.transaction_id)
                  .outerjoin(p, ti.c.product_id == p.c.product_id))
    elif by_product:
        # Each catalog product, then its items in the order of the declared index on their
        # product: one index range per product instead of one product lookup per item (half
        # the query). The + keeps SQLite from turning the loops round. An inner join loses
        # only items without a catalog row, and catalog_first() has just seen there are none.
        source = (p.join(ti, ti.c.product_id == bare(p.c.product_id))
                  .join(t, ti.c.transaction_id == t.c.transaction_id))
    else:
        # Items and their catalog price first, the transaction only for the few that pass.
        source = (ti.outerjoin(p, ti.c.product_id == p.c.product_id)
                  .join(t, ti.c.transaction_id == t.c.transaction_id))
    stmt = (
        sa.select(*columns)
        .select_from(source.outerjoin(c, t.c.customer_id == c.c.customer_id))
        .where(where, *bounds)
        .order_by(t.c.transaction_id, ti.c.item_id)
    )
    # MySQL/MariaDB otherwise drive the join from a covering index on transactions and fetch
    # every item by its transaction: 30 s instead of 5 s at 1M transactions.
    for name in ("mysql", "mariadb"):
        stmt = stmt.prefix_with("STRAIGHT_JOIN", dialect=name)
    rows = stream(ctx.conn, stmt)
    for tid, iid, cid, name, pid, pname, raw, normalized, status, qty, catalog_c, sold_c, why in rows:
        if raw is None:
            continue  # undated or badly dated: counted by count_undated
        when = to_datetime(raw, normalized)
        if when is None:
            ctx.stats.skip("bad_date")  # a form SQLite reads and Python does not
            continue
        if why is not None:
            ctx.stats.skip(why)
            continue
        yield PricedItem(tid, iid, cid, name, pid, pname, when, status,
                         None if qty is None else int(qty), int(catalog_c), int(sold_c))






def unjudgeable_items(ctx: CheckContext, catalog: Any, sold: Any, quantity: Any) -> list[Any]:
    """Cheap supersets of every reason an item cannot be judged, tested on every row."""
    import sqlalchemy as sa

    from anomaly_cli.sqlfn import MONEY_LIMIT, QUANTITY_LIMIT

    unjudgeable = [catalog.is_(None), catalog <= 0, sold.is_(None)]
    if ctx.conn.dialect.name == "sqlite":
        # On SQLite text and blobs sort after every number, so 'abc' >= 1e15 holds: one
        # comparison catches them (typeof() on every row cost a third of the query).
        return unjudgeable + [catalog >= MONEY_LIMIT, sold >= MONEY_LIMIT, sold <= -MONEY_LIMIT,
                              quantity >= QUANTITY_LIMIT, quantity <= -QUANTITY_LIMIT,
                              sa.cast(quantity, sa.Integer) != quantity]
    # Typed columns hold numbers; only a mapped column wider than NUMERIC(18,2) could hold
    # 1e30. PostgreSQL's NUMERIC arithmetic makes every term cost, so one per column.
    return unjudgeable + [sa.func.abs(catalog) + sa.func.abs(sold) >= MONEY_LIMIT,
                          sa.func.abs(quantity) >= QUANTITY_LIMIT]


def count_undated(ctx: CheckContext, t: Any, ti: Any) -> dict[str, int]:
    """Items whose transaction has no date (no_date) or one that is not a date (bad_date), anywhere.

    Transactions are classified first (one pass over one table, or an index lookup); their
    items are counted only when there are any, which in a healthy shop there are not.
    """
    import sqlalchemy as sa

    from anomaly_cli.sqlfn import reason_counts, unusable_date

    date = t.c.transaction_date
    if no_unusable_date(ctx.conn, t):
        return {}
    kind = sa.case((date.is_(None), "no_date"), else_="bad_date")
    unusable = unusable_date(date)
    found = reason_counts(ctx.conn.execute(
        sa.select(kind, sa.func.count()).where(unusable).group_by(kind)))
    if not found:
        return {}
    items = (sa.select(kind, sa.func.count())
             .select_from(ti.join(t, ti.c.transaction_id == t.c.transaction_id))
             .where(unusable).group_by(kind))
    return reason_counts(ctx.conn.execute(items))


def no_unusable_date(conn: Any, t: Any) -> bool:
    """True when SQLite's bucket-key index (key_index.index_key, declared by sales) proves that
    every transaction has a usable date: its key, computed when the row was written, names the
    rows without a date (NULL) and those with no usable one ('!', or a key Python refuses), so a
    GROUP BY over the index (no sort, no date parsed: a third of the full count's time at 1M)
    shows whether there are any. The same rows as unusable_date: the key's checks are
    usable_date's, its fast path refusing only what usable_date refuses (tests/test_bucket_keys).
    Without the index, or with any unusable row, False: the full count runs."""
    if conn.dialect.name != "sqlite":
        return False
    import sqlalchemy as sa

    from anomaly_cli.bucket_keys import HOUR, key_of, place
    from anomaly_cli.key_index import has_key_index

    if not has_key_index(conn, t):
        return False
    key = key_of(t.c.transaction_date, HOUR)
    return all(isinstance(place(k, HOUR), int) for k, in conn.execute(sa.select(key).group_by(key)))
