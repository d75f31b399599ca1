"""sales: the newest row and the per-bucket aggregates, from the database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from anomaly_cli.checks._rows import newest
from anomaly_cli.checks.sales.buckets import BucketSize, Measured, start_of
from anomaly_cli.key_index import KEY_INDEX, has_key_index, index_key, readable, readable_cents  # noqa: F401 - sales declares the index
from anomaly_cli.model import CheckStats

if TYPE_CHECKING:
    from anomaly_cli.checks import CheckContext


def last_data(ctx: CheckContext) -> datetime | None:
    """The newest transaction date, of any status (an index on the date makes this instant)."""
    from anomaly_cli.db import table

    t = table(ctx.schema, "transactions")
    return newest(ctx.conn, t.c.transaction_date)


# SQLite sorts a GROUP BY in memory up to its page cache size (2 MB by default), and beyond it
# writes sorted runs to temporary files and merges them back: at 1M sales, a fifth of the pass's
# CPU (measured). 16 MB holds most of that sort in memory, and bounds what it may take.
SORTER_CACHE_KIB = 16384


@contextmanager
def sorter_memory(conn: Any) -> Iterator[None]:
    """On SQLite, a page cache of SORTER_CACHE_KIB for the statements inside, the connection's own
    after (a setting of this connection only: nothing is written to the database)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SORTER_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


@dataclass(frozen=True, slots=True)
class Groups:
    """What the pass read: sums by bucket start and by skip reason (bucket_keys.gather), and,
    when every dated row of the whole table is plainly spelt, the start of its newest hour
    (`newest_hour`, None otherwise or with no dated row; see `dated_plainly`)."""

    buckets: dict[int, list[int]]
    unusable: dict[str, list[int]]
    bounded: bool
    dated_plainly: bool
    newest_hour: datetime | None


class _Keys:
    """Watches the group keys go by: the largest text key, and whether any dated group had a key
    of another type (an integer: a date spelt otherwise, placed by the full path). With no
    bad_date group besides, every text key is a plain date's hour (bucket_keys)."""

    def __init__(self) -> None:
        self.newest: str | None = None
        self.text_only = True

    def watch(self, rows: Iterable[Any]) -> Iterator[Any]:
        for row in rows:
            key = row[0]
            if key.__class__ is str:
                if self.newest is None or key > self.newest:
                    self.newest = key
            elif key is not None:
                self.text_only = False
            yield row


def _bounds(date: Any, size: BucketSize, load_from: int, end: int) -> list[Any]:
    """The bounded pass's date conditions: from the first loaded bucket to the first unjudged one."""
    return [date >= start_of(load_from, size), date < start_of(end, size)]


def read(ctx: CheckContext, size: BucketSize, load_from: int | None, end: int | None) -> Groups:
    """The per-bucket aggregates from one pass that also counts the successful sales whose date
    or amount cannot be used (bucket_keys: the database groups, Python places). Without
    `load_from` the pass reads every row and `end` is not needed (it may be unknown yet)."""
    import sqlalchemy as sa

    from anomaly_cli.bucket_keys import BAD_DATE, gather, key_of
    from anomaly_cli.db import table

    t = table(ctx.schema, "transactions")
    date, amount = t.c.transaction_date, t.c.total_amount
    success = t.c.status == ctx.schema.success_status
    key = key_of(date, size.seconds)  # on SQLite, hours and days: index_key's first expression
    # Without --since every row is read (those from `end` on are dropped by measure) and the
    # unusable dates, anywhere in time, are counted in the pass; with it the pass is bounded, an
    # index on the date serves it, and the unusable dates outside the bounds are counted apart.
    assert load_from is None or end is not None
    bounds = [] if load_from is None else _bounds(date, size, load_from, end)  # type: ignore[arg-type]
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
        sorted_in_memory = contextlib.nullcontext()
    else:
        # Without that index the other statuses cost less in a pass of their own than a status
        # column in the sales' GROUP BY (its sort), or than one pass with conditional counts.
        # The table is read, so the key's plain test may take its cheaper spelling, and the
        # readable amounts are counted without rounding them.
        key = key_of(date, size.seconds, indexed=False)
        sales = (sa.select(key, sa.func.count(), zero, sa.func.count(amount),
                           sa.func.count(sa.case((readable(amount), sa.literal_column("1")))), sa.func.sum(good))
                 .where(success, *bounds).group_by(key))
        # IS DISTINCT FROM (SQLite: IS NOT): NULL statuses too, in one comparison.
        others = (sa.select(key, zero, sa.func.count(), zero, zero, zero)
                  .where(t.c.status.is_distinct_from(ctx.schema.success_status), *bounds).group_by(key))
        stmt = sa.union_all(sales, others)
        sorted_in_memory = sorter_memory(ctx.conn)
    keys = _Keys()
    with sorted_in_memory:
        buckets, unusable = gather(keys.watch(ctx.conn.execute(stmt)), size.seconds)
    # Every group counts a row, so a bad_date group of any status shows in the sums.
    plain = keys.text_only and not any(unusable.get(BAD_DATE, ())) and len(keys.newest or "x" * 13) == 13
    newest = datetime.fromisoformat(f"{keys.newest}:00") if plain and keys.newest is not None else None
    return Groups(buckets, unusable, bool(bounds), plain, newest)


def fresh(groups: Groups, since: datetime) -> bool:
    """Whether a whole-table pass proves that the newest transaction date (of any status) is no
    older than `since`, or that there is none: then last_data's max() need not be read (without
    an index on the date, a scan of its own). Proven only when every dated row is plainly spelt:
    the newest date is then the newest hour's largest text, a date of that hour."""
    return (not groups.bounded and groups.dated_plainly
            and (groups.newest_hour is None or groups.newest_hour >= since))


def measure(ctx: CheckContext, groups: Groups, size: BucketSize, load_from: int | None, end: int,
            stats: CheckStats) -> Iterator[Measured]:
    """The read buckets before `end` (and from `load_from`) in bucket order; the unusable sales
    counted as skipped."""
    from anomaly_cli.bucket_keys import BAD_DATE, NO_DATE, outside

    apart = {}
    if groups.bounded:
        from anomaly_cli.checks._rows import count_unusable_dates
        from anomaly_cli.db import table

        t = table(ctx.schema, "transactions")
        date = t.c.transaction_date
        apart = count_unusable_dates(ctx.conn, date, t.c.status == ctx.schema.success_status,
                                     outside(date, _bounds(date, size, load_from, end)))  # type: ignore[arg-type]
    for reason in (NO_DATE, BAD_DATE):
        stats.skip(reason, groups.unusable.get(reason, [0])[0] + apart.get(reason, 0))
    first = load_from if load_from is not None else -(2 ** 62)
    judged = sorted((start // size.seconds, n) for start, n in groups.buckets.items()
                    if first <= start // size.seconds < end)
    # A sale whose amount cannot be read counts as a sale, adding nothing to revenue.
    stats.skip("bad_amount", sum(with_amount - usable for _, (_, _, with_amount, usable, _) in judged))
    for index, (n, other, with_amount, _, revenue) in judged:
        yield Measured(index, n, revenue, n - with_amount, n + other)
