"""Volume judgement shared by the checks that count things per bucket (sales, checkout, rates).

expected = median of the same slot of the week (weekday; hour of the week) over the last
`history` weeks x a level factor (the last two weeks' counts against their slots' medians), so
growth and declines are followed. Var = E + c^2 E^2 (Poisson plus a negative-binomial part, c
fitted robustly to the pooled residuals). A drop: beyond `sensitivity` sigmas (or far below in
log space) with a negative-binomial count test, or, however noisy the series, under `collapse`
of an expectation of at least `min_expected` with a Poisson test. Spikes mirror the sigma rule.

Flagged buckets stay out of later baselines. `shift_run` buckets on one side, by a median of
`shift_z` sigmas and similar ratios, are a level shift: one flag from its first bucket, then the
history is rescaled to the new level. With fewer than `min_history` weeks of a slot, the best
fallback (the same slot of the day over recent days, else the last few) with a spread of at
least 30 %, so only collapses are reported; the basis and its confidence are returned.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import median, pstdev

from anomaly_cli.stats import (
    count_lower_tail, fit_c2, median_error, normal_tail, poisson_upper_tail, robust_sd, tail_sd,
)

FALLBACK_SPREAD = 0.3  # least relative spread of a fallback baseline: only collapses are reported
RATIO_AGREEMENT = 6.0  # a shift's largest bucket ratio is at most this multiple of its smallest
Z_CLIP = 3.0  # one extreme bucket must not make a shift on its own


class Direction(enum.StrEnum):
    DROP = "drop"
    SPIKE = "spike"
    BOTH = "both"


class Basis(enum.StrEnum):
    """What a bucket was compared with: its slot of the week, all recent days, or the last few."""

    SEASONAL = "seasonal"
    ALL_DAYS = "all_days"
    RECENT = "recent"

    @property
    def confidence(self) -> str:
        return {"seasonal": "high", "all_days": "medium", "recent": "low"}[self.value]


@dataclass(frozen=True, slots=True)
class Settings:
    period: int  # buckets in a week: 7 (days) or 168 (hours)
    per_day: int = 1  # buckets in a day
    history: int = 8  # weeks of same-slot history
    min_history: int = 3  # same-slot buckets needed for the seasonal baseline
    sensitivity: float = 3.0
    direction: Direction = Direction.DROP
    min_expected: float = 10.0  # smallest expectation the collapse rule applies to
    collapse: float = 0.1  # under this fraction of a meaningful expectation: always a drop
    shift_run: int = 7  # consecutive buckets on one side that make a level shift
    shift_z: float = 1.0
    shift_share: float = 1.0  # share of the run that must lie on that side (hours: 0.8)
    min_recent: int = 2  # earlier days of the same slot of the day the last fallback needs

    @property
    def alpha(self) -> float:
        return normal_tail(self.sensitivity)

    @classmethod
    def for_bucket(cls, seconds: int, **kw: object) -> Settings:
        """Defaults for day or hour buckets (hours: a shift must last two days, 80 % of its hours)."""
        if seconds >= 86400:
            return cls(period=7, per_day=1, **kw)  # type: ignore[arg-type]
        per_day = 86400 // seconds
        kw.setdefault("shift_run", 2 * per_day)
        kw.setdefault("shift_share", 0.8)
        kw.setdefault("shift_z", 0.75)
        return cls(period=7 * per_day, per_day=per_day, **kw)  # type: ignore[arg-type]


@dataclass(slots=True)
class Past:
    """A judged bucket as later baselines see it."""

    index: int
    slot: int
    count: float
    extra: float  # a quantity carried along (revenue): expected like the count, never judged
    usable: bool = True  # False while flagged: left out of baselines
    base: float = 0.0  # its slot median when judged (for the level factor); 0: no seasonal basis
    z: float | None = None  # clipped standardized deviation, seasonal basis only
    ratio: float = 1.0  # count / expected


@dataclass(frozen=True, slots=True)
class Expectation:
    count: float
    extra: float
    sigma: float
    basis: Basis
    size: int  # buckets the baseline was taken from
    log_sd: float | None = None  # spread of log(count / expected) in meaningful buckets, if measured
    c2: float = 0.0  # the multiplicative noise (Var = E + c2 E^2) the count test allows for


@dataclass(slots=True)
class Flag:
    """A reportable judgement: one bucket, or a level shift from `start` to `end` (exclusive)."""

    kind: Direction  # DROP or SPIKE
    start: int
    end: int
    count: float
    extra: float
    expected: float
    expected_extra: float
    basis: Basis
    shift: bool = False
    members: list[Past] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verdict:
    expectation: Expectation | None  # None: nothing to compare with yet
    kind: Direction | None  # DROP or SPIKE when flagged


class VolumeJudge:
    """Judges consecutive buckets (gaps filled with zeros by the caller) in time order.

    `feed` returns the flags that are final: a flagged bucket is held while it may still turn out
    to be the start of a level shift (while the run of buckets on its side goes on).
    """

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._slots: dict[int, deque[Past]] = {}
        self._daily: dict[int, deque[Past]] = {}  # per hour of day (days: one group), 14 days
        self._week: deque[Past] = deque(maxlen=2 * settings.period)  # the last two weeks: the level
        # (residual / sqrt(median error), expected) of unflagged seasonal buckets
        self._pool: deque[tuple[float, float]] = deque(maxlen=settings.period * settings.history)
        self._logs: deque[float] = deque(maxlen=settings.period * settings.history)  # meaningful buckets
        self._log_sd: float | None = None
        self._trail: deque[Past] = deque(maxlen=4 * settings.shift_run)
        self._pending: list[Flag] = []
        self._shift_from: int | None = None
        self._last_shift: tuple[Direction, int] | None = None  # kind and end of the latest shift
        self._c2: float | None = None
        self._since_c2 = 0
        self._medians: dict[int, float | None] = {}

    # --- the baseline -------------------------------------------------------------------------

    def _median(self, slot: int) -> float | None:
        """The slot's current median of usable counts (cached until the slot changes)."""
        if slot not in self._medians:
            usable = [p.count for p in self._slots.get(slot, ()) if p.usable]
            self._medians[slot] = float(median(usable)) if len(usable) >= self.s.min_history else None
        return self._medians[slot]

    def _factor(self) -> float:
        """The current level against the slot medians: last week's counts to their slots' medians.

        Taken against the medians as they are now (not as they were), so that when a slot's
        median catches up with a new level the factor falls back to 1 at the same moment.
        """
        pairs = []
        # The buckets of a run still on one side are left out: a level shift under way must not be
        # absorbed, bucket by bucket, before it is recognised (and reported) as one.
        run = self._run()
        for p in self._week:
            if not p.usable or (self._shift_from is not None and p.index < self._shift_from) or p.index in run:
                continue
            base = self._median(p.slot)
            if base:
                pairs.append((p.count / base, base))
        # Too little behind it (the first days after a shift, a quiet series): no correction.
        if len(pairs) < max(2, self.s.period // 4) or sum(w for _, w in pairs) < self.s.min_expected:
            return 1.0
        # A median of the ratios weighted by the medians: one busy day does not move the level,
        # and a quiet night hour weighs little.
        pairs.sort()
        half, acc = sum(w for _, w in pairs) / 2, 0.0
        for ratio, weight in pairs:
            acc += weight
            if acc >= half:
                return ratio
        return pairs[-1][0]

    def _run(self) -> set[int]:
        """Indexes of the trailing buckets that all lie on one side of their expectation (2 or more)."""
        trail = list(self._trail)
        if len(trail) < 2 or trail[-1].z is None or trail[-1].z == 0:
            return set()
        sign = 1 if trail[-1].z > 0 else -1
        run: set[int] = set()
        for p in reversed(trail):
            if p.z is None or sign * p.z <= 0:
                break
            run.add(p.index)
        return run if len(run) >= 2 else set()

    def _dispersion(self) -> float | None:
        """c^2 of Var = E + c^2 E^2, from the pooled relative residuals (None before a week of them)."""
        if len(self._pool) < self.s.period:
            return None
        if self._c2 is None or self._since_c2 >= self.s.per_day:
            # Widened while the pool is small: seven residuals say little about the tails.
            self._c2 = fit_c2(list(self._pool))
            self._log_sd = tail_sd(list(self._logs)) if len(self._logs) >= 21 else None
            self._since_c2 = 0
        return self._c2

    def expect(self, slot: int, daily: int) -> tuple[Expectation | None, float]:
        """The expectation for the next bucket of `slot` (and hour of day `daily`), and its slot median."""
        history = [p for p in self._slots.get(slot, ()) if p.usable]
        if len(history) >= self.s.min_history:
            counts = [p.count for p in history]
            base = float(median(counts))
            factor = self._factor()
            expected = base * factor
            c2 = self._dispersion()
            # The slot's own spread counts too: a few weeks can say the series is noisier than
            # the pooled model. Until three weeks of residuals exist, the fallbacks' wide spread.
            var = max((robust_sd(counts) * factor) ** 2, expected)
            if c2 is None:  # a median absolute deviation of three values can be 0 by chance
                var = max(var, (pstdev(counts) * factor) ** 2 * len(counts) / max(len(counts) - 1, 1))
            else:
                var = max(var, expected + c2 * expected * expected)
            sigma = math.sqrt(max(var, 1.0) * median_error(len(history)))
            extra = float(median(p.extra for p in history)) * factor
            log_sd = self._log_sd if c2 is not None else None
            return Expectation(expected, extra, sigma, Basis.SEASONAL, len(history), log_sd, c2 or 0.0), base
        group = [p for p in self._daily.get(daily, ()) if p.usable]
        days = 7 if self.s.per_day == 1 else 5
        if len(group) >= days:
            basis = Basis.ALL_DAYS
        else:
            group = group[-7:]
            if len(group) < self.s.min_recent:
                return None, 0.0
            basis = Basis.RECENT
        expected = float(median(p.count for p in group))
        extra = float(median(p.extra for p in group))
        seen = self._slots.get(slot)
        if seen:  # never expect more than its own slot has held (flagged or not: a closed Sunday)
            most = max(p.count for p in seen)
            if most < expected:
                extra, expected = extra * (most / expected), most
        var = max(robust_sd(p.count for p in group) ** 2, expected, (FALLBACK_SPREAD * expected) ** 2)
        sigma = math.sqrt(max(var, 1.0) * median_error(len(group)))
        return Expectation(expected, extra, sigma, basis, len(group), None, FALLBACK_SPREAD ** 2), 0.0

    # --- judging --------------------------------------------------------------------------------

    def assess(self, count: float, e: Expectation) -> Direction | None:
        s = self.s
        deviation = count - e.count
        if s.direction is not Direction.SPIKE and e.count > 0:
            k = math.floor(count)
            # A collapse is reported however noisy the series: under --collapse of a meaningful
            # expectation, with only the Poisson test (1 against 2 is chance, 1 against 12 is not).
            if e.count >= s.min_expected and count < s.collapse * e.count \
                    and count_lower_tail(k, e.count, 0.0) <= s.alpha:
                return Direction.DROP
            low = deviation < -s.sensitivity * e.sigma
            if e.log_sd is not None and e.count >= s.min_expected:
                # Multiplicative noise is symmetric in log space: a fall far beyond the series'
                # own log spread (one sigma more than asked, for the tails) is a drop even where
                # the linear sigma reaches below zero.
                low = low or math.log((count + 0.5) / (e.count + 0.5)) < -(s.sensitivity + 1) * e.log_sd
            # Those rules are about the series' spread: their count test allows for its
            # overdispersion too (negative binomial with the fitted c^2).
            if low and count_lower_tail(k, e.count, e.c2) <= s.alpha:
                return Direction.DROP
        if s.direction is not Direction.DROP and deviation > s.sensitivity * e.sigma:
            if poisson_upper_tail(math.ceil(count), max(e.count, 0.5)) <= s.alpha:
                return Direction.SPIKE
        return None

    def feed(self, index: int, slot: int, daily: int, count: float, extra: float = 0.0) -> tuple[Verdict, list[Flag]]:
        """Judge one bucket; return its verdict and the flags that became final."""
        e, base = self.expect(slot, daily)
        kind = self.assess(count, e) if e is not None else None
        past = Past(index, slot, count, extra, usable=kind is None, base=base)
        if e is not None:
            past.ratio = count / e.count if e.count > 0 else 1.0
            if e.basis is Basis.SEASONAL:
                past.z = max(-Z_CLIP, min(Z_CLIP, (count - e.count) / e.sigma))
                if kind is None and e.count >= 1:
                    # Scaled back by the median's own uncertainty, which sigma adds again.
                    scale = math.sqrt(median_error(e.size))
                    self._pool.append(((count - e.count) / scale, e.count))
                    if e.count >= self.s.min_expected:
                        self._logs.append(math.log((count + 0.5) / (e.count + 0.5)))
                    self._since_c2 += 1
        # Appended after judging: a bucket is never part of its own baseline.
        self._slots.setdefault(slot, deque(maxlen=self.s.history)).append(past)
        self._medians.pop(slot, None)
        self._daily.setdefault(daily, deque(maxlen=14)).append(past)
        self._week.append(past)
        # Only buckets with a meaningful expectation speak of a shift: a quiet night hour's
        # count is Poisson chance whatever the level, and it would break every run.
        if e is None or e.basis is not Basis.SEASONAL or e.count >= self.s.min_expected:
            self._trail.append(past)
        if kind is not None and e is not None:
            self._pending.append(Flag(kind, index, index + 1, count, extra, e.count, e.extra, e.basis,
                                      members=[past]))
        done = self._shift(index)
        done += self._release()
        return Verdict(e, kind), done

    def _shift(self, index: int) -> list[Flag]:
        """Detect a level shift ending at this bucket; on one, make it the new normal."""
        s = self.s
        run = list(self._trail)[-s.shift_run:]
        if len(run) < s.shift_run or any(p.z is None for p in run):
            return []
        for sign, kind in ((-1, Direction.DROP), (1, Direction.SPIKE)):
            zs = [sign * p.z for p in run if p.z is not None]
            half = zs[len(zs) // 2:]
            ratios = [p.ratio for p in run]
            # Medians, not means: one outage day inside an ordinary week is not a new level.
            # One odd bucket (a chance rise, or an outage on top of the shift) may sit in the run.
            low = sorted(ratios)[1]
            if (sum(z > 0 for z in zs) < s.shift_share * len(zs) - 1 or median(zs) < s.shift_z
                    or median(half) < s.shift_z or low <= s.collapse
                    or max(ratios) > RATIO_AGREEMENT * low):
                continue
            # The shift began at the earliest bucket from which every bucket sits nearer the new
            # level (the run's latest half) than the old one: a chance low day before it is not it.
            level = math.log(max(median(p.ratio for p in run[len(run) // 2:]), 1e-9))
            members = list(self._trail)
            while members and (members[0].z is None or
                               abs(math.log(max(members[0].ratio, 1e-9)) - level)
                               >= abs(math.log(max(members[0].ratio, 1e-9)))
                               or any(abs(math.log(max(p.ratio, 1e-9)) - level) >= abs(math.log(max(p.ratio, 1e-9)))
                                      for p in members[1:])):
                members = members[1:]
            if len(members) < len(run) // 2:
                continue  # the latest buckets are not at one level yet
            start = members[0].index
            expected = sum(p.count / p.ratio if p.ratio else p.count for p in members)
            scale = sum(p.count for p in members) / expected if expected else 1.0
            for p in members:
                p.usable = True  # the new level is the normal: it enters the baselines
            # The history before the shift is rescaled to the new level, so the slot medians agree
            # with it at once instead of flipping one slot at a time weeks later.
            for history in self._slots.values():
                for p in history:
                    if p.index < start:
                        p.count *= scale
                        p.extra *= scale
            self._medians.clear()
            self._pending = [f for f in self._pending if f.start < start]
            self._shift_from = start
            self._trail.clear()
            # A small shift found again right after one the same way is its continuation (the
            # first step under-measured it): adapted to, not reported twice.
            again = self._last_shift is not None and self._last_shift[0] is kind \
                and start - self._last_shift[1] < 2 * s.shift_run and 0.5 < scale < 2
            self._last_shift = (kind, index + 1)
            if again or (s.direction is not Direction.BOTH and s.direction is not kind):
                return []  # adapted to silently
            return [Flag(kind, start, index + 1, sum(p.count for p in members),
                         sum(p.extra for p in members), expected, 0.0, Basis.SEASONAL, shift=True,
                         members=members)]
        return []

    def _release(self) -> list[Flag]:
        """Flags that can no longer be part of a shift: the run on their side has broken since."""
        if not self._pending:
            return []
        keep, done = [], []
        for flag in self._pending:
            sign = -1 if flag.kind is Direction.DROP else 1
            later = [p for p in self._trail if p.index > flag.start]
            broken = any(p.z is None or sign * p.z <= 0 for p in later) or flag.members[0].z is None
            (done if broken else keep).append(flag)
        self._pending = keep
        return done

    def finish(self) -> list[Flag]:
        """The flags still held when the series ends."""
        done, self._pending = self._pending, []
        return done


def judge_series(settings: Settings, buckets: Iterable[tuple[int, int, int, float, float]]) -> list[Flag]:
    """All flags of a series of (index, slot, daily, count, extra), in time order (for tests and tools)."""
    judge = VolumeJudge(settings)
    flags: list[Flag] = []
    for index, slot, daily, count, extra in buckets:
        flags += judge.feed(index, slot, daily, count, extra)[1]
    flags += judge.finish()
    return sorted(flags, key=lambda f: f.start)
