"""sales: the newest row and the per-bucket aggregates, from the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from anomaly_cli.checks._rows import newest
from anomaly_cli.checks.sales.buckets import BucketSize, Measured, start_of
from anomaly_cli.key_index import KEY_INDEX, has_key_index, index_key, readable_cents  # noqa: F401 - sales declares the index
from anomaly_cli.model import CheckStats

if TYPE_CHECKING:
    from anomaly_cli.checks import CheckContext


def last_data(ctx: CheckContext) -> datetime | None:
    """The newest transaction date, of any status (an index on the date makes this instant)."""
    from anomaly_cli.db import table

    t = table(ctx.schema, "transactions")
    return newest(ctx.conn, t.c.transaction_date)


def measure(ctx: CheckContext, size: BucketSize, load_from: int | None, end: int,
            stats: CheckStats) -> Iterator[Measured]:
    """Per-bucket aggregates in bucket order, from one pass that also counts the successful
    sales whose date or amount cannot be used (bucket_keys: the database groups, Python places)."""
    import sqlalchemy as sa

    from anomaly_cli.bucket_keys import BAD_DATE, NO_DATE, gather, key_of, outside
    from anomaly_cli.db import table

    t = table(ctx.schema, "transactions")
    date, amount = t.c.transaction_date, t.c.total_amount
    success = t.c.status == ctx.schema.success_status
    key = key_of(date, size.seconds)  # on SQLite, hours and days: index_key's first expression
    # Without --since every row is read (those from `end` on are dropped below) and the unusable
    # dates, anywhere in time, are counted in the pass; with it the pass is bounded, an index on
    # the date serves it, and the unusable dates outside the bounds are counted apart.
    bounds = [] if load_from is None else [date >= start_of(load_from, size), date < start_of(end, size)]
    good = readable_cents(amount)
    zero = sa.literal_column("0")
    # (key, sales, other rows, sales with an amount, readable amounts, cents): the other
    # statuses only tell an empty bucket from one without sales.
    if not bounds and has_key_index(ctx.conn, t):
        # index_key holds the rows in (key, status) order: one pass grouped by both, no sort,
        # and the statuses told apart on its few thousand groups (by the database's comparison).
        groups = (sa.select(key.label("key"), t.c.status, sa.func.count().label("n"),
                            sa.func.count(amount).label("amounts"), sa.func.count(good).label("readable"),
                            sa.func.sum(good).label("cents"))
                  .group_by(key, t.c.status).subquery())
        g = groups.c
        sale = g.status == ctx.schema.success_status
        stmt: Any = sa.select(g.key, sa.case((sale, g.n), else_=zero), sa.case((sale, zero), else_=g.n),
                              *(sa.case((sale, c), else_=zero) for c in (g.amounts, g.readable, g.cents)))
    else:
        # Without that index the other statuses cost less in a pass of their own than a status
        # column in the sales' GROUP BY (its sort).
        sales = (sa.select(key, sa.func.count(), zero, sa.func.count(amount), sa.func.count(good),
                           sa.func.sum(good)).where(success, *bounds).group_by(key))
        others = (sa.select(key, zero, sa.func.count(), zero, zero, zero)
                  .where(sa.or_(sa.not_(success), t.c.status.is_(None)), *bounds).group_by(key))
        stmt = sa.union_all(sales, others)
    buckets, unusable = gather(ctx.conn.execute(stmt), size.seconds)
    apart = {}
    if bounds:
        from anomaly_cli.checks._rows import count_unusable_dates

        apart = count_unusable_dates(ctx.conn, date, success, outside(date, bounds))
    for reason in (NO_DATE, BAD_DATE):
        stats.skip(reason, unusable.get(reason, [0])[0] + apart.get(reason, 0))
    first = load_from if load_from is not None else -(2 ** 62)
    judged = sorted((start // size.seconds, n) for start, n in buckets.items() if first <= start // size.seconds < end)
    # A sale whose amount cannot be read counts as a sale, adding nothing to revenue.
    stats.skip("bad_amount", sum(with_amount - readable for _, (_, _, with_amount, readable, _) in judged))
    for index, (n, other, with_amount, _, revenue) in judged:
        yield Measured(index, n, revenue, n - with_amount, n + other)
