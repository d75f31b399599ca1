"""rates: one unit judged against its baseline (status rates and the approved pace)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from anomaly_cli.checks.rates.baseline import Baseline, Unit
from anomaly_cli.checks.rates.rules import COMBINED, Z_CRITICAL, Z_WARNING, Rules, points

@dataclass(slots=True)
class Judged:
    """One status's (or the combined rate's) verdict in one unit."""

    count: int
    expected: float  # the baseline rate as a fraction
    z: float
    score: int
    anomalous: bool


@dataclass(slots=True)
class Verdict:
    judged: bool = False  # rates judged (volume and baseline enough)
    statuses: dict[str, Judged] = field(default_factory=dict)  # includes COMBINED when judged
    drop_judged: bool = False
    drop_score: int = 0
    drop_anomalous: bool = False
    expected_pace: float = 0.0  # approvals per minute the baseline expects
    expected_share: float = 0.0  # approved share of all transactions in the baseline

    @property
    def anomalous(self) -> bool:
        return any(j.anomalous for j in self.statuses.values())

    @property
    def score(self) -> int:
        return max((j.score for j in self.statuses.values() if j.anomalous), default=0)


def z_score(rate: float, base: Baseline, status: str, n: int) -> float:
    """(rate - baseline rate - 1/2n) / sd, sd = max(the baseline's spread, binomial sqrt(p(1-p)/n)).

    The 1/2n is the continuity correction of a count: without it 3 events where 0.6 are expected
    would pass for 3 sigma, though chance gives as many 2 % of the time.
    """
    p = base.smoothed(status)
    sd = max(base.spread(status), math.sqrt(p * (1 - p) / n))
    return (rate - base.rate(status) - 0.5 / n) / sd


def judge(unit: Unit, base: Baseline, rules: Rules, *, sudden: bool = True) -> Verdict:
    """Each status's rate and the combined non-approved rate against the baseline; the approved pace
    too when `sudden` (the previous unit held min_volume, or an approved drop is under way)."""
    verdict = Verdict()
    if not base.ready:
        return verdict
    total = unit.total
    verdict.expected_share = base.counts[rules.approved] / base.total if base.total else 0.0
    if total >= rules.min_volume:
        verdict.judged = True
        # Statuses absent from the unit are judged at a zero count, so that the incident's
        # expected count of every status adds up over all of its units.
        watched = {s for s, n in base.counts.items() if n > 0} | set(rules.thresholds) | set(unit.counts)
        observed = {s: unit.counts[s] for s in watched if s not in (rules.approved, COMBINED)}
        observed[COMBINED] = total - unit.counts[rules.approved]
        for status, k in observed.items():
            rate = k / total
            z = z_score(rate, base, status, total)
            score = points(rate * 100, z, rules.thresholds.get(status))
            verdict.statuses[status] = Judged(k, base.rate(status), z, score,
                                              score >= rules.min_score and k >= rules.min_count)
    # The approved pace is judged where one bucket is expected to hold min_volume transactions,
    # and only for a sudden fall: a silent quarter of an hour at midday is judged (pooled), the
    # thinning evening, measured against a busier baseline, is not.
    pace = base.pace()
    verdict.expected_pace = pace
    if sudden and pace > 0 and base.total / base.covered * rules.bucket_seconds >= rules.min_volume:
        verdict.drop_judged = True
        observed_pace = unit.counts[rules.approved] / unit.minutes
        drop = 1 - observed_pace / pace
        sd = max(base.spread(rules.approved), math.sqrt(pace / unit.minutes))
        z = (pace - observed_pace) / sd
        level = 50 if drop >= (1 + rules.approved_drop) / 2 else 30 if drop >= rules.approved_drop else 0
        verdict.drop_score = min(100, level + (40 if z >= Z_CRITICAL else 25 if z >= Z_WARNING else 0))
        verdict.drop_anomalous = level > 0 and verdict.drop_score >= rules.min_score
    return verdict

