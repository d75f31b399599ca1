"""Realistic count series with planted incidents, for the volume checks' recall and precision tests.

Each scenario makes hourly counts of successful sales on the shop's wall clock: a weekday and
hour-of-day rhythm, day-to-day noise that is multiplicative and heavy-tailed (a Student t with 4
degrees of freedom in log space, coefficient of variation 0.3 to 0.6), hour-level noise and
Poisson chance. Plants:

- `collapse`: whole days at 0-8 % of their volume (must be found, day and hour buckets);
- `outage`: 3-hour outages at 0-5 % in the busy hours of a day (must be found, hour buckets);
- `shift`: from one day on, the shop runs at 45 % (day buckets: one finding, starting within
  three days of it; nothing more afterwards);
- `holiday`: days at 35 % (neutral: may or may not be reported, counted neither way);
- `decline`: a fall over five days to 5 %, staying there (the days under 10 % must be found;
  the days of the fall are neutral);
- `growth`: +60 % over the series; `dst`: a spring-forward hour missing (March 30, wall
  clock), `dst_autumn`: an autumn hour doubled (October 26); `young`: a shop two weeks old.
  These plant nothing of their own.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

HOUR_WEIGHTS = (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.6, 1.5, 3, 4.5, 6, 8,
                9, 8.5, 7.5, 6.5, 6, 6.5, 8, 9, 8.5, 6, 3.5, 1.5)
WEEKDAY = (1.0, 1.05, 1.05, 1.1, 1.2, 0.75, 0.55)
FIRST = date(2025, 1, 6)  # a Monday
MEANINGFUL = float(__import__("os").environ.get("SERIES_MEANINGFUL", "15"))
SCENARIOS = ("noisy", "growth", "shift", "holiday", "decline", "dst", "dst_autumn", "young")
# The daylight-saving scenarios start on the Monday 4 weeks before a change (wall clock, Europe).
START = {"dst": date(2025, 3, 3), "dst_autumn": date(2025, 9, 29)}


@dataclass
class Series:
    name: str
    seed: int
    hours: dict[datetime, int]  # hour start (wall clock) -> successful sales
    end: datetime  # judged up to here (exclusive)
    must_days: set[date] = field(default_factory=set)  # planted days that must be reported
    must_hours: set[datetime] = field(default_factory=set)  # planted hours that must be reported
    neutral_days: set[date] = field(default_factory=set)  # may be reported: counted neither way
    neutral_hours: set[datetime] = field(default_factory=set)  # planted, but under MEANINGFUL: either way
    shift_day: date | None = None  # a level shift's first day

    def days(self) -> dict[date, int]:
        out: dict[date, int] = {}
        for when, n in self.hours.items():
            out[when.date()] = out.get(when.date(), 0) + n
        return out


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 60:  # normal approximation: the exact loop is slow for large means
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _heavy_factor(rng: random.Random, cv: float) -> float:
    """exp(s x t4 / sqrt 2): heavy-tailed, kept within [0.25, 4] so that noise alone is no incident."""
    s = math.sqrt(math.log(1 + cv * cv))
    t = rng.gauss(0, 1) / math.sqrt(sum(rng.gauss(0, 1) ** 2 for _ in range(4)) / 4)
    return min(4.0, max(0.25, math.exp(s * t / math.sqrt(2))))


def make(name: str, seed: int, *, weeks: int = 9, level: float = 400.0) -> Series:
    """One scenario's series (see the module docstring)."""
    rng = random.Random(f"{name}-{seed}")
    cv = rng.uniform(0.3, 0.6)
    first = START.get(name, FIRST)
    days = [first + timedelta(d) for d in range(7 * (2 if name == "young" else weeks))]
    series = Series(name, seed, {}, datetime.combine(days[-1] + timedelta(1), time()))
    judged = days[21:] if name != "young" else days[7:]  # plants after some history
    scale = {d: 1.0 for d in days}
    hour_loss: dict[datetime, float] = {}
    picks = rng.sample(judged[:-3] if len(judged) > 9 else judged, 6 if len(judged) > 9 else 4)
    if name in ("noisy", "growth", "holiday", "dst", "dst_autumn", "young"):
        for day in picks[:2]:
            scale[day] = rng.uniform(0.0, 0.05)
            series.must_days.add(day)
        for day in picks[2:4]:  # 3-hour outages on a weekday's busy hours
            first = rng.randrange(10, 18)
            for h in range(first, first + 3):
                hour_loss[datetime.combine(day, time(h))] = rng.uniform(0.95, 1.0)
    if name == "growth":
        for i, day in enumerate(days):
            scale[day] *= 1 + 0.6 * i / len(days)
    if name == "holiday":
        for day in picks[4:6]:
            scale[day] = 0.35
            series.neutral_days.add(day)
    if name == "shift":
        series.shift_day = days[len(days) - 21]
        for day in days:
            if day >= series.shift_day:
                scale[day] = 0.45
    if name == "decline":
        start = len(days) - 12
        for i, day in enumerate(days[start:]):
            scale[day] = max(0.05, 1 - 0.19 * (i + 1))
            (series.must_days if scale[day] < 0.1 else series.neutral_days).add(day)
    for day in days:
        noise = _heavy_factor(rng, cv)
        if scale[day] < 0.1:  # a planted collapse is a collapse of the day's expected volume
            noise = 1.0
        factor = level * WEEKDAY[day.weekday()] * scale[day] * noise / sum(HOUR_WEIGHTS)
        for hour, weight in enumerate(HOUR_WEIGHTS):
            when = datetime.combine(day, time(hour))
            mean = factor * weight * math.exp(rng.gauss(0, 0.15)) * (1 - hour_loss.get(when, 0.0))
            if name == "dst" and hour == 2 and day.weekday() == 6 and day.month == 3 and day.day > 24:
                continue  # the spring-forward hour does not exist on the wall clock
            if name == "dst_autumn" and hour == 2 and day.weekday() == 6 and day.month == 10 and day.day > 24:
                mean *= 2  # the autumn hour happens twice
            series.hours[when] = _poisson(rng, mean)
            # The hours that must be found: an outage or a collapsed day where, without the plant,
            # at least MEANINGFUL sales were expected (a margin over --min-expected 10).
            usual = level * WEEKDAY[day.weekday()] * weight / sum(HOUR_WEIGHTS) * (scale[day] if day not in series.must_days else 1)
            if name == "growth":
                usual *= 1 + 0.6 * days.index(day) / len(days)
            if when in hour_loss or day in series.must_days:
                (series.must_hours if usual >= MEANINGFUL else series.neutral_hours).add(when)
    return series


def score(found: list[tuple[datetime, datetime, bool]], series: Series, *, hourly: bool) -> tuple[int, int, int, int]:
    """(planted, planted found, true findings, false findings) for findings (start, end, is_shift).

    A finding is true when it covers a planted day or hour, or is the level shift starting within
    three days of the planted one; neutral when it covers only neutral days, or a planted hour
    whose usual volume is under MEANINGFUL (an outage of 13 expected sales may or may not be
    reported, and is no false alarm when it is); false otherwise.
    """
    planted = set(series.must_hours) if hourly else {datetime.combine(d, time()) for d in series.must_days}
    # A day with a 3-hour outage is a little low as a whole: neutral for day buckets.
    neutral = series.neutral_days | ({h.date() for h in series.must_hours if h.date() not in series.must_days}
                                     if not hourly else set())
    found_planted = {p for p in planted if any(s <= p < e for s, e, _ in found)}
    true = false = 0
    shift_found = False
    for start, end, is_shift in found:
        # Every hour of a collapsed day is collapsed: a finding on one is true.
        covers = any(start <= p < end for p in planted) or (hourly and start.date() in series.must_days)
        if series.shift_day is not None and is_shift and not shift_found and \
                abs((start.date() - series.shift_day).days) <= 3:
            shift_found = True
            true += 1
        elif covers:
            true += 1
        elif any(start.date() <= d < end.date() or start.date() == d for d in neutral):
            continue
        elif hourly and any(start <= h < end for h in series.neutral_hours):
            continue  # a planted outage hour whose usual volume is under MEANINGFUL: either way
        else:
            false += 1
    total = len(planted) + (1 if series.shift_day is not None else 0)
    return total, len(found_planted) + (1 if shift_found else 0), true, false


def _flags(series: Series, hourly: bool, direction: str = "drop") -> list[tuple[datetime, datetime, bool]]:
    from anomaly_cli.volume import Direction, Settings, judge_series

    epoch = datetime(1970, 1, 1)
    if hourly:
        start = min(series.hours)
        items = []
        for k in range(int((series.end - start).total_seconds() // 3600)):
            when = start + timedelta(hours=k)
            index = int((when - epoch).total_seconds() // 3600)
            items.append((index, (index + 72) % 168, index % 24, series.hours.get(when, 0), 0.0))
        flags = judge_series(Settings.for_bucket(3600, direction=Direction(direction)), items)
        return [(epoch + timedelta(hours=f.start), epoch + timedelta(hours=f.end), f.shift) for f in flags]
    days = series.days()
    first = min(days)
    items = []
    for k in range((series.end.date() - first).days):
        d = first + timedelta(k)
        index = (d - epoch.date()).days
        items.append((index, (index + 3) % 7, 0, days.get(d, 0), 0.0))
    flags = judge_series(Settings.for_bucket(86400, direction=Direction(direction)), items)
    return [(epoch + timedelta(days=f.start), epoch + timedelta(days=f.end), f.shift) for f in flags]


if __name__ == "__main__":  # python -m tests.series [first_seed] [seeds]: the recall/precision table
    import sys

    first_seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for hourly in (False, True):
        for name in SCENARIOS:
            totals = [0, 0, 0, 0]
            for seed in range(first_seed, first_seed + count):
                series = make(name, seed)
                for i, value in enumerate(score(_flags(series, hourly), series, hourly=hourly)):
                    totals[i] += value
            planted, found, true, false = totals
            print(f"{'hour' if hourly else 'day':4} {name:8} recall {found}/{planted}  precision {true}/{true + false}")
