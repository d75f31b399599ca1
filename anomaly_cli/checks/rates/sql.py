"""rates: per-bucket status counts from the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from anomaly_cli.buckets import EPOCH
from anomaly_cli.checks.rates.baseline import Bucket
from anomaly_cli.checks.rates.rules import UNKNOWN, Source
from anomaly_cli.model import CheckStats

if TYPE_CHECKING:
    from anomaly_cli.checks import CheckContext

def measure(ctx: CheckContext, source: Source, approved: str, size: int, load_from: int | None, end: int,
            stats: CheckStats) -> Iterator[Bucket]:
    """Per bucket (GROUP BY bucket, lower(status)) the count of each status, in bucket order."""
    import sqlalchemy as sa

    from anomaly_cli.db import count_missing, epoch_seconds, table
    from anomaly_cli.sqlfn import QUANTITY_LIMIT, is_bad_number, unusable_date, usable_date

    if source is Source.COUNTS:
        t = table(ctx.schema, "status_counts")
        ts, amount = t.c.ts, t.c.count
    else:
        t = table(ctx.schema, "transactions")
        ts, amount = t.c.transaction_date, sa.literal(1)
    epoch = epoch_seconds(ts)
    # Usable times only ('2025-02-30' would become March 2 on SQLite): the others are counted
    # once, anywhere in time, below.
    where = [usable_date(ts), ts < EPOCH + timedelta(seconds=end)]
    if load_from is not None:
        where.append(ts >= EPOCH + timedelta(seconds=load_from))
    bad: sa.ColumnElement[bool] = sa.false()
    if source is Source.COUNTS:
        # A count that is no whole number below QUANTITY_LIMIT ('many', a blob, 1.5, 1e308) is
        # counted and left out of the sums in the same pass (SQLite would add 'many' as 0 and
        # overflow on 1e308); elsewhere this is abs(count) >= limit.
        bad = sa.and_(amount.is_not(None), is_bad_number(amount, QUANTITY_LIMIT, integer=True))
        amount = sa.case((bad, None), else_=amount)
    # Grouping on a subquery column: PostgreSQL would not match a repeated expression with binds;
    # lower() makes MariaDB's case-insensitive grouping and the others' agree.
    sub = sa.select((epoch - epoch % size).label("bucket"), sa.func.lower(t.c.status).label("status"),
                    amount.label("n"), sa.case((bad, 1), else_=0).label("bad")).where(*where).subquery()
    stmt = (sa.select(sub.c.bucket, sub.c.status, sa.func.sum(sub.c.n), sa.func.sum(sub.c.bad))
            .group_by(sub.c.bucket, sub.c.status).order_by(sub.c.bucket, sub.c.status))
    rename: dict[str | None, str] = {None: UNKNOWN}
    if source is Source.TRANSACTIONS:
        rename |= {ctx.schema.success_status.lower(): approved, ctx.schema.failed_status.lower(): "failed"}
    # Rows (or counts) without a time are never judged, only counted, by a query of their own.
    stats.skip("no_time", count_missing(ctx.conn, ts, total=amount if source is Source.COUNTS else None))
    # Rows whose time is no usable time (anywhere), as no_time in the units judged: the (readable)
    # counts of status_counts rows, transactions otherwise.
    total = amount if source is Source.COUNTS else None
    measured = sa.func.coalesce(sa.func.sum(total), 0) if total is not None else sa.func.count()
    stats.skip("bad_time", int(ctx.conn.execute(
        sa.select(measured).select_from(t).where(ts.is_not(None), unusable_date(ts))).scalar() or 0))
    null_status = 0
    current: Bucket | None = None
    for start, status, n, unreadable in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        if unreadable:
            stats.skip("bad_count", int(unreadable))
        if n is None:
            continue
        if start is None:  # a usable time SQLite still cannot place: counted, never judged
            stats.skip("bad_time", int(n))
            continue
        if current is None or current.start != int(start):
            if current is not None:
                yield current
            current = Bucket(int(start), {})
        name = rename.get(status, status)
        if name == UNKNOWN:
            null_status += int(n)  # in the total, judged as status 'unknown'
        current.counts[name] = current.counts.get(name, 0) + int(n)
    if current is not None:
        yield current
    stats.note("null_status", null_status)
