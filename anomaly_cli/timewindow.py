"""Parsing --since and --until into a Window."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from anomaly_cli.errors import UsageError
from anomaly_cli.model import Window
from anomaly_cli.params import parse_duration

# The range a window may name. Checks read history before --since (weeks of it for sales,
# days for failed, a window for spam), and every engine must take the bound as a value:
# 0001-01-01 minus a week is no datetime at all (OverflowError), and MariaDB's DATETIME starts
# in year 1000.
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(9000, 1, 1)


def parse_moment(text: str, option: str, *, now: datetime) -> datetime:
    """An ISO date or datetime, a duration before now ('90s', '30m', '24h', '7d', '2w', '1h30m'),
    'now', 'today' or 'yesterday' (midnight), from EARLIEST to before LATEST."""
    moment = _moment(text, option, now=now)
    if not EARLIEST <= moment < LATEST:
        raise _out_of_range(text, option)
    return moment


def _out_of_range(text: str, option: str) -> UsageError:
    return UsageError(f"{option} {_short(text)} is out of range: use a moment from {EARLIEST:%Y-%m-%d} "
                      f"to before {LATEST:%Y-%m-%d}")


def _short(text: str) -> str:
    """The value as given, cut to fit one error line."""
    return text if len(text) <= 40 else text[:37] + "..."


def _moment(text: str, option: str, *, now: datetime) -> datetime:
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
        except OverflowError:
            raise _out_of_range(text, option) from None
        except ValueError:
            raise UsageError(f"{option} {_short(text)!r} is not a date or a duration",
                             hint="use e.g. 90s, 30m, 24h, 7d, 2w, 1h30m, 2025-09-12 or yesterday") from None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time())
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            # Transaction dates are stored without a zone; compare like with like.
            moment = moment.astimezone().replace(tzinfo=None)
    except OverflowError:
        raise _out_of_range(text, option) from None
    except ValueError:
        raise UsageError(f"{option} {_short(text)!r} is not a date or datetime",
                         hint="use e.g. 2025-09-12, 2025-09-12T10:30, 90s, 30m, 7d, 1h30m or yesterday") from None
    return moment


def parse_window(since: str | None, until: str | None, *, now: datetime) -> Window:
    start = parse_moment(since, "--since", now=now) if since is not None else None
    end = parse_moment(until, "--until", now=now) if until is not None else None
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}")
    return Window(since=start, until=end)
