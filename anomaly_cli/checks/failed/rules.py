"""failed: bucket sizes, thresholds and the tests a bucket and an incident must pass."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from anomaly_cli.model import Severity
from anomaly_cli.stats import binomial_upper_tail as upper_tail
from anomaly_cli.stats import normal_tail

if TYPE_CHECKING:
    from anomaly_cli.checks.failed.incidents import Incident

DAY = 86400
# A bucket joins a candidate incident when failures this unlikely at the baseline rate are seen in it.
ELEVATED_P = 0.05
# Fewer baseline transactions than this and the baseline rate is too uncertain to judge against.
MIN_BASELINE = 100
RANGE_CHUNK = 100  # incident time ranges per breakdown query, to keep the SQL text bounded
LIST_FIELDS = ("transaction_id", "customer_id", "customer_name", "products")


class BucketSize(enum.StrEnum):
    MIN15 = "15min"
    HOUR = "hour"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return {"15min": 900, "hour": 3600, "day": DAY}[self.value]


@dataclass(frozen=True, slots=True)
class BucketCount:
    """One measured bucket: start in epoch seconds, all transactions, failed ones, unknown statuses."""

    start: int
    total: int
    failed: int
    unknown: int = 0


@dataclass(frozen=True, slots=True)
class Rules:
    min_volume: int = 10
    min_failures: int = 5
    min_ratio: float = 2.0
    sensitivity: float = 3.0

    @property
    def alpha(self) -> float:
        return normal_tail(self.sensitivity)



def is_elevated(failed: int, total: int, p0: float, rules: Rules) -> bool:
    """May this bucket belong to an incident? Rate at least min_ratio x baseline and P < ELEVATED_P."""
    return (failed > 0 and failed >= rules.min_ratio * p0 * total
            and upper_tail(failed, total, p0) < ELEVATED_P)


def is_anomalous(incident: Incident, rules: Rules) -> bool:
    """The incident test: volume, a few failures, the practical ratio floor and significance."""
    p0 = incident.expected_rate
    return (incident.total >= rules.min_volume and incident.failed >= rules.min_failures
            and incident.failed >= rules.min_ratio * incident.expected
            and upper_tail(incident.failed, incident.total, p0) <= rules.alpha)


def scope_for(failed: int, distinct_customers: int, top_failures: int) -> str:
    """concentrated when the top customer has at least half the failures or at most 2 customers failed."""
    if distinct_customers <= 2 or 2 * top_failures >= failed:
        return "concentrated"
    return "broad"


def severity_for(failure_rate: Decimal, scope: str) -> Severity:
    """Broad: rate >= 50 % critical, >= 25 % high, else medium; concentrated one level lower."""
    level = Severity.CRITICAL if failure_rate >= 50 else Severity.HIGH if failure_rate >= 25 else Severity.MEDIUM
    return Severity(level - 1) if scope == "concentrated" else level

