"""rates: the business rules, the --thresholds grammar, and the seed's score."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

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


def thresholds_text(raw: Any) -> str:
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

