"""sales: the bucket model: sizes, measured buckets, their places in time and in the week."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1)
WEEK_SECONDS = 7 * 86400


class BucketSize(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"

    @property
    def seconds(self) -> int:
        return 86400 if self is BucketSize.DAY else 3600


@dataclass(frozen=True, slots=True)
class Measured:
    """One bucket as the database aggregated it (index = epoch seconds // bucket size)."""

    index: int
    transactions: int  # successful transactions
    revenue_cents: int  # their total_amount, in whole cents (NULL amounts left out)
    without_amount: int  # successful transactions with a NULL amount
    rows: int  # rows of any status: tells an empty window from a window with no sales


def fill(rows: Iterable[Measured], end: int) -> Iterator[Measured]:
    """Every bucket from the first measured one up to `end` (exclusive), gaps as zero buckets.

    A day with no rows is absent from a GROUP BY, yet it is the strongest signal there is.
    """
    following: int | None = None
    for row in rows:
        if row.index >= end:
            continue
        if following is not None:
            yield from (Measured(i, 0, 0, 0, 0) for i in range(following, row.index))
        yield row
        following = row.index + 1
    if following is not None:
        yield from (Measured(i, 0, 0, 0, 0) for i in range(following, end))


def start_of(index: int, size: BucketSize) -> datetime:
    return EPOCH + timedelta(seconds=index * size.seconds)


def index_of(moment: datetime, size: BucketSize) -> int:
    """The bucket holding `moment` (floor division, as the database's epoch - epoch % size)."""
    return int((moment - EPOCH).total_seconds()) // size.seconds


def slots(index: int, size: BucketSize, zone: str = "") -> tuple[int, int]:
    """(slot of the week, slot of the day) of a bucket: weekday for days, hour of the week for hours.

    1970-01-01 was a Thursday (weekday 3). Buckets are counted on the stored wall clock, so a
    shop's Monday 09:00 stays Monday 09:00 across a daylight-saving change. When the database
    stores UTC, `zone` names the shop's time zone: an hour's slot is then its local hour of the
    week (09:00 UTC is 10:00 in Berlin in winter and 11:00 in summer).
    """
    if size is BucketSize.DAY:
        return (index + 3) % 7, 0
    if zone:
        from datetime import timezone
        from zoneinfo import ZoneInfo

        local = start_of(index, size).replace(tzinfo=timezone.utc).astimezone(ZoneInfo(zone))
        return local.weekday() * 24 + local.hour, local.hour
    return (index + 3 * 24) % 168, index % 24


def _zone(raw: Any) -> str:
    """The param's parse function: an IANA time zone name, or empty for the stored wall clock."""
    text = "" if raw is None else str(raw).strip()
    if text:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(text)
        except (ValueError, KeyError, OSError):
            raise ValueError(f"{text!r} is not a time zone (use e.g. Europe/Berlin)") from None
    return text
