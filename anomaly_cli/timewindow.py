"""Parsing --since and --until into a Window."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from anomaly_cli.errors import UsageError
from anomaly_cli.model import Window
from anomaly_cli.params import parse_duration


def parse_moment(text: str, option: str, *, now: datetime) -> datetime:
    """An ISO date or datetime, a duration before now ('90s', '30m', '24h', '7d', '2w', '1h30m'),
    'now', 'today' or 'yesterday' (midnight)."""
    value = text.strip()
    lowered = value.lower()
    if lowered in ("today", "yesterday"):
        day = now.date() - timedelta(days=1 if lowered == "yesterday" else 0)
        return datetime.combine(day, datetime.min.time())
    if lowered == "now":
        return now.replace(microsecond=0)
    if lowered[-1:].isalpha() and lowered[:1].isdigit():  # 90s, 7d, 1h30m: the duration grammar
        try:
            return (now - parse_duration(lowered)).replace(microsecond=0)
        except (ValueError, OverflowError):
            raise UsageError(f"{option} {text!r} is not a date or a duration",
                             hint="use e.g. 90s, 30m, 24h, 7d, 2w, 1h30m, 2025-09-12 or yesterday") from None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time())
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            # Transaction dates are stored without a zone; compare like with like.
            moment = moment.astimezone().replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise UsageError(f"{option} {text!r} is not a date or datetime",
                         hint="use e.g. 2025-09-12, 2025-09-12T10:30, 90s, 30m, 7d, 1h30m or yesterday") from None
    return moment


def parse_window(since: str | None, until: str | None, *, now: datetime) -> Window:
    start = parse_moment(since, "--since", now=now) if since is not None else None
    end = parse_moment(until, "--until", now=now) if until is not None else None
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}")
    return Window(since=start, until=end)
