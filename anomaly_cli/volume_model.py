"""The volume judgement's vocabulary: settings, what a bucket is compared with, and its verdicts."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from anomaly_cli.stats import normal_tail


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
    shift_run: int = 7  # buckets since a change that can make it a level shift
    shift_z: float = 1.0
    shift_h: float = 5.0  # a level shift's CUSUM of log ratios reaches this many log sds
    min_shift: float = 0.2  # a level shift moves the level by at least this fraction
    shift_share: float = 1.0  # share of the run that must lie on that side (hours: 0.8)
    min_recent: int = 2  # earlier days of the same slot of the day the last fallback needs
    day_cv2: float = 0.25  # sub-day buckets: the days' c^2 assumed until measured (50 % apart)
    # Judge by c^2 widened for its sampling error (stats.c2_bound). The day totals behind sub-day
    # buckets do not: they only follow the level and find shifts, whose rules are fitted to the point c^2.
    widen: bool = True
    # Held flags made final while a change their way is unconfirmed are judged again at the level
    # it suggests. Not the day totals behind sub-day buckets: their flags are never reported, and
    # taking those days back into their baselines moves the hours' trend (measured: worse).
    rejudge: bool = True

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
    shared: float = 0.0  # given today: the part of c2 that is today's level's (common to its buckets)
    z_sigma: float = 0.0  # the spread a level shift's z scores are measured in (0: sigma)


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
    judged: Expectation | None = None  # what a bucket was judged against (re-judged at a new level)


@dataclass(frozen=True, slots=True)
class Verdict:
    expectation: Expectation | None  # None: nothing to compare with yet
    kind: Direction | None  # DROP or SPIKE when flagged
