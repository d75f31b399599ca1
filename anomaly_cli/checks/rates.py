"""rates: per-minute status rates judged by the seed's rules and a z-score, merged into incidents."""

from __future__ import annotations

import enum
import math
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.errors import UsageError
from anomaly_cli.model import CheckStats, Finding, Severity
from anomaly_cli.params import Param
from anomaly_cli.wording import CENT, clock, long_date, percent

EPOCH = datetime(1970, 1, 1)
DEFAULT_THRESHOLDS = "failed=1/2,denied=10/15,reversed=2/4,backend_reversed=0.5/1"
COMBINED = "non_approved"  # the pseudo-status of all non-approved transactions together
APPROVED_DROP = "approved_drop"
MIXED = "mixed"
UNKNOWN = "unknown"  # a NULL status
POOL_SECONDS = 900  # low-volume buckets are pooled over at most 15 minutes
NO_DATA_SECONDS = 6 * 3600  # a longer silence is missing data, not an outage: everything restarts
BASELINE_MAX_AGE = 86400  # a baseline older than a day says nothing about now
MIN_BASELINE_UNITS = 3
Z_WARNING, Z_CRITICAL = 2.0, 3.0  # the seed's 2 and 3 sigma
SHORT_MINUTES = 15  # the seed's first persistence level; shorter incidents must be intense
SHORT_SCORE = 90  # rule critical and z >= 3 in the same bucket
SHORT_UNITS = 3  # anomalous buckets a short incident needs


class Source(enum.StrEnum):
    COUNTS = "counts"
    TRANSACTIONS = "transactions"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A status's business rule, in percent of all transactions in the bucket."""

    warning: float
    critical: float


def parse_thresholds(text: Any) -> dict[str, Threshold]:
    """'failed=1/2,denied=10/15' -> {status: Threshold}; ValueError on anything else."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("give thresholds as status=warning/critical, e.g. failed=1/2,denied=10/15")
    out: dict[str, Threshold] = {}
    for entry in text.split(","):
        status, eq, levels = entry.partition("=")
        status = status.strip().lower()
        warning, slash, critical = levels.partition("/")
        if not (eq and slash and status) or any(c in status for c in " /=") or status == APPROVED_DROP:
            raise ValueError(f"{entry.strip()!r} is not status=warning/critical (percentages, e.g. failed=1/2)")
        try:
            low, high = float(warning), float(critical)
        except ValueError:
            raise ValueError(f"{entry.strip()!r}: the levels must be numbers (percentages)") from None
        if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high <= 100):
            raise ValueError(f"{entry.strip()!r}: need 0 <= warning <= critical <= 100 (percentages)")
        if status in out:
            raise ValueError(f"status {status!r} is given twice")
        out[status] = Threshold(low, high)
    return out


def _thresholds_text(raw: Any) -> str:
    """The param's parse function: validated, normalised text (the params echo stays a string)."""
    rules = parse_thresholds(raw)
    return ",".join(f"{s}={t.warning:g}/{t.critical:g}" for s, t in rules.items())


def with_combined(rules: dict[str, Threshold]) -> dict[str, Threshold]:
    """The rules plus the combined non-approved rate's: given, or the sums of the status rules."""
    if COMBINED in rules:
        return rules
    return rules | {COMBINED: Threshold(sum(t.warning for t in rules.values()),
                                        sum(t.critical for t in rules.values()))}


@dataclass(frozen=True, slots=True)
class Rules:
    thresholds: dict[str, Threshold]  # including COMBINED
    approved: str = "approved"
    min_volume: int = 100
    min_count: int = 3
    min_score: int = 70
    approved_drop: float = 0.5
    baseline_seconds: int = 3600
    gap_seconds: int = 120
    bucket_seconds: int = 60


def points(rate_pct: float, z: float, rule: Threshold | None) -> int:
    """The seed's score: rule critical +50 or warning +30, z >= 3 +40 or z >= 2 +25, at most 100."""
    score = 0
    if rule is not None:
        score += 50 if rate_pct >= rule.critical else 30 if rate_pct >= rule.warning else 0
    score += 40 if z >= Z_CRITICAL else 25 if z >= Z_WARNING else 0
    return min(score, 100)


# --- buckets, pooled units and the trailing baseline --------------------------------------------

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


def fill(buckets: Iterable[Bucket], size: int) -> Iterator[Bucket | Gap]:
    """Every bucket from the first to the last measured one; absent buckets are zero-count buckets."""
    following: int | None = None
    for bucket in buckets:
        if following is not None and bucket.start > following:
            if bucket.start - following > NO_DATA_SECONDS:
                yield Gap()
            else:
                yield from (Bucket(s, {}) for s in range(following, bucket.start, size))
        yield bucket
        following = bucket.start + size


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


# --- judging one unit -----------------------------------------------------------------------

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


# --- incidents ----------------------------------------------------------------------------------

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


# --- describing an incident ---------------------------------------------------------------------

def canonical(statuses: Iterable[str], rules: Rules) -> list[str]:
    """Statuses in the order of the thresholds (failed, denied, ...), then alphabetically."""
    order = {s: i for i, s in enumerate(rules.thresholds)}
    return sorted(statuses, key=lambda s: (order.get(s, len(order)), s))


def named_statuses(flagged: Counter[str], rules: Rules) -> list[str] | None:
    """The statuses an incident is named after: those anomalous in at least half as many units as
    the most anomalous one; None when only the combined rate was anomalous."""
    if not flagged:
        return None
    top = max(flagged.values())
    return canonical([s for s, n in flagged.items() if 2 * n >= top], rules)


def status_label(status: str) -> str:
    """'failed+denied' -> 'Failed and denied', 'backend_reversed' -> 'Backend reversed'."""
    if status == MIXED:
        return "Non-approved"
    words = " and ".join(s.replace("_", " ") for s in status.split("+"))
    return words[:1].upper() + words[1:]


def span(start: datetime, end: datetime) -> str:
    """'from 14:33 to 18:41 on July 12, 2025', or with dates on both ends across midnight."""
    if start.date() == (end - timedelta(seconds=1)).date():
        stop = "24:00" if end.date() != start.date() else clock(end)
        return f"from {clock(start)} to {stop} on {long_date(start)}"
    return f"from {long_date(start)} {clock(start)} to {long_date(end)} {clock(end)}"


def as_percent(fraction: float) -> Decimal:
    return (Decimal(repr(fraction)) * 100).quantize(CENT, rounding=ROUND_HALF_UP)


def severity_for(persistence: int, score: int, anomalous_units: int, intense: bool) -> Severity | None:
    """Persistence 15/30/45/60 min -> low/medium/high/critical (the seed), one level lower when the
    score stayed below 75 (never below low), at least medium with a score of 90; it takes two
    anomalous buckets. Shorter incidents are medium when intense (score 90 in at least 3 buckets,
    see `summarize`), else not reported."""
    if persistence < SHORT_MINUTES:
        return Severity.MEDIUM if score >= SHORT_SCORE and anomalous_units >= SHORT_UNITS and intense else None
    if anomalous_units < 2:
        return None  # one anomalous (pooled) bucket alone is chance more often than an incident
    level = 4 if persistence >= 60 else 3 if persistence >= 45 else 2 if persistence >= 30 else 1
    if score < 75:
        level = max(1, level - 1)
    if score >= SHORT_SCORE:
        level = max(level, 2)
    return Severity(level)


@dataclass
class Summary:
    """What a finding says about an incident."""

    start: int
    end: int
    status: str
    count: int
    total: int
    rate: float
    expected: float
    score: int
    anomalous_units: int
    intense: bool
    expected_pace: float = 0.0  # approved_drop: approvals a minute the baseline expected
    minutes: float = 0.0  # minutes the incident spans
    bucket_minutes: int = 1


def core(step: Step, counted: list[str]) -> bool:
    """Is one of the statuses the incident is named after anomalous in this step?"""
    return step.anomalous and any(
        (j := step.verdict.statuses.get(s)) is not None and j.anomalous for s in counted)


def summarize(incident: Incident, rules: Rules) -> Summary:
    """Name the incident, trim its edges to the named statuses, and total it up.

    A leading or trailing bucket where only other statuses (or the combined rate) were anomalous
    is left out: a stray anomaly next to an incident is more likely chance than part of it.
    """
    steps = incident.steps
    if incident.kind == APPROVED_DROP:
        status = APPROVED_DROP
        counted = [rules.approved]
        score = max(st.verdict.drop_score for st in steps if st.anomalous)
    else:
        flagged = Counter(s for st in steps if st.anomalous
                          for s, j in st.verdict.statuses.items() if j.anomalous and s != COMBINED)
        names = named_statuses(flagged, rules)
        counted = names if names is not None and len(names) <= 2 else [COMBINED]
        status = MIXED if counted == [COMBINED] else "+".join(counted)
        if counted != [COMBINED]:
            kept = [i for i, st in enumerate(steps) if core(st, counted)]
            steps = steps[kept[0]:kept[-1] + 1]
        score = max(st.verdict.score for st in steps if st.anomalous)
    total = sum(st.unit.total for st in steps)
    count = sum(st.unit.total - st.unit.counts[rules.approved] if s == COMBINED else st.unit.counts[s]
                for st in steps for s in counted)
    minutes = sum(st.unit.minutes for st in steps)
    summary = Summary(steps[0].unit.start, steps[-1].unit.end, status, count, total,
                      count / total if total else 0.0, 0.0, score, sum(st.anomalous for st in steps), False,
                      minutes=minutes, bucket_minutes=rules.bucket_seconds // 60)
    if incident.kind == APPROVED_DROP:
        judged = [st for st in steps if st.verdict.drop_judged]
        judged_total = sum(st.unit.total for st in judged)
        judged_minutes = sum(st.unit.minutes for st in judged)
        summary.expected = sum(st.verdict.expected_share * st.unit.total for st in judged) / judged_total \
            if judged_total else 0.0
        summary.expected_pace = sum(st.verdict.expected_pace * st.unit.minutes for st in judged) / judged_minutes
        # Intense: approvals over the whole incident at most a quarter of the expected pace (default).
        summary.intense = count / minutes <= (1 - rules.approved_drop) / 2 * summary.expected_pace
    else:
        judged = [st for st in steps if st.verdict.judged]
        judged_total = sum(st.unit.total for st in judged)
        expected = sum(st.verdict.statuses[s].expected * st.unit.total
                       for st in judged for s in counted if s in st.verdict.statuses)
        summary.expected = expected / judged_total if judged_total else 0.0
        # Intense: over the whole incident at least twice the critical level of what it is named after.
        critical = sum(rules.thresholds[s].critical if s in rules.thresholds else math.inf for s in counted)
        summary.intense = summary.rate * 100 >= 2 * critical
    return summary


def describe(incident: Incident, rules: Rules) -> Finding | None:
    """The finding for an incident, or None when it is too short and too mild to report."""
    summary = summarize(incident, rules)
    persistence = (summary.end - summary.start) // 60
    severity = severity_for(persistence, summary.score, summary.anomalous_units, summary.intense)
    if severity is None:
        return None
    start = EPOCH + timedelta(seconds=summary.start)
    fields = {
        "bucket_start": start,
        "bucket_end": EPOCH + timedelta(seconds=summary.end),
        "status": summary.status,
        "count": summary.count,
        "total": summary.total,
        "rate": as_percent(summary.rate),
        "expected_rate": as_percent(summary.expected),
        "score": summary.score,
        "persistence_minutes": persistence,
    }
    return Finding(check=RatesCheck.name, key=f"rates:{summary.status}:{start.isoformat()}", severity=severity,
                   message=template_line(fields, summary), fields=fields)


def share(value: Decimal) -> str:
    """A rate for the sentence: 4.8%, or 0.04% when it is below 1 %."""
    return percent(value, 2 if value < 1 else 1)


def template_line(fields: dict[str, Any], summary: Summary) -> str:
    """'Reversed transactions ran at 4.8% (expected 0.8%) from 14:33 to 18:41 on July 12, 2025 - 248
    minutes, score 90.'"""
    when = span(fields["bucket_start"], fields["bucket_end"])
    tail = f"{when} - {fields['persistence_minutes']} minutes, score {fields['score']}."
    if fields["status"] == APPROVED_DROP:
        minutes = summary.bucket_minutes
        per = "a minute" if minutes == 1 else "an hour" if minutes == 60 else f"per {minutes} minutes"
        pace = fields["count"] / summary.minutes * minutes if summary.minutes else 0.0
        return (f"Approved transactions fell to {pace:,.0f} {per} (expected {summary.expected_pace * minutes:,.0f}) "
                f"{tail}")
    return (f"{status_label(fields['status'])} transactions ran at {share(fields['rate'])} "
            f"(expected {share(fields['expected_rate'])}) {tail}")


# --- the check ------------------------------------------------------------------------------------

@register
class RatesCheck(Check):
    """Status-rate incidents: failed, denied, reversed... rates far above their recent baseline.

    Transactions are counted per --bucket minutes and status, from the per-minute status_counts
    table (--source counts, filled by 'anomaly load counts') or from the shop's transactions table
    (--source transactions: the success status counts as approved, the failed status as failed,
    others by their lower-cased name). Absent minutes count as zero, but a silence of over 6 hours
    is taken for missing data and everything starts over after it. A bucket with fewer than
    --min-volume transactions is pooled with the following ones, over at most 15 minutes; a pool
    still short of it is not judged.

    Each status's rate in a bucket is scored as in the seed: its critical level in --thresholds
    +50 or its warning level +30, and z >= 3 +40 or z >= 2 +25, at most 100. z = (rate - baseline
    rate - 1/2n) / sd: the baseline is the most recent buckets, up to a day old, that were not
    anomalous and held --min-volume, covering --baseline minutes (so neither the bucket under test
    nor the incident it belongs to is ever in it); sd is the larger of the baseline's per-bucket
    standard deviation and the binomial sqrt(p(1-p)/n) for the bucket's n; 1/2n is the continuity
    correction of a count. The combined non-approved rate is scored the same way, its levels the
    sums of the status levels unless --thresholds names non_approved. A status is anomalous in a
    bucket when its score reaches --min-score (70: the warning level with z >= 3, or the critical
    level with z >= 2) and the bucket holds at least --min-count of it; statuses without
    thresholds count only in the combined rate.

    Anomalous buckets, with at most --max-gap buckets between them, form one incident whatever
    status is anomalous in each, so statuses alternating in one outage make one incident. It is
    named after the status anomalous in the most buckets, or two joined by a plus when the second
    is anomalous in at least half as many, otherwise mixed; leading and trailing buckets where only
    other statuses were anomalous are left out of it. An approved-volume collapse is an incident of
    its own, status approved_drop: approvals per minute at least --approved-drop below the
    baseline pace (+30, +50 halfway from there to zero) with z >= 2 or 3 as above, whether the
    total holds or falls. It must be sudden: it is judged right after a bucket that held
    --min-volume transactions, and then for as long as it lasts, and only where a bucket normally
    holds --min-volume (so the thinning evening is never a drop).

    Severity by persistence, as in the seed: 15, 30, 45 and 60 minutes are low, medium, high and
    critical; one level lower, not below low, when the score stayed under 75; at least medium
    with a score of 90. A single anomalous bucket is not an incident. Incidents shorter than 15
    minutes are reported, as medium, only when intense: a score of 90, at least 3 anomalous
    buckets, and over the incident at least twice the critical level of the status named (for
    approved_drop, at most a quarter of the expected approvals). count is the named status's
    transactions over the incident (all non-approved for mixed, approvals for approved_drop);
    rate and expected_rate are percentages of total; score is the highest bucket score;
    persistence_minutes runs from bucket_start to bucket_end. Every incident overlapping the
    window is reported; the day before --since is read for the baseline, and only complete
    buckets are judged.
    """

    name = "rates"
    llm_advice = "the processor's status for the statuses and times named"
    order = 50
    optional = True  # reads a table a shop database may not have
    params = (
        Param("source", Source.COUNTS, "where to count: counts (status_counts table) or transactions",
              kind=Source),
        Param("bucket", 1, "bucket size in minutes", kind=int, minimum=1, maximum=1440),
        Param("baseline", 60, "minutes of earlier, non-anomalous buckets a bucket is compared with",
              kind=int, minimum=1),
        Param("min_volume", 100, "fewest transactions a bucket (or pool of buckets) needs to be judged",
              kind=int, minimum=1),
        Param("min_count", 3, "fewest transactions of a status for it to be anomalous in a bucket",
              kind=int, minimum=1),
        Param("min_score", 70, "bucket score (0-100) at which a status is anomalous", kind=int,
              minimum=1, maximum=100),
        Param("max_gap", 2, "buckets without an anomaly that do not split an incident", kind=int, minimum=0),
        Param("thresholds", DEFAULT_THRESHOLDS, "warning/critical rates in percent per status",
              kind=str, parse_fn=_thresholds_text),
        Param("approved_status", "approved", "the status of approved transactions", kind=str),
        Param("approved_drop", 0.5, "fall of the approved pace below its baseline that counts as a drop",
              kind=float, exclusive_minimum=0, maximum=0.99),
    )
    fields = ("bucket_start", "bucket_end", "status", "count", "total", "rate", "expected_rate", "score",
              "persistence_minutes")
    columns = (
        Column("bucket_start", "From"),
        Column("bucket_end", "To"),
        Column("status", "Status"),
        Column("count", "Count", "right"),
        Column("total", "Total", "right"),
        Column("rate", "Rate %", "right"),
        Column("expected_rate", "Expected %", "right"),
        Column("score", "Score", "right"),
        Column("persistence_minutes", "Minutes", "right"),
    )
    needs = {"status_counts": ("ts", "status", "count")}

    @classmethod
    def needs_for(cls, params: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        """The tables this run reads: it depends on --source."""
        if Source(params["source"]) is Source.TRANSACTIONS:
            return {"transactions": ("transaction_date", "status")}
        return dict(cls.needs)

    @classmethod
    def validate(cls, params: dict[str, Any]) -> None:
        try:
            parse_thresholds(params["thresholds"])
        except ValueError as exc:
            raise UsageError(f"--thresholds: {exc}") from None
        if params["baseline"] < MIN_BASELINE_UNITS * params["bucket"]:
            raise UsageError(f"--baseline {params['baseline']} minutes holds fewer than {MIN_BASELINE_UNITS} "
                             f"buckets of {params['bucket']} minutes", hint="give a longer --baseline")

    @staticmethod
    def rules(params: dict[str, Any]) -> Rules:
        size = params["bucket"] * 60
        return Rules(
            thresholds=with_combined(parse_thresholds(params["thresholds"])),
            approved=params["approved_status"].strip().lower(),
            min_volume=params["min_volume"],
            min_count=params["min_count"],
            min_score=params["min_score"],
            approved_drop=params["approved_drop"],
            baseline_seconds=params["baseline"] * 60,
            gap_seconds=params["max_gap"] * size,
            bucket_seconds=size,
        )

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        p = ctx.params
        stats = ctx.stats
        size = p["bucket"] * 60
        rules = self.rules(p)
        moment = ctx.end
        end = to_epoch(moment) // size * size  # only complete buckets
        report_from = load_from = None
        if ctx.window.since is not None:
            report_from = to_epoch(ctx.window.since)
            # From midnight of the day before: enough for the baseline, and the same pools on every run.
            load_from = (report_from // 86400 - 1) * 86400
        tally = Tally()
        buckets = measure(ctx, Source(p["source"]), rules.approved, size, load_from, end, stats)
        units = plotted(ctx, pool(fill(buckets, size), size, rules.min_volume), rules, report_from)
        incidents = list(detect(units, rules,
                                report_from=report_from, tally=tally))
        stats.count(tally.units_judged)
        stats.skip("low_volume", tally.units_low_volume)
        stats.skip("no_baseline", tally.units_without_baseline)
        if not tally.units_judged:
            stats.not_evaluated("no bucket with enough volume and a baseline in the window")
        not_reported = 0
        findings = []
        since = ctx.window.since
        for incident in incidents:
            finding = describe(incident, rules)
            if finding is None:
                not_reported += 1  # too short, too mild, or a single bucket
            elif since is None or finding.fields["bucket_end"] > since:
                findings.append(finding)
        stats.note("incidents_not_reported", not_reported)
        findings.sort(key=lambda f: (f.fields["bucket_start"], f.fields["status"]))
        yield from findings


def plotted(ctx: CheckContext, units: Iterable[Unit | Gap], rules: Rules, report_from: int | None
            ) -> Iterator[Unit | Gap]:
    """The units unchanged; each one's status rates (percent) kept for the report's chart."""
    if ctx.charts is None:
        yield from units
        return
    for status, rule in rules.thresholds.items():
        ctx.plot("thresholds", status=status, warning=rule.warning, critical=rule.critical)
    for unit in units:
        if isinstance(unit, Unit) and unit.total and (report_from is None or unit.start >= report_from):
            ctx.plot("rates", t=EPOCH + timedelta(seconds=unit.start),
                     **{s: 100 * (unit.total - unit.counts[rules.approved] if s == COMBINED else unit.counts[s])
                        / unit.total for s in rules.thresholds})
        yield unit


def to_epoch(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(seconds=1)


def measure(ctx: CheckContext, source: Source, approved: str, size: int, load_from: int | None, end: int,
            stats: CheckStats) -> Iterator[Bucket]:
    """Per bucket (GROUP BY bucket, lower(status)) the count of each status, in bucket order."""
    import sqlalchemy as sa

    from anomaly_cli.db import count_missing, epoch_seconds, table

    if source is Source.COUNTS:
        t = table(ctx.schema, "status_counts")
        ts, amount = t.c.ts, t.c.count
    else:
        t = table(ctx.schema, "transactions")
        ts, amount = t.c.transaction_date, sa.literal(1)
    epoch = epoch_seconds(ts)
    where = [ts < EPOCH + timedelta(seconds=end)]
    if load_from is not None:
        where.append(ts >= EPOCH + timedelta(seconds=load_from))
    # Grouping on a subquery column: PostgreSQL would not match a repeated expression with binds;
    # lower() makes MariaDB's case-insensitive grouping and the others' agree.
    sub = sa.select((epoch - epoch % size).label("bucket"), sa.func.lower(t.c.status).label("status"),
                    amount.label("n")).where(*where).subquery()
    stmt = (sa.select(sub.c.bucket, sub.c.status, sa.func.sum(sub.c.n))
            .group_by(sub.c.bucket, sub.c.status).order_by(sub.c.bucket, sub.c.status))
    rename: dict[str | None, str] = {None: UNKNOWN}
    if source is Source.TRANSACTIONS:
        rename |= {ctx.schema.success_status.lower(): approved, ctx.schema.failed_status.lower(): "failed"}
    # Rows (or counts) without a time are never judged, only counted, by a query of their own.
    stats.skip("no_time", count_missing(ctx.conn, ts, total=amount if source is Source.COUNTS else None))
    null_status = 0
    current: Bucket | None = None
    for start, status, n in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        if n is None:
            continue
        if current is None or current.start != int(start):
            if current is not None:
                yield current
            current = Bucket(int(start), {})
        name = rename.get(status, status)
        if name == UNKNOWN:
            null_status += int(n)  # in the total, judged as status 'unknown'
        current.counts[name] = current.counts.get(name, 0) + int(n)
    if current is not None:
        yield current
    stats.note("null_status", null_status)
