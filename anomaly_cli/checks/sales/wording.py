"""sales: a flagged bucket (or shift) put into a finding and its sentence."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from anomaly_cli.checks.sales.buckets import BucketSize, start_of
from anomaly_cli.model import Finding
from anomaly_cli.stats import severity_by_drop
from anomaly_cli.volume import Basis, Direction, Flag
from anomaly_cli.wording import CENT, clock, long_date, percent

NAME = "sales"
HUNDRED = Decimal(100)
TENTH = Decimal("0.1")


def sales_amount(value: Decimal, currency: str) -> str:
    """The seed's amounts: ₹333,200 when whole, ₹3,570.50 otherwise."""
    amount = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{currency}{amount:,.0f}" if amount == amount.to_integral_value() else f"{currency}{amount:,.2f}"


def template_line(fields: dict[str, Any], size: BucketSize, kind: Direction, currency: str,
                  *, shift: bool = False, basis: Basis = Basis.SEASONAL) -> str:
    """The seed's sentence: 'September 15, 2025: 17 transactions, ₹333,200 sales - low performance'.

    A level shift names its span and says it is the new normal; a bucket judged against a fallback
    baseline (short history) says which, and with what confidence.
    """
    start: datetime = fields["bucket_start"]
    when = long_date(start) if size is BucketSize.DAY else f"{long_date(start)} {clock(start)}"
    if shift:
        end: datetime = fields["bucket_end"] - timedelta(seconds=size.seconds)
        last = long_date(end) if size is BucketSize.DAY else f"{long_date(end)} {clock(end)}"
        verdict = (f"sales settled {percent(abs(fields['drop_pct']))} "
                   f"{'lower' if kind is Direction.DROP else 'higher'} (a lasting level shift, the new normal from here)")
        return (f"{when} to {last}: {fields['transactions']} transactions, "
                f"{sales_amount(fields['revenue'], currency)} sales - {verdict}")
    verdict = "low performance" if kind is Direction.DROP else "unusually high sales"
    if basis is not Basis.SEASONAL:
        verdict += f" (short history: compared with {BASIS_WORDS[basis]}, {basis.confidence} confidence)"
    return (f"{when}: {fields['transactions']} transactions, "
            f"{sales_amount(fields['revenue'], currency)} sales - {verdict}")


BASIS_WORDS = {Basis.ALL_DAYS: "all recent days", Basis.RECENT: "the last few days"}


def make_finding(flag: Flag, size: BucketSize, currency: str) -> Finding:
    start = start_of(flag.start, size)
    change = drop_pct(flag.count, flag.expected)
    fields = {
        "bucket_start": start,
        "bucket_end": start_of(flag.end, size),
        "transactions": int(flag.count),
        "revenue": (Decimal(int(flag.extra)) / HUNDRED).quantize(CENT),
        "expected_transactions": Decimal(str(flag.expected)).quantize(TENTH, rounding=ROUND_HALF_UP),
        "expected_revenue": (Decimal(str(flag.expected_extra)) / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP),
        "drop_pct": change.quantize(CENT, rounding=ROUND_HALF_UP),
    }
    if flag.shift:  # the revenue a shift was expected to bring is not measured: its median is not summed
        fields["expected_revenue"] = None
    return Finding(
        check=NAME,
        # A shift has a key of its own: an hour flagged on its first day starts where it does, and
        # one finding per key is kept (pipeline.unique_keys) - the shift was dropped as its repeat.
        key=f"sales:{size.value}:{'shift:' if flag.shift else ''}{start.isoformat()}",
        severity=severity_by_drop(change),
        message=template_line(fields, size, flag.kind, currency, shift=flag.shift, basis=flag.basis),
        fields=fields,
    )


def drop_pct(transactions: float, expected: float) -> Decimal:
    """Signed: positive for a drop, negative for a rise; an expectation below 1 counts as 1."""
    return (Decimal(str(expected)) - Decimal(str(transactions))) / Decimal(str(max(expected, 1.0))) * HUNDRED
