"""Formatting helpers for the plain-English lines (dates, money, percentages)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from anomaly_cli.model import Severity

CENT = Decimal("0.01")


def long_date(value: date | datetime) -> str:
    """September 12, 2025 (no zero padding, whatever the locale)."""
    return f"{value:%B} {value.day}, {value.year}"


def clock(value: datetime) -> str:
    return f"{value:%H:%M}"


def money(value: Decimal, currency: str, *, grouped: bool = False) -> str:
    """₹500.00, or ₹3,544,100.00 with grouping."""
    amount = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{currency}{amount:,.2f}" if grouped else f"{currency}{amount:.2f}"


def percent(value: Decimal | float, places: int = 1) -> str:
    quantum = Decimal(1).scaleb(-places)
    return f"{Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)}%"


def severity_word(severity: Severity) -> str:
    """The seed's words: CRITICAL, HIGH, MODERATE, LOW."""
    return "MODERATE" if severity is Severity.MEDIUM else severity.name
