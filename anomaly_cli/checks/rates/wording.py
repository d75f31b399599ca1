"""rates: an incident named, trimmed, totalled and put into words."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from anomaly_cli.buckets import clock_span as span
from anomaly_cli.buckets import from_epoch
from anomaly_cli.checks.rates.incidents import Incident, Step
from anomaly_cli.checks.rates.rules import (
    APPROVED_DROP, COMBINED, MIXED, SHORT_MINUTES, SHORT_SCORE, SHORT_UNITS, Rules,
)
from anomaly_cli.model import Finding, Severity
from anomaly_cli.stats import as_percent
from anomaly_cli.wording import percent

NAME = "rates"

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
    start = from_epoch(summary.start)
    fields = {
        "bucket_start": start,
        "bucket_end": from_epoch(summary.end),
        "status": summary.status,
        "count": summary.count,
        "total": summary.total,
        "rate": as_percent(summary.rate),
        "expected_rate": as_percent(summary.expected),
        "score": summary.score,
        "persistence_minutes": persistence,
    }
    return Finding(check=NAME, key=f"rates:{summary.status}:{start.isoformat()}", severity=severity,
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

