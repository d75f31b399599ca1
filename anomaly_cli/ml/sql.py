"""The behavioural features, measured in SQL: window functions over each customer's history.

One statement per use (a training sample, or the window to score), portable across SQLite
3.28+, MariaDB 10.2+ and PostgreSQL 11+ (ROWS and numeric RANGE frames). Every column it
returns is an integer (cents, counts, epoch seconds), so that every engine hands Python the
same numbers and the same model gives the same scores everywhere; the floating-point
arithmetic happens once, in Python (anomaly_cli.ml.features).

"The customer's usual" is a running aggregate over their earlier transactions (a ROWS frame
ending one row before the current one): running mean and standard deviation of the amount,
not a running median, because no engine but PostgreSQL has an ordered-set aggregate usable
as a window function, and even there not with a moving frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection

    from anomaly_cli.config import SchemaMap

HOUR, DAY, WEEK = 3600, 86400, 7 * 86400
BIN_SECONDS = 3 * HOUR  # the hour-of-day is compared in 3-hour bins: 8 per day
BINS, WEEKDAYS = 8, 7
CHUNK = 2000  # rows fetched per round trip (yield_per)

# The integer columns of one measured transaction, in the order of the SELECT.
RAW_COLUMNS = (
    "transaction_id", "customer_id", "transaction_date", "ts", "amount", "failed",
    "items", "products", "new_products", "priced_sold", "priced_catalog",
    "n_prior", "sum_prior", "sq_prior", "failed_prior", "items_prior", "new_prior",
    "prev_ts", "first_ts", "n_1h", "amount_1h", "n_24h", "amount_24h", "failed_24h", "n_7d",
    "same_bin", "same_weekday", "streak", "bin", "weekday",
)


@dataclass(frozen=True, slots=True)
class Raw:
    """One transaction as measured: integers only (amounts in cents, times in epoch seconds)."""

    transaction_id: Any
    customer_id: Any
    transaction_date: datetime
    ts: int
    amount: int
    failed: int
    items: int
    products: int
    new_products: int
    priced_sold: int
    priced_catalog: int
    n_prior: int  # the customer's earlier transactions within the history horizon
    sum_prior: int  # their amounts, cents
    sq_prior: int  # sum of squared amounts in whole currency units (cents would overflow BIGINT)
    failed_prior: int
    items_prior: int
    new_prior: int
    prev_ts: int | None
    first_ts: int
    n_1h: int  # transactions in the last hour, this one included
    amount_1h: int
    n_24h: int
    amount_24h: int
    failed_24h: int
    n_7d: int
    same_bin: int  # earlier transactions in the same 3-hour bin of the day
    same_weekday: int
    streak: int  # consecutive rises of the amount ending here (0: not above the previous one)
    bin: int
    weekday: int  # 0 = Monday


def _int(value: Any) -> int:
    # MariaDB returns SUM() as Decimal, PostgreSQL SUM(bigint) as Decimal: one integer type for all.
    return 0 if value is None else int(value)


def to_raw(row: Any) -> Raw:
    values = list(row)
    out: list[Any] = values[:3]
    for name, value in zip(RAW_COLUMNS[3:], values[3:]):
        out.append(None if name == "prev_ts" and value is None else _int(value))
    return Raw(*out)


def usable(t: Any) -> list[Any]:
    """The transactions the features are measured on: a usable date (sqlfn.usable_date), a
    customer id that is one, and an amount that is a number below MONEY_LIMIT (or none). The
    others are counted by count_unusable; on engines with real types only the NULL tests remain."""
    import sqlalchemy as sa

    from anomaly_cli.sqlfn import MONEY_LIMIT, bad_key, is_bad_number, usable_date

    amount = t.c.total_amount
    return [usable_date(t.c.transaction_date), t.c.customer_id.is_not(None), sa.not_(bad_key(t.c.customer_id)),
            sa.or_(amount.is_(None), sa.not_(is_bad_number(amount, MONEY_LIMIT)))]


def count_unusable(conn: Connection, schema: SchemaMap, since: datetime | None,
                   until: datetime | None) -> dict[str, int]:
    """Transactions left out of the features, by reason: no or a bad date (anywhere), no or a bad
    customer id, or an amount that is no number below MONEY_LIMIT (in the window scored)."""
    import sqlalchemy as sa

    from anomaly_cli.db import table, window_bounds
    from anomaly_cli.sqlfn import MONEY_LIMIT, bad_key, is_bad_number, reason_counts, unusable_date

    t = table(schema, "transactions")
    date, customer, amount = t.c.transaction_date, t.c.customer_id, t.c.total_amount
    bad_amount = sa.and_(amount.is_not(None), is_bad_number(amount, MONEY_LIMIT))
    kind = sa.case((date.is_(None), "no_date"), (unusable_date(date), "bad_date"),
                   (customer.is_(None), "no_customer"), (bad_key(customer), "bad_customer"),
                   else_="bad_amount")
    in_window = sa.and_(sa.or_(customer.is_(None), bad_key(customer), bad_amount),
                        *window_bounds(date, since, until))
    stmt = sa.select(kind, sa.func.count()).where(sa.or_(unusable_date(date), in_window)).group_by(kind)
    return reason_counts(conn.execute(stmt))


def feature_statement(schema: SchemaMap, lo: datetime | None, until: datetime | None, since: datetime | None,
                      *, sample_step: int | None = None, train_from: datetime | None = None,
                      failed_status: str = "FAILED") -> sa.Select:
    """Measure every transaction dated in [lo, until) against its customer's history in that range.

    Returns the transactions dated in [since, until), ordered by customer and time (to score),
    preceded, when `sample_step` is given, by every `sample_step`-th transaction (by id) dated
    in [train_from, since) (the training sample: later than `lo`, so that its transactions are
    measured against a history too, like the ones scored). One pass over the data serves both: reading the
    history twice cost twice the time at a million rows.
    """
    import sqlalchemy as sa

    from anomaly_cli.db import cents, epoch_seconds, table, window_bounds
    from anomaly_cli.sqlfn import MONEY_LIMIT, QUANTITY_LIMIT, int_div, is_bad_number

    t = table(schema, "transactions")
    i = table(schema, "transaction_items")
    p = table(schema, "products")
    in_range = [*usable(t), *window_bounds(t.c.transaction_date, lo, until)]

    # Basket: items, distinct products, products this customer never bought before (within
    # the horizon), and the sold vs catalog value of the items both prices are known for.
    # A quantity or price that is no number below its limit (SQLite: 'two', a blob, 1e308) leaves
    # the line unpriced (a quantity of 1), tested here, in the same pass: its cents would
    # overflow the sums. Elsewhere these are range tests.
    good_qty = sa.or_(i.c.quantity.is_(None), sa.not_(is_bad_number(i.c.quantity, QUANTITY_LIMIT, integer=True)))
    qty = sa.func.coalesce(sa.case((good_qty, i.c.quantity), else_=None), 1)
    sold, catalog = cents(i.c.product_price) * qty, cents(p.c.product_price) * qty
    nth = sa.func.row_number().over(partition_by=(t.c.customer_id, i.c.product_id),
                                    order_by=(t.c.transaction_date, t.c.transaction_id))
    priced = sa.and_(p.c.product_price > 0, i.c.product_price.is_not(None), good_qty,
                     sa.not_(is_bad_number(p.c.product_price, MONEY_LIMIT)),
                     sa.not_(is_bad_number(i.c.product_price, MONEY_LIMIT)),
                     sa.func.abs(p.c.product_price * qty) < MONEY_LIMIT,
                     sa.func.abs(i.c.product_price * qty) < MONEY_LIMIT)
    lines = (
        sa.select(i.c.transaction_id.label("tid"), i.c.product_id.label("pid"), qty.label("qty"),
                  sa.case((priced, sold), else_=0).label("sold"),
                  sa.case((priced, catalog), else_=0).label("catalog"), nth.label("nth"))
        .select_from(i.join(t, i.c.transaction_id == t.c.transaction_id)
                     .outerjoin(p, i.c.product_id == p.c.product_id))
        .where(*in_range)
        .subquery("lines")
    )
    basket = (
        sa.select(lines.c.tid, sa.func.sum(lines.c.qty).label("items"),
                  sa.func.count(sa.distinct(lines.c.pid)).label("products"),
                  sa.func.sum(sa.case((lines.c.nth == 1, 1), else_=0)).label("new_products"),
                  sa.func.sum(lines.c.sold).label("priced_sold"),
                  sa.func.sum(lines.c.catalog).label("priced_catalog"))
        .group_by(lines.c.tid)
        .subquery("basket")
    )

    ts = epoch_seconds(t.c.transaction_date)
    amount = sa.func.coalesce(cents(t.c.total_amount), 0)
    base = (
        sa.select(
            t.c.transaction_id.label("tid"), t.c.customer_id.label("cid"),
            t.c.transaction_date.label("tdate"), ts.label("ts"), amount.label("amount"),
            # Exact status match, bound as a parameter (data, not SQL).
            sa.case((t.c.status == failed_status, 1), else_=0).label("failed"),
            sa.func.coalesce(basket.c["items"], 0).label("items"),
            sa.func.coalesce(basket.c.products, 0).label("products"),
            sa.func.coalesce(basket.c.new_products, 0).label("new_products"),
            sa.func.coalesce(basket.c.priced_sold, 0).label("priced_sold"),
            sa.func.coalesce(basket.c.priced_catalog, 0).label("priced_catalog"),
            int_div(ts % DAY, BIN_SECONDS).label("bin"),
            # 1970-01-01 was a Thursday: (days + 3) % 7 makes Monday 0.
            ((int_div(ts, DAY) + 3) % WEEKDAYS).label("weekday"),
        )
        .select_from(t.outerjoin(basket, basket.c.tid == t.c.transaction_id))
        .where(*in_range)
        .subquery("base")
    )
    b = base.c
    order = (b.ts, b.tid)
    prior = {"partition_by": b.cid, "order_by": order, "rows": (None, -1)}

    def last(seconds: int) -> dict[str, Any]:
        # A numeric RANGE frame: every transaction of the customer in the last `seconds`.
        return {"partition_by": b.cid, "order_by": b.ts, "range_": (-seconds, 0)}

    # abs: MariaDB and DuckDB floor a negative quotient where SQLite, PostgreSQL and Spark truncate
    # it; a refund's square is the same either way, once its sign is gone.
    units = int_div(sa.func.abs(b.amount), 100)
    count = sa.func.count
    measured = sa.select(
        b.tid.label("transaction_id"), b.cid.label("customer_id"), b.tdate.label("transaction_date"), b.ts, b.amount, b.failed, b["items"], b.products, b.new_products,
        b.priced_sold, b.priced_catalog,
        count().over(**prior).label("n_prior"),
        sa.func.sum(b.amount).over(**prior).label("sum_prior"),
        sa.func.sum(units * units).over(**prior).label("sq_prior"),
        sa.func.sum(b.failed).over(**prior).label("failed_prior"),
        sa.func.sum(b["items"]).over(**prior).label("items_prior"),
        sa.func.sum(b.new_products).over(**prior).label("new_prior"),
        sa.func.lag(b.ts).over(partition_by=b.cid, order_by=order).label("prev_ts"),
        sa.func.lag(b.amount).over(partition_by=b.cid, order_by=order).label("prev_amount"),
        sa.func.min(b.ts).over(partition_by=b.cid).label("first_ts"),
        sa.func.row_number().over(partition_by=b.cid, order_by=order).label("rn"),
        count().over(**last(HOUR)).label("n_1h"),
        sa.func.sum(b.amount).over(**last(HOUR)).label("amount_1h"),
        count().over(**last(DAY)).label("n_24h"),
        sa.func.sum(b.amount).over(**last(DAY)).label("amount_24h"),
        sa.func.sum(b.failed).over(**last(DAY)).label("failed_24h"),
        count().over(**last(WEEK)).label("n_7d"),
        count().over(partition_by=(b.cid, b.bin), order_by=order, rows=(None, -1)).label("same_bin"),
        count().over(partition_by=(b.cid, b.weekday), order_by=order, rows=(None, -1)).label("same_weekday"),
        b.bin, b.weekday,
    ).subquery("measured")
    m = measured.c
    # The rise streak: rows since the last row that was not above its predecessor.
    reset = sa.case((sa.or_(m.prev_amount.is_(None), m.amount <= m.prev_amount), m.rn))
    streak = m.rn - sa.func.max(reset).over(partition_by=m.customer_id, order_by=(m.ts, m.transaction_id),
                                            rows=(None, 0))
    columns = [m[name] for name in RAW_COLUMNS[:27]] + [streak.label("streak"), m.bin, m.weekday]
    scored = sa.select(*columns).subquery("scored")
    s = scored.c
    stmt = sa.select(*[s[name] for name in RAW_COLUMNS])
    if since is None:
        return stmt.order_by(s.customer_id, s.ts, s.transaction_id)
    scoring = s.transaction_date >= since
    if sample_step is None:
        return stmt.where(scoring).order_by(s.customer_id, s.ts, s.transaction_id)
    training = sa.and_(*window_bounds(s.transaction_date, train_from, since))
    if sample_step > 1:
        training = sa.and_(training, s.transaction_id % sample_step == 0)
    phase = sa.case((s.transaction_date < since, 0), else_=1)
    return stmt.where(sa.or_(training, scoring)).order_by(phase, s.customer_id, s.ts, s.transaction_id)


def stream(conn: Connection, stmt: sa.Select) -> Iterator[Raw]:
    """The measured rows, fetched CHUNK at a time (memory does not grow with the table)."""
    for row in conn.execution_options(yield_per=CHUNK).execute(stmt):
        yield to_raw(row)


def count_history(conn: Connection, schema: SchemaMap, lo: datetime | None, before: datetime | None) -> int:
    """Dated transactions with a customer in [lo, before): sizes the training sample's step."""
    import sqlalchemy as sa

    from anomaly_cli.db import table, window_bounds

    t = table(schema, "transactions")
    stmt = sa.select(sa.func.count()).select_from(t).where(
        *usable(t), *window_bounds(t.c.transaction_date, lo, before))
    return int(conn.execute(stmt).scalar() or 0)


def usual_hours(conn: Connection, schema: SchemaMap, customers: list[Any], lo: datetime | None,
                before: datetime | None) -> dict[Any, list[int]]:
    """Per customer, how many of their transactions in [lo, before) fell in each hour of the day."""
    import sqlalchemy as sa

    from anomaly_cli.db import epoch_seconds, table, window_bounds
    from anomaly_cli.sqlfn import int_div

    t = table(schema, "transactions")
    hour = int_div(epoch_seconds(t.c.transaction_date) % DAY, HOUR)
    out: dict[Any, list[int]] = {}
    for start in range(0, len(customers), 500):
        chunk = customers[start:start + 500]
        stmt = (sa.select(t.c.customer_id, hour.label("hour"), sa.func.count())
                .where(t.c.customer_id.in_(chunk), *usable(t),
                       *window_bounds(t.c.transaction_date, lo, before))
                .group_by(t.c.customer_id, hour))
        for cid, h, n in conn.execute(stmt):
            out.setdefault(cid, [0] * 24)[int(h)] += int(n)
    return out


def customer_names(conn: Connection, schema: SchemaMap, customers: list[Any]) -> dict[Any, str | None]:
    import sqlalchemy as sa

    from anomaly_cli.db import table

    c = table(schema, "customers")
    out: dict[Any, str | None] = {}
    for start in range(0, len(customers), 500):
        chunk = customers[start:start + 500]
        for cid, name in conn.execute(sa.select(c.c.customer_id, c.c.customer_name)
                                      .where(c.c.customer_id.in_(chunk))):
            out[cid] = name
    return out
