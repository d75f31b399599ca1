"""The day behind sub-day buckets (hours, quarter hours): its level today, its trend, its shifts.

Day-to-day noise is what makes an hour noisy: a busy day lifts every hour of it. So an hour is
also judged against its expectation times today's level so far, a gamma-Poisson estimate
(today's earlier unflagged counts + a) / (their expectations + a), with a = 1 / c^2 of the day
totals (how far days wander), so three lost hours of a day running at three times its usual
volume are a collapse even when they reach the usual volume of that hour. The day totals are
judged by a day judge of their own (period 7): its level factor is the hours' trend, and its
level shifts are the hours' shifts (one finding, then the hours' history is rescaled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import math

from anomaly_cli.stats import fit_c2, poisson_lower_tail
from anomaly_cli.volume_model import Direction, Flag, Settings

if TYPE_CHECKING:
    from anomaly_cli.volume import VolumeJudge

HOUR_NOISE = 0.09  # c^2 an hour adds to its day's level until measured (30 %)


@dataclass(frozen=True, slots=True)
class Today:
    """Today's level so far against the buckets' expectations, and the extra spread it brings."""

    level: float
    c2: float  # Var = E + c2 E^2 of a bucket given that level
    shared: float = 0.0  # the part of c2 that is the level's own uncertainty (common to today's buckets)


@dataclass(frozen=True, slots=True)
class DayShift:
    """A level shift the day judge found, in bucket indexes."""

    start: int
    scale: float
    flag: Flag | None  # None: adapted to silently


class DayLevel:
    def __init__(self, settings: Settings, make_judge: type[VolumeJudge]) -> None:
        self.s = settings
        # The day judge sees every shift (direction both): the hours follow it either way, and
        # report it only when asked for its direction.
        self.days = make_judge(Settings(period=7, per_day=1, history=settings.history,
                                        min_history=settings.min_history, sensitivity=settings.sensitivity,
                                        direction=Direction.BOTH, min_expected=settings.min_expected,
                                        collapse=settings.collapse, widen=False, rejudge=False))
        self.first: int | None = None  # the first bucket of today
        self._last_daily = -1
        self.buckets = 0
        self._count = self._extra = 0.0
        self._seen = self._expected = 0.0  # today's unflagged judged buckets: counts, expectations
        self._all = self._all_expected = 0.0  # today's judged buckets, flagged or not
        self._most = 0.0  # the largest expectation of a bucket of today so far
        self._pool: list[tuple[float, float]] = []  # (count - expected given today, that expected)
        self._c2: float | None = None
        self._starts: dict[int, int] = {}  # day index -> its first bucket

    def trend(self) -> float:
        """The current level of the days against their weekdays' medians (1 without a baseline).
        Not held while the day judge suspects a change: the hours follow the days as they come
        (their expectations matter today), the shift itself is found on the day totals."""
        return self.days.level(hold=False)

    def today(self) -> Today:
        c2_day = self.days.dispersion()
        a = 1.0 / max(c2_day if c2_day is not None else self.s.day_cv2, 0.01)
        level = (self._seen + a) / (self._expected + a)
        hour = self._c2 if self._c2 is not None else HOUR_NOISE
        return Today(level, hour + 1.0 / (self._seen + a), 1.0 / (self._seen + a))

    def measured(self) -> bool:
        """Whether an earlier bucket of today had a meaningful expectation (--min-expected): the
        first business hour has nothing of today to measure its level by."""
        return self._most >= self.s.min_expected

    def collapsed(self, count: float, expected: float) -> bool | None:
        """Today so far, this bucket included: True when it is a collapse (under 1.5 x --collapse
        of its expectation and, by a Poisson test, below the lowest level the days' own spread
        reaches), False when it runs above that zone, None while it cannot tell (little expected
        yet, or low but not proven). 4 sales against 30 expected is a day at 5 % by Poisson
        chance; 1 against 20 in the early morning may be a quiet day at 30 %."""
        total, wanted = self._all + count, self._all_expected + expected
        if wanted < self.s.min_expected:
            return None
        zone = 1.5 * self.s.collapse
        if total >= zone * wanted:
            return False
        if poisson_lower_tail(math.floor(total), self._lowest() * wanted) <= self.s.alpha:
            return True
        return None

    def _lowest(self) -> float:
        """The lowest day level the days' spread reaches by chance (sensitivity sigmas in log space)."""
        c2 = self.days.dispersion()
        spread = math.sqrt(math.log1p(c2 if c2 is not None else self.s.day_cv2))
        return max(1.5 * self.s.collapse, math.exp(-self.s.sensitivity * spread))

    def next_bucket(self, index: int, slot: int, daily: int) -> DayShift | None:
        """Start a new day when this bucket begins one; the finished day goes to the day judge."""
        shift = None
        if self.first is None or daily < self._last_daily or index >= self.first + self.s.per_day:
            if self.first is not None and self.buckets >= self.s.per_day - 1:  # 23 hours: spring forward
                shift = self._close()
            self.first, self.buckets = index, 0
            self._count = self._extra = self._seen = self._expected = self._all = self._all_expected = 0.0
            self._most = 0.0
            self._starts[index // self.s.per_day] = index
        self._last_daily = daily
        self._slot = slot // self.s.per_day
        return shift

    def add(self, count: float, extra: float, expected: float | None, given_today: float | None,
            usable: bool) -> None:
        """Count a judged bucket into today (`expected`: its expectation without today's level)."""
        self.buckets += 1
        self._count += count
        self._extra += extra
        if expected is None:
            return
        self._all += count
        self._all_expected += expected
        self._most = max(self._most, expected)
        if not usable:
            return
        self._seen += count
        self._expected += expected
        if given_today is not None and given_today >= 1:
            self._pool.append((count - given_today, given_today))
            if len(self._pool) % self.s.per_day == 0 and len(self._pool) >= self.s.period:
                del self._pool[:-self.s.period * self.s.history]
                self._c2 = fit_c2(self._pool)

    def _close(self) -> DayShift | None:
        assert self.first is not None
        day = self.first // self.s.per_day
        _, flags = self.days.feed(day, self._slot, 0, self._count, self._extra)
        rebase = self.days.take_rebase()
        if rebase is None:
            return None
        start_day, scale = rebase
        start = self._starts.get(start_day, start_day * self.s.per_day)
        flag = next((f for f in flags if f.shift), None)
        if flag is not None:
            asked = self.s.direction is Direction.BOTH or self.s.direction is flag.kind
            flag = Flag(flag.kind, start, self.first + self.buckets, flag.count, flag.extra, flag.expected,
                        flag.expected_extra, flag.basis, shift=True) if asked else None
        self._starts = {d: i for d, i in self._starts.items() if d >= day - 7 * self.s.history}
        return DayShift(start, scale, flag)
