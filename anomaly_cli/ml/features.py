"""From a measured transaction (integers) to the model's feature vector, and back to words.

Every feature compares the transaction with the customer's own history (a ratio, a share, a
count against their rate), so that one model serves big spenders and small ones. The shop-wide
context (how common each 3-hour bin and weekday is across the shop) comes from the training
sample and travels with the model, so a persisted model normalises exactly as it did when fitted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from anomaly_cli.ml.sql import BINS, DAY, HOUR, WEEK, WEEKDAYS, Raw

# The model's inputs, in order. A persisted model records this list; a different one is refused.
FEATURES = (
    "amount",               # log of the amount
    "amount_vs_usual",      # log of amount / the customer's mean amount so far
    "amount_z",             # (amount - mean) / standard deviation so far, clipped
    "transactions_1h",      # this customer's transactions in the last hour (this one included)
    "transactions_24h",
    "transactions_7d",
    "amount_24h_vs_usual",  # log of the last 24 h's amount / the customer's mean amount
    "seconds_since_previous",  # log
    "gap_vs_usual",         # log of that gap / the customer's mean gap
    "hour_share",           # share of the customer's past transactions in this 3-hour bin (smoothed)
    "weekday_share",        # the same for the weekday
    "failed_share_24h",     # failed attempts among the last 24 h's
    "items",                # units in the basket (log)
    "distinct_products",
    "new_products",         # products in the basket this customer never bought before
    "price_deviation",      # (sold - catalog) / catalog over the basket's priced items
    "tenure_days",          # log of days since the customer's first transaction
    "rise_streak",          # consecutive rises of the amount ending here
)
SMOOTHING = 4.0  # pseudo-transactions at the shop's shares: a new customer is judged like the shop
FIRST_GAP = 30 * DAY  # "seconds since previous" for a customer's first transaction
Z_CLIP = 50.0


@dataclass(frozen=True)
class Context:
    """Shop-wide shares of the 3-hour bins and weekdays (from the training sample)."""

    bin_share: tuple[float, ...]
    weekday_share: tuple[float, ...]

    @classmethod
    def uniform(cls) -> Context:
        return cls((1 / BINS,) * BINS, (1 / WEEKDAYS,) * WEEKDAYS)


def mean_amount(r: Raw) -> float | None:
    """The customer's mean amount so far, in currency units (None before their first transaction)."""
    return r.sum_prior / 100 / r.n_prior if r.n_prior else None


def std_amount(r: Raw) -> float:
    if r.n_prior < 2:
        return 0.0
    mean_units = r.sum_prior / 100 / r.n_prior
    variance = r.sq_prior / r.n_prior - mean_units * mean_units
    return math.sqrt(max(variance, 0.0))


def usual_gap(r: Raw) -> float | None:
    """Mean seconds between the customer's earlier transactions."""
    if r.n_prior < 2 or r.prev_ts is None:
        return None
    return (r.prev_ts - r.first_ts) / (r.n_prior - 1)


def expected_count(r: Raw, seconds: int) -> float:
    """Transactions the customer usually makes in `seconds`, this one included: 1 + their rate x seconds."""
    tenure = max(r.ts - r.first_ts, DAY)
    return 1 + r.n_prior * seconds / tenure


def _log_ratio(value: float, usual: float) -> float:
    return math.log((value + 1) / (usual + 1))


def vector(r: Raw, ctx: Context) -> list[float]:
    """The feature values of one transaction, in FEATURES order."""
    amount = r.amount / 100
    mean = mean_amount(r)
    usual = amount if mean is None else mean
    std = std_amount(r)
    # The spread is floored at a tenth of the mean: a customer who always pays the same would
    # otherwise make any small change look infinitely unusual.
    spread = max(std, 0.1 * usual, 1.0)
    gap = FIRST_GAP if r.prev_ts is None else r.ts - r.prev_ts
    mean_gap = usual_gap(r)
    bin_share = (r.same_bin + SMOOTHING * ctx.bin_share[r.bin]) / (r.n_prior + SMOOTHING)
    weekday_share = (r.same_weekday + SMOOTHING * ctx.weekday_share[r.weekday]) / (r.n_prior + SMOOTHING)
    deviation = (r.priced_sold - r.priced_catalog) / r.priced_catalog if r.priced_catalog > 0 else 0.0
    return [
        math.log1p(amount),
        _log_ratio(amount, usual),
        max(-Z_CLIP, min(Z_CLIP, (amount - usual) / spread)),
        float(r.n_1h),
        float(r.n_24h),
        float(r.n_7d),
        _log_ratio(r.amount_24h / 100, usual),
        math.log1p(gap),
        0.0 if mean_gap is None else math.log((gap + 60) / (mean_gap + 60)),
        bin_share,
        weekday_share,
        r.failed_24h / r.n_24h if r.n_24h else 0.0,
        math.log1p(r.items),
        float(r.products),
        float(r.new_products),
        deviation,
        math.log1p((r.ts - r.first_ts) / DAY),
        float(r.streak),
    ]


def _money(value: float) -> float:
    return round(value, 2)


def _duration(seconds: float) -> str:
    if seconds >= 2 * DAY:
        return f"{seconds / DAY:.1f} d"
    if seconds >= 2 * HOUR:
        return f"{seconds / HOUR:.1f} h"
    return f"{seconds / 60:.0f} min"


WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def hour_range(hours: Sequence[int] | None) -> str | None:
    """The shortest run of hours (wrapping midnight) holding half of a customer's transactions: '18:00-21:00'."""
    if not hours or sum(hours) == 0:
        return None
    total = sum(hours)
    for width in range(1, 25):
        best = max(range(24), key=lambda s: (sum(hours[(s + k) % 24] for k in range(width)), -s))
        if 2 * sum(hours[(best + k) % 24] for k in range(width)) >= total:
            return f"{best:02d}:00-{(best + width) % 24:02d}:00"
    return None  # pragma: no cover - width 24 always holds everything


def describe(name: str, r: Raw, hours: Sequence[int] | None = None) -> tuple[Any, Any]:
    """(value, usual) of one feature, in the units a person reads: money, counts, clock times."""
    amount, mean = r.amount / 100, mean_amount(r)
    if name in ("amount", "amount_vs_usual", "amount_z"):
        return _money(amount), None if mean is None else _money(mean)
    if name == "transactions_1h":
        return r.n_1h, round(expected_count(r, HOUR), 1)
    if name == "transactions_24h":
        return r.n_24h, round(expected_count(r, DAY), 1)
    if name == "transactions_7d":
        return r.n_7d, round(expected_count(r, WEEK), 1)
    if name == "amount_24h_vs_usual":
        return _money(r.amount_24h / 100), None if mean is None else _money(mean * expected_count(r, DAY))
    if name in ("seconds_since_previous", "gap_vs_usual"):
        gap, usual = usual_gap(r), None
        usual = None if gap is None else _duration(gap)
        return ("first transaction" if r.prev_ts is None else _duration(r.ts - r.prev_ts)), usual
    if name == "hour_share":
        return r.transaction_date.strftime("%H:%M"), hour_range(hours)
    if name == "weekday_share":
        share = f"{r.same_weekday / r.n_prior:.0%} of past transactions" if r.n_prior else None
        return WEEKDAY_NAMES[r.weekday], share
    if name == "failed_share_24h":
        usual_share = r.failed_prior / r.n_prior if r.n_prior else None
        return f"{r.failed_24h} of {r.n_24h}", None if usual_share is None else f"{usual_share:.0%}"
    if name == "items":
        return r.items, None if not r.n_prior else round(r.items_prior / r.n_prior, 1)
    if name == "distinct_products":
        return r.products, None
    if name == "new_products":
        return r.new_products, None if not r.n_prior else round(r.new_prior / r.n_prior, 1)
    if name == "price_deviation":
        value = (r.priced_sold - r.priced_catalog) / r.priced_catalog if r.priced_catalog > 0 else 0.0
        return f"{value:+.0%}", "catalog price"
    if name == "tenure_days":
        return f"{(r.ts - r.first_ts) / DAY:.0f} d", None
    if name == "rise_streak":
        return r.streak, None
    raise KeyError(name)
