"""Time buckets shared by the checks: epoch seconds, zero-filling absent buckets, and spans in words.

The database groups rows by `epoch - epoch % size` (integer arithmetic on every engine, see
db.epoch_seconds); these helpers turn those integers back into datetimes, fill the buckets a
GROUP BY leaves out (a bucket with no rows is the strongest signal there is), and name a span
of time in a sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from anomaly_cli.wording import clock, long_date

EPOCH = datetime(1970, 1, 1)

T = TypeVar("T")
G = TypeVar("G")


def to_epoch(moment: datetime) -> int:
    """Whole seconds since 1970-01-01 of a naive datetime (floor)."""
    return (moment - EPOCH) // timedelta(seconds=1)


def from_epoch(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def fill(items: Iterable[T], key: Callable[[T], int], empty: Callable[[int], T], step: int, *,
         end: int | None = None, max_gap: int | None = None, gap: Callable[[], G] | None = None
         ) -> Iterator[T | G]:
    """Every bucket from the first item on, absent ones made by `empty(position)`.

    `key` gives an item's position (an index or epoch seconds), `step` the distance between
    buckets. With `end`, items at or past it are dropped and empty buckets follow up to it. With
    `max_gap`, a longer silence is not filled but marked by one `gap()` (missing data, not zeros).
    """
    following: int | None = None
    for item in items:
        at = key(item)
        if end is not None and at >= end:
            continue
        if following is not None and at > following:
            if max_gap is not None and gap is not None and at - following > max_gap:
                yield gap()
            else:
                yield from (empty(i) for i in range(following, at, step))
        yield item
        following = at + step
    if following is not None and end is not None:
        yield from (empty(i) for i in range(following, end, step))


def clock_span(start: datetime, end: datetime) -> str:
    """'from 14:33 to 18:41 on July 12, 2025', or with dates on both ends across midnight."""
    if start.date() == (end - timedelta(seconds=1)).date():
        stop = "24:00" if end.date() != start.date() else clock(end)
        return f"from {clock(start)} to {stop} on {long_date(start)}"
    return f"from {long_date(start)} {clock(start)} to {long_date(end)} {clock(end)}"


def day_span(start: datetime, end: datetime) -> str:
    """'on September 1, 2025 from 14:00 to 16:00', 'on September 1, 2025' (a whole day), or a range."""
    last = end - timedelta(seconds=1)
    if start.date() == last.date():
        if end - start == timedelta(days=1):
            return f"on {long_date(start)}"
        stop = "24:00" if end.date() != start.date() else clock(end)
        return f"on {long_date(start)} from {clock(start)} to {stop}"
    return f"from {long_date(start)} {clock(start)} to {long_date(end)} {clock(end)}"
