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


RUPEE = ("₹", "Rs", "Rs.", "INR")


def grouped(value: Decimal | float, currency: str = "", places: int = 2) -> str:
    """An amount with thousands grouping for people: the Indian way for rupees (3,86,343.75:
    lakhs and crores), otherwise as the locale (LC_ALL, LC_NUMERIC, LANG) groups, by Babel."""
    amount = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if currency.strip() in RUPEE:
        sign, digits = ("-" if amount < 0 else ""), f"{abs(amount):.{places}f}"
        whole, _, fraction = digits.partition(".")
        head, tail = whole[:-3], whole[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        whole = ",".join(([head] if head else []) + groups + [tail])
        return sign + whole + (f".{fraction}" if fraction else "")
    from babel.core import default_locale
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "0" * places if places else "")
    try:
        return format_decimal(amount, format=pattern, locale=default_locale(("LC_ALL", "LC_NUMERIC", "LANG"))
                              or "en_US")
    except (ValueError, LookupError):  # a locale Babel does not know (C, POSIX): the plain grouping
        return format_decimal(amount, format=pattern, locale="en_US")


def percent(value: Decimal | float, places: int = 1) -> str:
    quantum = Decimal(1).scaleb(-places)
    return f"{Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)}%"


def severity_word(severity: Severity) -> str:
    """The seed's words: CRITICAL, HIGH, MODERATE, LOW."""
    return "MODERATE" if severity is Severity.MEDIUM else severity.name
