"""spam: bursts of transactions by one customer inside a sliding time window."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.model import Finding, Severity
from anomaly_cli.params import Param
from anomaly_cli.wording import CENT, clock, long_date

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class BurstRow:
    """One transaction inside some qualifying window, as measured (amount in whole cents)."""

    customer_id: Any
    customer_name: str | None
    transaction_id: Any
    transaction_date: datetime
    status: str | None
    amount_cents: int | None
    starts_burst: bool  # the database says: no earlier qualifying window of this customer overlaps it
    bad_amount: bool = False  # total_amount is not an amount (text, 1e308): counted as 0 and noted


@dataclass(frozen=True, slots=True)
class Burst:
    """One merged burst: overlapping qualifying windows of one customer."""

    customer_id: Any
    customer_name: str | None
    start: datetime
    end: datetime
    transactions: int
    failed: int
    small: int  # transactions below the small amount (NULL amounts count as 0, so as small)
    total_cents: int


def bursts(rows: Iterable[BurstRow], failed_status: str, small_amount: Decimal) -> Iterator[Burst]:
    """Fold the burst rows (ordered by customer, date, id) into one Burst per merged run."""
    current: list[BurstRow] = []
    for row in rows:
        if current and (row.starts_burst or row.customer_id != current[0].customer_id):
            yield _fold(current, failed_status, small_amount)
            current = []
        current.append(row)
    if current:
        yield _fold(current, failed_status, small_amount)


def _fold(rows: list[BurstRow], failed_status: str, small_amount: Decimal) -> Burst:
    amounts = [r.amount_cents or 0 for r in rows]
    return Burst(
        customer_id=rows[0].customer_id,
        customer_name=rows[0].customer_name,
        start=rows[0].transaction_date,
        end=rows[-1].transaction_date,
        transactions=len(rows),
        # Exact comparison in Python: the same answer on every engine whatever its collation.
        failed=sum(r.status == failed_status for r in rows),
        small=sum(Decimal(a) / HUNDRED < small_amount for a in amounts),
        total_cents=sum(amounts),
    )


def severity_for(transactions: int, failed: int, small: int, min_count: int) -> Severity:
    """Card testing (half or more failed and half or more small) is critical; otherwise medium,
    raised to high by size (2 x min_count or more) or by one card-testing sign."""
    many_failed = 2 * failed >= transactions
    mostly_small = 2 * small >= transactions
    if many_failed and mostly_small:
        return Severity.CRITICAL
    if transactions >= 2 * min_count or many_failed or mostly_small:
        return Severity.HIGH
    return Severity.MEDIUM


def judge(burst: Burst, min_count: int) -> Finding:
    """The finding for one burst (every merged burst qualifies by construction)."""
    fields = {
        "customer_id": burst.customer_id,
        "customer_name": burst.customer_name,
        "window_start": burst.start,
        "window_end": burst.end,
        "transactions": burst.transactions,
        "failed": burst.failed,
        "total_amount": (Decimal(burst.total_cents) / HUNDRED).quantize(CENT),
    }
    return Finding(
        check=SpamCheck.name,
        key=f"spam:{burst.customer_id}:{burst.start.isoformat()}",
        severity=severity_for(burst.transactions, burst.failed, burst.small, min_count),
        message=template_line(fields),
        fields=fields,
    )


def template_line(fields: dict[str, Any]) -> str:
    """The seed's sentence, filled deterministically."""
    start = fields["window_start"]
    return (
        f"Customer {fields['customer_name'] or 'unknown'} (ID: {fields['customer_id']}) made "
        f"{fields['transactions']} transactions on {long_date(start)} at {clock(start)} "
        f"- suspicious activity detected"
    )


@register
class SpamCheck(Check):
    """Bursts of --min-count or more transactions by one customer within --window seconds.

    The window slides (it is not a clock minute): a burst that straddles a minute boundary
    counts. Every status counts towards a burst, failed attempts included, since they are what
    card testers make. Overlapping qualifying windows of one customer merge into one burst,
    reported once with its first and last transaction, count, failed count and total amount
    (NULL amounts count as 0).

    Severity: medium; high when the burst holds at least twice --min-count transactions, or
    shows one card-testing sign: half or more of its transactions failed, or half or more are
    below --small-amount (an absolute amount in the shop's currency). Both signs together are
    card testing: critical.

    A burst belongs to the window its first transaction falls in and is reported whole.
    Transactions with no date, a value that is not a date, or no customer are skipped and
    counted in the summary; an amount that is not one (text, 1e308) counts as 0 and is counted too.
    """

    name = "spam"
    llm_target = "Customer [NAME] (ID: [ID]) made [COUNT] transactions on [DATE] at [TIME] - suspicious activity detected"
    llm_advice = "the customers named: block or challenge them and review the cards they used"
    order = 30
    # Covering: the window functions read each customer's rows in date order from the index
    # alone (a narrower index made the scan slower than none, in the benchmark).
    indexes = (("transactions", ("customer_id", "transaction_date", "transaction_id", "status", "total_amount")),)
    params = (
        Param("min_count", 6, "transactions by one customer that make a burst", kind=int, minimum=2),
        Param("window", 60, "length in seconds of the sliding window that must hold --min-count transactions",
              kind=int, exclusive_minimum=0),
        Param("small_amount", Decimal("100.00"), "amounts below this are small (a card-testing sign)",
              kind=Decimal, minimum=0),
    )
    fields = ("customer_id", "customer_name", "window_start", "window_end", "transactions", "failed",
              "total_amount")
    columns = (
        Column("customer_id", "Cust", "right"),
        Column("customer_name", "Customer"),
        Column("window_start", "Start"),
        Column("window_end", "End"),
        Column("transactions", "Txns", "right"),
        Column("failed", "Failed", "right"),
        Column("total_amount", "Amount", "right"),
    )
    totals = ("total_amount",)
    needs = {
        "transactions": ("transaction_id", "customer_id", "transaction_date", "status", "total_amount"),
        "customers": ("customer_id", "customer_name"),
    }

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        min_count = ctx.params["min_count"]
        # Counted first: a second query cannot run while a streamed result is open on MariaDB.
        unusable = count_unusable(ctx)
        for reason, count in unusable.items():
            ctx.stats.skip(reason, count)
        since, until = ctx.window.since, ctx.window.until
        from anomaly_cli.db import has_rows, table, window_bounds

        t = table(ctx.schema, "transactions")
        if not has_rows(ctx.conn, t, *window_bounds(t.c.transaction_date, since, until)):
            ctx.stats.not_evaluated("no transactions in the window")
            return
        # Every date anywhere is usable (the usual case): the window passes need not test them again.
        dated = not (unusable.get("no_date") or unusable.get("bad_date"))
        rows = measure(ctx, min_count, ctx.params["window"], all_dated=dated)
        for burst in bursts(rows, ctx.schema.failed_status, ctx.params["small_amount"]):
            # Rows before --since were read only so that bursts start where they really start.
            if (since is None or burst.start >= since) and (until is None or burst.start < until):
                yield judge(burst, min_count)


def count_unusable(ctx: CheckContext) -> dict[str, int]:
    """Transactions that cannot be placed in a burst, by reason: no or a bad date (anywhere),
    no or a bad customer (in the window)."""
    import sqlalchemy as sa

    from anomaly_cli.db import table, window_bounds
    from anomaly_cli.sqlfn import no_key, reason_counts, unusable_date

    t = table(ctx.schema, "transactions")
    date, customer = t.c.transaction_date, t.c.customer_id
    undated = unusable_date(date)
    no_customer = no_key(customer)
    # The CASE below tells a bad date first, so the customer test need not exclude them.
    in_window = sa.and_(no_customer, *window_bounds(date, ctx.window.since, ctx.window.until))
    kind = sa.case(
        (date.is_(None), "no_date"),
        (undated, "bad_date"),
        (customer.is_(None), "no_customer"),
        else_="bad_customer",
    )
    stmt = sa.select(kind, sa.func.count()).where(sa.or_(undated, in_window)).group_by(kind)
    return reason_counts(ctx.conn.execute(stmt))


def burst_customers(ctx: CheckContext, t: Any, min_count: int, window: int, conditions: list[Any]) -> list[Any]:
    """The customers with a qualifying window: one LAG over every transaction of `t` matching
    `conditions` (which must leave out unusable dates), leaner than the plainest hand-written query.

    No test of the customer: rows with none or a bad one sit in partitions of their own (None is
    dropped here), and were one to share a good customer's partition it could only shorten that
    customer's spans, adding customers, never losing one; the second pass tests them. Tested on
    every row they cost an eighth of this pass (SQLite pushes a test on the partition column of
    the subquery down into it, so it cannot wait for the few rows that qualify either). The epoch
    is computed once per row, in the inner query, and LAG taken over it: plain integer
    arithmetic on every engine; the offset is inlined, as MariaDB wants a constant there.
    """
    import sqlalchemy as sa

    from anomaly_cli.db import epoch_seconds

    rows = sa.select(
        t.c.customer_id.label("cid"), t.c.transaction_date.label("tdate"), t.c.transaction_id.label("tid"),
        epoch_seconds(t.c.transaction_date).label("ts"),
    ).where(*conditions).subquery("stamped")
    lagged = sa.func.lag(rows.c.ts, sa.literal(min_count - 1, literal_execute=True))
    spans = sa.select(
        rows.c.cid, (rows.c.ts - lagged.over(partition_by=rows.c.cid, order_by=(rows.c.tdate, rows.c.tid)))
        .label("span"),
    ).subquery("spans")
    found = ctx.conn.execute(
        sa.select(spans.c.cid).where(spans.c.span <= window).group_by(spans.c.cid).order_by(spans.c.cid))
    return [cid for (cid,) in found if cid is not None]


# Beyond this many customers with a burst, the second pass reads every customer (one scan)
# rather than naming them all in an IN list.
MAX_NAMED_CUSTOMERS = 2000


def measure(ctx: CheckContext, min_count: int, window: int, *, all_dated: bool = False) -> Iterator[BurstRow]:
    """Stream only the transactions that lie in a qualifying window, flagged where a burst starts.

    Row r (in a customer's date, id order) ends a qualifying window when its time minus that of
    the row min_count - 1 before it is at most `window` seconds. r belongs to a burst when a
    qualifying window ends within its next min_count - 1 rows, and starts a new burst when none
    ends within its next min_count - 2 rows (no earlier window then overlaps it).

    Two passes: one LAG over every transaction finds the customers with a qualifying window
    (as cheap as the plainest hand-written query); the second, with the window functions that
    place each row, reads only those customers' transactions.
    """
    import sqlalchemy as sa

    from anomaly_cli.db import cents, epoch_seconds, table
    from anomaly_cli.sqlfn import (MONEY_LIMIT, bad_key, datetime_columns, is_bad_number, lenient_text,
                                   stream, to_datetime, usable_date)

    t = table(ctx.schema, "transactions")
    c = table(ctx.schema, "customers")
    k = min_count
    order = (t.c.transaction_date, t.c.transaction_id)
    # Dates before customers: the first pass needs only these (see burst_customers).
    conditions = []
    if not all_dated:  # a third of the first pass's time, so only when count_unusable found some
        conditions.append(usable_date(t.c.transaction_date))
    if ctx.window.since is not None:
        # A burst starting at --since may have earlier windows up to `window` s before; read
        # them so that a burst which began before --since is recognised as such and left out.
        conditions.append(t.c.transaction_date >= ctx.window.since - timedelta(seconds=window))
    customers = burst_customers(ctx, t, k, window, conditions)
    conditions += [t.c.customer_id.is_not(None), sa.not_(bad_key(t.c.customer_id))]
    # LAG over the epoch (not epoch of a LAG) keeps every engine on plain integer arithmetic.
    # The offset is inlined: MariaDB wants a constant there.
    lagged = sa.func.lag(epoch_seconds(t.c.transaction_date), sa.literal(k - 1, literal_execute=True))
    if not customers:
        return
    if len(customers) <= MAX_NAMED_CUSTOMERS:
        # First: it rejects nearly every row before the date is parsed.
        conditions.insert(0, t.c.customer_id.in_(customers))

    amount = t.c.total_amount
    good_amount = sa.or_(amount.is_(None), sa.not_(is_bad_number(amount, MONEY_LIMIT)))
    raw_date, normalized_date = datetime_columns(t.c.transaction_date)
    timed = (
        sa.select(
            t.c.transaction_id.label("tid"), t.c.customer_id.label("cid"),
            t.c.transaction_date.label("tdate"), raw_date.label("raw_date"),
            normalized_date.label("normalized_date"), lenient_text(t.c.status).label("status"),
            sa.case((good_amount, cents(amount)), else_=None).label("amount_cents"),
            sa.case((good_amount, 0), else_=1).label("bad_amount"),
            epoch_seconds(t.c.transaction_date).label("ts"),
            lagged.over(partition_by=t.c.customer_id, order_by=order).label("lag_ts"),
        )
        .where(*conditions)
        .subquery("timed")
    )
    ends = sa.case((timed.c.ts - timed.c.lag_ts <= window, 1), else_=0)
    inner_order = (timed.c.tdate, timed.c.tid)
    flagged = sa.select(
        timed.c.tid, timed.c.cid, timed.c.tdate, timed.c.raw_date, timed.c.normalized_date, timed.c.status,
        timed.c.amount_cents, timed.c.bad_amount,
        sa.func.max(ends).over(partition_by=timed.c.cid, order_by=inner_order, rows=(0, k - 1))
        .label("member"),
        sa.func.max(ends).over(partition_by=timed.c.cid, order_by=inner_order, rows=(0, k - 2))
        .label("continues"),
    ).subquery("flagged")
    stmt = (
        sa.select(
            flagged.c.cid, lenient_text(c.c.customer_name), flagged.c.tid, flagged.c.raw_date,
            flagged.c.normalized_date, flagged.c.status, flagged.c.amount_cents, flagged.c.bad_amount,
            flagged.c.continues,
        )
        .select_from(flagged.outerjoin(c, flagged.c.cid == c.c.customer_id))
        .where(flagged.c.member == 1)
        .order_by(flagged.c.cid, flagged.c.tdate, flagged.c.tid)
    )
    result = stream(ctx.conn, stmt)
    for cid, name, tid, raw, normalized, status, amount_cents, bad_amount, continues in result:
        # A date SQLite reads but Python does not: SQLite's own reading of it (see to_datetime).
        when = to_datetime(raw, normalized)
        if when is None:
            ctx.stats.skip("bad_date")
            continue
        if bad_amount:
            ctx.stats.skip("bad_amount")  # the transaction still counts in its burst, as amount 0
        yield BurstRow(cid, name, tid, when, status,
                       None if amount_cents is None else int(amount_cents), not continues, bool(bad_amount))
