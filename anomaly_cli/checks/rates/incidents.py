"""rates: anomalous units merged into incidents, judged in time order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from anomaly_cli.checks.rates.baseline import Baseline, Gap, Unit
from anomaly_cli.checks.rates.judge import Verdict, judge
from anomaly_cli.checks.rates.rules import APPROVED_DROP, Rules

@dataclass(slots=True)
class Step:
    """One unit of an incident with its verdict; `anomalous` for the incident's kind."""

    unit: Unit
    verdict: Verdict
    anomalous: bool


@dataclass
class Incident:
    """Anomalous units of one kind (rates, or the approved pace) with the units bridged between them."""

    kind: str  # "rates" or APPROVED_DROP
    steps: list[Step] = field(default_factory=list)  # first to last anomalous unit

    @property
    def start(self) -> int:
        return self.steps[0].unit.start

    @property
    def end(self) -> int:
        return self.steps[-1].unit.end


class Tracker:
    """Merges anomalous units of one kind into incidents, bridging at most `gap` seconds."""

    def __init__(self, kind: str, gap: int) -> None:
        self.kind, self.gap = kind, gap
        self.open: Incident | None = None
        self.pending: list[Step] = []

    def feed(self, unit: Unit, verdict: Verdict, anomalous: bool) -> Incident | None:
        """Take the next unit; return an incident that can no longer grow, if any."""
        done = None
        if self.open is not None and (unit.start if anomalous else unit.end) - self.open.end > self.gap:
            done, self.open = self.open, None
            self.pending.clear()
        if anomalous:
            if self.open is None:
                self.open = Incident(self.kind)
            self.open.steps.extend(self.pending)
            self.open.steps.append(Step(unit, verdict, True))
            self.pending.clear()
        elif self.open is not None:
            self.pending.append(Step(unit, verdict, False))
        return done

    def close(self) -> Incident | None:
        done, self.open = self.open, None
        self.pending.clear()
        return done


@dataclass
class Tally:
    units_judged: int = 0
    units_low_volume: int = 0
    units_without_baseline: int = 0


def detect(stream: Iterable[Unit | Gap], rules: Rules, *, report_from: int | None = None,
           tally: Tally | None = None) -> Iterator[Incident]:
    """Judge units in time order; yield the incidents (of both kinds) ending after report_from.

    A unit joins the baseline only once no incident can bridge to it any more, and only when it
    was not anomalous and held min_volume transactions: the bucket under test and the incident it
    belongs to never shape its own expectation.
    """
    tally = tally if tally is not None else Tally()
    base = Baseline(rules.baseline_seconds, rules.approved)
    trackers = (Tracker("rates", rules.gap_seconds), Tracker(APPROVED_DROP, rules.gap_seconds))
    held: list[Unit] = []
    last_flag = None
    busy = False  # did the previous unit hold min_volume transactions?

    def finish(incident: Incident | None) -> Iterator[Incident]:
        # Overlapping the window, judged by the untrimmed span (describe may trim its edges).
        if incident is not None and (report_from is None or incident.end > report_from):
            yield incident

    for unit in stream:
        if isinstance(unit, Gap):
            for tracker in trackers:
                yield from finish(tracker.close())
            base.clear()
            held.clear()
            last_flag = None
            busy = False
            continue
        if last_flag is None or unit.start - last_flag > rules.gap_seconds:
            for kept in held:
                base.add(kept)
            held.clear()
        base.trim(unit.start)
        verdict = judge(unit, base, rules, sudden=busy or trackers[1].open is not None)
        busy = unit.total >= rules.min_volume
        if report_from is None or unit.start >= report_from:
            if verdict.judged:
                tally.units_judged += 1
            elif unit.total < rules.min_volume:
                tally.units_low_volume += 1
            else:
                tally.units_without_baseline += 1
        flags = (verdict.anomalous, verdict.drop_anomalous)
        for tracker, flagged in zip(trackers, flags):
            yield from finish(tracker.feed(unit, verdict, flagged))
        if any(flags):
            held.clear()  # bridged into the incident, never into the baseline
            last_flag = unit.end
        elif unit.total >= rules.min_volume:
            held.append(unit)
    for tracker in trackers:
        yield from finish(tracker.close())

