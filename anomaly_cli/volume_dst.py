"""The wall-clock hours a daylight-saving change may remove: not judged when they hold nothing.

A shop that stores its local wall clock (no --timezone) has no 02:00-03:00 on the night clocks
spring forward: that empty hour is no outage. The zone is not known, so the hour is recognised by
the common rules: 02:00 on the last Sunday of March (Europe), the second Sunday of March (North
America), the first Sunday of October (Australia) and the last Sunday of September (New Zealand).
Only an hour holding no rows at all is left unjudged; any sale there proves the hour existed.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def _sundays(year: int, month: int) -> list[int]:
    first = datetime(year, month, 1)
    day = first + timedelta(days=(6 - first.weekday()) % 7)
    out = []
    while day.month == month:
        out.append(day.day)
        day += timedelta(days=7)
    return out


def may_not_exist(start: datetime) -> bool:
    """Whether the wall-clock hour starting at `start` is skipped by a common spring-forward rule."""
    if start.hour != 2 or start.minute or start.weekday() != 6 or start.month not in (3, 9, 10):
        return False
    sundays = _sundays(start.year, start.month)
    if start.month == 3:
        return start.day in (sundays[1], sundays[-1])
    return start.day == (sundays[-1] if start.month == 9 else sundays[0])
