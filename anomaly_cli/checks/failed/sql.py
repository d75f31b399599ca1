"""failed: per-bucket counts, failures per customer, and the failed transactions, from the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from anomaly_cli.buckets import from_epoch
from anomaly_cli.checks._rows import readable_date
from anomaly_cli.checks.failed.incidents import Incident
from anomaly_cli.checks.failed.rules import RANGE_CHUNK, BucketCount
from anomaly_cli.checks.failed.wording import FailedTransaction

if TYPE_CHECKING:
    from anomaly_cli.checks import CheckContext

def _bucket(ctx: CheckContext, size: int) -> Any:
    from anomaly_cli.db import epoch_seconds, table

    t = table(ctx.schema, "transactions")
    epoch = epoch_seconds(t.c.transaction_date)
    # epoch - epoch % size: integer arithmetic on every engine (MySQL's '/' divides as DECIMAL).
    return t, epoch - epoch % size


def measure_buckets(ctx: CheckContext, size: int, lo: datetime | None, hi: datetime) -> list[BucketCount]:
    """Per bucket in [lo, hi), in time order: all transactions, failed ones, and ones with an
    unknown status. The same pass counts the rows whose date is missing or unusable, anywhere in
    time (bucket_keys: the database groups, Python places)."""
    import sqlalchemy as sa

    from anomaly_cli.bucket_keys import BAD_DATE, NO_DATE, gather, key_of, outside
    from anomaly_cli.buckets import to_epoch
    from anomaly_cli.db import table

    t = table(ctx.schema, "transactions")
    date = t.c.transaction_date
    key = key_of(date, size)
    # Without --since every row is read (those from `hi` on are dropped below); with it the pass
    # is bounded, an index on the date serves it, and the unusable dates outside are counted apart.
    bounds = [] if lo is None else [date >= lo, date < hi]
    # Grouped by the stored status, classified after: a CASE on every row costs more, and the
    # comparisons stay the database's (MariaDB's collation matches 'failed' to 'FAILED').
    groups = sa.select(key.label("bucket"), t.c.status, sa.func.count().label("n")).where(*bounds)
    sub = groups.group_by(key, t.c.status).subquery()
    status = sub.c.status
    stmt = sa.select(sub.c.bucket, sub.c.n, sa.case((status == ctx.schema.failed_status, sub.c.n), else_=0),
                     sa.case((status.in_([ctx.schema.failed_status, ctx.schema.success_status]), 0), else_=sub.c.n))
    buckets, unusable = gather(ctx.conn.execute(stmt), size)
    apart = {}
    if bounds:
        from anomaly_cli.checks._rows import count_unusable_dates

        apart = count_unusable_dates(ctx.conn, date, outside(date, bounds))
    for reason in (NO_DATE, BAD_DATE):
        ctx.stats.skip(reason, unusable.get(reason, [0])[0] + apart.get(reason, 0))
    end = to_epoch(hi)
    return [BucketCount(start, *counts) for start, counts in sorted(buckets.items()) if start < end]


def measure_customers(ctx: CheckContext, size: int,
                      incidents: list[Incident]) -> tuple[dict[int, Counter[Any]], dict[Any, str | None]]:
    """Failures per incident and customer (GROUP BY bucket, customer on failed rows), and the names."""
    import sqlalchemy as sa

    from anomaly_cli.db import table

    owner = {b.start: incident.start for incident in incidents for b in incident.members}
    counts: dict[int, Counter[Any]] = {incident.start: Counter() for incident in incidents}
    names: dict[Any, str | None] = {}
    c = table(ctx.schema, "customers")
    for i in range(0, len(incidents), RANGE_CHUNK):
        chunk = incidents[i:i + RANGE_CHUNK]
        t, bucket = _bucket(ctx, size)
        date = t.c.transaction_date
        ranges = [sa.and_(date >= from_epoch(x.start), date < from_epoch(x.end(size))) for x in chunk]
        sub = (sa.select(bucket.label("bucket"), t.c.customer_id, c.c.customer_name)
               .select_from(t.outerjoin(c, t.c.customer_id == c.c.customer_id))
               .where(t.c.status == ctx.schema.failed_status, readable_date(date, ctx.conn.dialect.name),
                      sa.or_(*ranges)).subquery())
        stmt = (sa.select(sub.c.bucket, sub.c.customer_id, sa.func.max(sub.c.customer_name), sa.func.count())
                .group_by(sub.c.bucket, sub.c.customer_id))
        for start, customer_id, name, n in ctx.conn.execute(stmt):
            counts[owner[int(start)]][customer_id] += int(n)
            names[customer_id] = name
    return counts, names


def measure_failed_transactions(ctx: CheckContext) -> Iterator[FailedTransaction]:
    """Failed transactions in the window with their product names in item order, streamed."""
    import sqlalchemy as sa

    from anomaly_cli.db import table, window_bounds

    t = table(ctx.schema, "transactions")
    c = table(ctx.schema, "customers")
    ti = table(ctx.schema, "transaction_items")
    where = [t.c.status == ctx.schema.failed_status, readable_date(t.c.transaction_date, ctx.conn.dialect.name),
             *window_bounds(t.c.transaction_date, ctx.window.since, ctx.window.until)]
    stmt = (sa.select(t.c.transaction_id, t.c.transaction_date, t.c.customer_id, c.c.customer_name,
                      sa.func.coalesce(ti.c.product_name, ti.c.product_id), ti.c.item_id)
            .select_from(t.outerjoin(c, t.c.customer_id == c.c.customer_id)
                         .outerjoin(ti, ti.c.transaction_id == t.c.transaction_id))
            .where(*where)
            .order_by(t.c.transaction_date, t.c.transaction_id, ti.c.item_id))
    current: list[Any] | None = None
    for txn_id, when, customer_id, name, product, item_id in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        if current is None or current[0] != txn_id:
            if current is not None:
                yield FailedTransaction(*current[:4], tuple(current[4]))
            current = [txn_id, when, customer_id, name, []]
        if item_id is not None:
            current[4].append(product)
    if current is not None:
        yield FailedTransaction(*current[:4], tuple(current[4]))
