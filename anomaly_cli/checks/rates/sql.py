"""rates: per-bucket status counts from the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from anomaly_cli.buckets import EPOCH
from anomaly_cli.checks._rows import unreadable_number
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

    if source is Source.COUNTS:
        t = table(ctx.schema, "status_counts")
        ts, amount = t.c.ts, t.c.count
    else:
        t = table(ctx.schema, "transactions")
        ts, amount = t.c.transaction_date, sa.literal(1)
    epoch = epoch_seconds(ts)
    where = [ts < EPOCH + timedelta(seconds=end)]
    if load_from is not None:
        where.append(ts >= EPOCH + timedelta(seconds=load_from))
    # Grouping on a subquery column: PostgreSQL would not match a repeated expression with binds;
    # lower() makes MariaDB's case-insensitive grouping and the others' agree.
    if source is Source.COUNTS and ctx.conn.dialect.name == "sqlite":
        # SQLite keeps 'many' in a count column and would add it as 0: counted apart instead.
        bad = unreadable_number(amount, "sqlite")
        stats.skip("bad_count", int(ctx.conn.execute(sa.select(sa.func.count()).where(bad, *where)).scalar() or 0))
        amount = sa.case((bad, None), else_=amount)
    sub = sa.select((epoch - epoch % size).label("bucket"), sa.func.lower(t.c.status).label("status"),
                    amount.label("n")).where(*where).subquery()
    stmt = (sa.select(sub.c.bucket, sub.c.status, sa.func.sum(sub.c.n))
            .group_by(sub.c.bucket, sub.c.status).order_by(sub.c.bucket, sub.c.status))
    rename: dict[str | None, str] = {None: UNKNOWN}
    if source is Source.TRANSACTIONS:
        rename |= {ctx.schema.success_status.lower(): approved, ctx.schema.failed_status.lower(): "failed"}
    # Rows (or counts) without a time are never judged, only counted, by a query of their own.
    stats.skip("no_time", count_missing(ctx.conn, ts, total=amount if source is Source.COUNTS else None))
    null_status = 0
    current: Bucket | None = None
    for start, status, n in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        if n is None:
            continue
        if start is None:  # a time SQLite cannot read as one: counted, never judged
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
