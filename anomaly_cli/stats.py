"""Small statistics shared by the checks' judging code (pure Python, no database)."""

from __future__ import annotations

import math
from decimal import Decimal

from anomaly_cli.model import Severity


def normal_tail(sigmas: float) -> float:
    """The one-sided tail of the normal distribution beyond `sigmas` (3 -> 0.00135)."""
    return 0.5 * math.erfc(sigmas / math.sqrt(2))


def severity_by_drop(drop_pct: Decimal) -> Severity:
    """The volume checks' scale, by the size of a drop (or rise): >= 90 % critical, >= 60 % high,
    >= 30 % medium, otherwise low."""
    size = abs(drop_pct)
    if size >= 90:
        return Severity.CRITICAL
    if size >= 60:
        return Severity.HIGH
    if size >= 30:
        return Severity.MEDIUM
    return Severity.LOW
