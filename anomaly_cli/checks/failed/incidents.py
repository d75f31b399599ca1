"""failed: elevated buckets judged in time order against a trailing baseline and pooled into incidents."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from anomaly_cli.buckets import from_epoch
from anomaly_cli.checks.failed.rules import DAY, MIN_BASELINE, BucketCount, Rules, is_anomalous, is_elevated

@dataclass
class Incident:
    """Consecutive elevated buckets judged together; expected = failures expected at their baselines."""

    members: list[BucketCount] = field(default_factory=list)  # consecutive, empty buckets included
    expected: float = 0.0
    reported: bool = True  # False for a candidate in the history before --since

    @property
    def start(self) -> int:
        return self.members[0].start

    @property
    def total(self) -> int:
        return sum(b.total for b in self.members)

    @property
    def failed(self) -> int:
        return sum(b.failed for b in self.members)

    @property
    def expected_rate(self) -> float:
        return self.expected / self.total if self.total else 0.0

    def add(self, bucket: BucketCount, p0: float) -> None:
        self.members.append(bucket)
        self.expected += bucket.total * p0

    def end(self, size: int) -> int:
        return self.members[-1].start + size


@dataclass
class Tally:
    """What the judge saw, for the summary notes."""

    judged: int = 0
    no_baseline: int = 0
    unknown_status: int = 0


def detect(buckets: Iterable[BucketCount], *, size: int, history_days: int, judge_from: int | None,
           rules: Rules, tally: Tally | None = None,
           plot: Callable[..., None] | None = None) -> Iterator[Incident]:
    """Judge buckets in time order; yield the anomalous incidents that start at or after judge_from.

    The baseline of a bucket is the pooled failure rate (smoothed by one failure and one success)
    of the buckets in the previous history_days, leaving out buckets that belong to an anomalous
    incident or to the candidate still open. Elevated buckets form one candidate while at most one
    thin bucket (under min_volume transactions, or none) separates them; the candidate is reported
    when, pooled, it passes is_anomalous. Buckets before judge_from are judged the same way, to keep their anomalies out
    of the baseline, but never reported.
    """
    tally = tally if tally is not None else Tally()
    baseline: deque[BucketCount] = deque()
    base_total = base_failed = 0
    run: Incident | None = None
    # A thin bucket after the candidate: it joins if the next bucket is elevated (in fine buckets
    # an outage has moments with one or two transactions that happen to succeed).
    held: tuple[BucketCount, float] | None = None

    def keep(bucket: BucketCount) -> None:
        nonlocal base_total, base_failed
        if bucket.total:
            baseline.append(bucket)
            base_total += bucket.total
            base_failed += bucket.failed

    def close() -> Iterator[Incident]:
        nonlocal run, held
        incident, run = run, None
        if incident is not None:
            if is_anomalous(incident, rules):
                if incident.reported:
                    yield incident
            else:  # a candidate that did not hold up is ordinary traffic after all
                for bucket in incident.members:
                    keep(bucket)
        if held is not None:
            keep(held[0])
            held = None

    for bucket in buckets:
        in_window = judge_from is None or bucket.start >= judge_from
        if run is not None:
            # A candidate ends where the history gives way to the audited window, and at a gap of
            # two buckets; a single empty bucket counts as a thin one it may bridge.
            follows = run.end(size) if held is None else held[0].start + size
            if in_window != run.reported or bucket.start > follows + size:
                yield from close()
            elif bucket.start == follows + size:
                if held is None:
                    held = (BucketCount(follows, 0, 0), 0.0)
                else:
                    yield from close()
        while baseline and baseline[0].start < bucket.start - history_days * DAY:
            old = baseline.popleft()
            base_total -= old.total
            base_failed -= old.failed
        p0 = (base_failed + 1) / (base_total + 2)
        judgeable = base_total >= MIN_BASELINE
        if in_window:
            tally.unknown_status += bucket.unknown
            if judgeable:
                tally.judged += 1
                if plot is not None and bucket.total:
                    plot("failure_rate", t=from_epoch(bucket.start), value=100 * bucket.failed / bucket.total,
                         expected=100 * p0)
            else:
                tally.no_baseline += 1
        if judgeable and is_elevated(bucket.failed, bucket.total, p0, rules):
            if run is None:
                run = Incident(reported=in_window)
            if held is not None:
                run.add(*held)
                held = None
            run.add(bucket, p0)
        elif run is not None and held is None and bucket.total < rules.min_volume:
            held = (bucket, p0)
        else:
            yield from close()
            keep(bucket)
    yield from close()

