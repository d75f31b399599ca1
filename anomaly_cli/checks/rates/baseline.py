"""rates: buckets, low-volume pooling and the trailing baseline a unit is judged against."""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from anomaly_cli import buckets
from anomaly_cli.checks.rates.rules import BASELINE_MAX_AGE, COMBINED, MIN_BASELINE_UNITS, NO_DATA_SECONDS, POOL_SECONDS

@dataclass(frozen=True, slots=True)
class Bucket:
    """One measured bucket: start in epoch seconds and the count of each (lower-cased) status."""

    start: int
    counts: dict[str, int]


@dataclass(slots=True)
class Unit:
    """What is judged: one bucket, or consecutive low-volume buckets pooled to --min-volume."""

    start: int
    end: int
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def minutes(self) -> float:
        return (self.end - self.start) / 60


class Gap:
    """A silence longer than NO_DATA_SECONDS: pooling, baseline and incidents start over after it."""


def fill(stream: Iterable[Bucket], size: int) -> Iterator[Bucket | Gap]:
    """Every bucket from the first to the last measured one; absent buckets are zero-count buckets,
    but a silence over NO_DATA_SECONDS is one Gap (missing data, after which everything restarts)."""
    return buckets.fill(stream, lambda b: b.start, lambda s: Bucket(s, {}), size, max_gap=NO_DATA_SECONDS, gap=Gap)


def pool(stream: Iterable[Bucket | Gap], size: int, min_volume: int) -> Iterator[Unit | Gap]:
    """Consecutive buckets gathered until they hold min_volume transactions or span 15 minutes."""
    cap = max(POOL_SECONDS, size)
    unit: Unit | None = None
    for item in stream:
        if isinstance(item, Gap):
            if unit is not None:
                yield unit
                unit = None
            yield item
            continue
        if unit is None:
            unit = Unit(item.start, item.start)
        unit.counts.update(item.counts)
        unit.end = item.start + size
        if unit.total >= min_volume or unit.end - unit.start >= cap:
            yield unit
            unit = None
    if unit is not None:
        yield unit


class Baseline:
    """The last unflagged units with enough volume, covering at least `seconds` of time.

    Running sums keep each judgement O(statuses): per status the pooled count, and the sum and
    sum of squares of its per-unit rate (a unit without the status adds a zero rate).
    """

    def __init__(self, seconds: int, approved: str) -> None:
        self.seconds, self.approved = seconds, approved
        self.units: deque[Unit] = deque()
        self.covered = 0
        self.total = 0
        self.counts: Counter[str] = Counter()
        self.rate_sum: Counter[str] = Counter()
        self.rate_sq: Counter[str] = Counter()

    def _rates(self, unit: Unit) -> Iterator[tuple[str, float]]:
        total = unit.total
        for status, n in unit.counts.items():
            if status != self.approved:
                yield status, n / total
        yield COMBINED, (total - unit.counts[self.approved]) / total
        yield self.approved, unit.counts[self.approved] / unit.minutes  # approvals per minute

    def _apply(self, unit: Unit, sign: int) -> None:
        self.covered += sign * (unit.end - unit.start)
        self.total += sign * unit.total
        self.counts.update({s: sign * n for s, n in unit.counts.items()})
        for status, x in self._rates(unit):
            self.rate_sum[status] += sign * x
            self.rate_sq[status] += sign * x * x

    def add(self, unit: Unit) -> None:
        self.units.append(unit)
        self._apply(unit, 1)

    def trim(self, now: int) -> None:
        """Drop units no longer needed to cover `seconds`, and any older than a day."""
        while self.units and (self.covered - (self.units[0].end - self.units[0].start) >= self.seconds
                              or self.units[0].end < now - BASELINE_MAX_AGE):
            self._apply(self.units.popleft(), -1)

    def clear(self) -> None:
        self.__init__(self.seconds, self.approved)  # type: ignore[misc]

    @property
    def ready(self) -> bool:
        return len(self.units) >= MIN_BASELINE_UNITS and self.covered >= self.seconds

    def rate(self, status: str) -> float:
        """The pooled rate of a status (COMBINED: all non-approved) over the baseline."""
        if status == COMBINED:
            return (self.total - self.counts[self.approved]) / self.total
        return self.counts[status] / self.total

    def spread(self, status: str) -> float:
        """Sample standard deviation of the status's per-unit rate (approved: per-minute pace)."""
        n = len(self.units)
        mean = self.rate_sum[status] / n
        return math.sqrt(max(self.rate_sq[status] - n * mean * mean, 0.0) / (n - 1))

    def pace(self) -> float:
        """Approved transactions per minute over the baseline."""
        return self.counts[self.approved] / (self.covered / 60)

    def smoothed(self, status: str) -> float:
        """The rate for the binomial floor: one event and one non-event added, so never 0 or 1."""
        k = self.total - self.counts[self.approved] if status == COMBINED else self.counts[status]
        return (k + 1) / (self.total + 2)

