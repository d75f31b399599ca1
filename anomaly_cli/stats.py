"""Small statistics shared by the checks' judging code (pure Python, no database).

Count tails (Poisson, binomial), robust spread, and the one rounding of a fraction to a percent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from anomaly_cli.model import Severity

CENT = Decimal("0.01")
MAD_SCALE = 1.4826  # turns a median absolute deviation into a standard deviation (normal data)


def normal_tail(sigmas: float) -> float:
    """The one-sided tail of the normal distribution beyond `sigmas` (3 -> 0.00135)."""
    return 0.5 * math.erfc(sigmas / math.sqrt(2))


def as_percent(fraction: float) -> Decimal:
    """A fraction as a percentage with two decimals, half up (0.123456 -> 12.35)."""
    return (Decimal(repr(float(fraction))) * 100).quantize(CENT, rounding=ROUND_HALF_UP)


def robust_sd(values: Iterable[float], center: float | None = None) -> float:
    """1.4826 x the median absolute deviation (from `center`, default the median): a standard
    deviation that outliers barely move."""
    data = list(values)
    if not data:
        return 0.0
    mid = median(data) if center is None else center
    return MAD_SCALE * median(abs(x - mid) for x in data)


def tail_sd(values: list[float], center: float | None = None) -> float:
    """A standard deviation from the middle and the shoulders: the larger of 1.4826 x MAD and the
    80th percentile of |x - median| / 1.2816 (or of |x - center| when given). Heavy-tailed noise (a t with few degrees of freedom)
    has a narrow middle; the shoulder keeps the bar from being set too low for it."""
    if not values:
        return 0.0
    mid = median(values) if center is None else center
    deviations = sorted(abs(x - mid) for x in values)
    n = len(deviations)
    # robust_sd's MAD, taken from these sorted deviations as statistics.median takes it (the same
    # float): fit_c2 calls this some thirty times a day judged, and a second sort doubled its cost.
    half = n // 2
    mad = deviations[half] if n % 2 else (deviations[half - 1] + deviations[half]) / 2
    shoulder = deviations[min(n - 1, int(0.8 * n))] / 1.2816
    return max(MAD_SCALE * mad, shoulder)


def t_quantile(z: float, df: float) -> float:
    """The Student t quantile at the normal quantile `z` (Cornish-Fisher, three terms): how far
    a bar of z estimated sigmas must move when sigma comes from `df` degrees of freedom
    (z = 3: 4.9 at 6, 3.9 at 13, 3.2 at 55)."""
    df = max(df, 2.0)
    z3, z5, z7 = z ** 3, z ** 5, z ** 7
    return (z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2)
            + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3))


def fit_c2(pool: list[tuple[float, float]], center: float | None = None) -> float:
    """c^2 such that the residuals divided by sqrt(E + c^2 E^2) have a (tail-aware) spread of 1
    about `center` (default: their median).

    Each residual is standardized by its own Poisson part, so quiet weekend days and busy weekdays
    are measured on one scale.
    """
    # With three weeks of residuals the shoulders are measured too (heavy tails); before, the MAD.
    measure = tail_sd if len(pool) >= 21 else robust_sd

    def spread(c2: float) -> float:
        return measure([r / math.sqrt(e + c2 * e * e) for r, e in pool], center) ** 2

    if spread(0.0) <= 1.0:
        return 0.0
    low, high = 0.0, 4.0
    if spread(high) > 1.0:
        return high
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if spread(mid) > 1.0 else (low, mid)
    return high


def c2_bound(pool: list[tuple[float, float]], sensitivity: float) -> float:
    """The fitted c^2 widened for its own sampling error: the Poisson part of Var = E + c^2 E^2
    is known, the multiplicative part is measured on len(pool) residuals, so it is scaled by
    (t / z)^2, the Student t bar of len(pool) - 1 degrees of freedom at the tail `sensitivity`
    sigmas leave, over that bar (a week of residuals: x 2.7; eight weeks: x 1.1). Seven
    residuals that happen to lie close together (c^2 0.002 from a series of CV 0.5) do not make
    a day at 70 % of its median an improbable drop; a nearly Poisson shop stays nearly Poisson."""
    ratio = t_quantile(sensitivity, len(pool) - 1) / sensitivity
    # Measured from 0, not from the residuals' own median: the test asks how far counts fall
    # from their expectation, and a week whose days all ran above it (a lagging level) is
    # spread too (7, 15, 72, 80, 19, 59, 5 above 300-500 expected: c^2 0.002 from their median).
    return fit_c2(pool, 0.0) * ratio * ratio


def median_error(n: int) -> float:
    """Var(x - median of n past values) / Var(x): a median of few values is itself uncertain."""
    return 2.0 if n <= 1 else 1.5 if n == 2 else 1 + math.pi / (2 * n)


def poisson_lower_tail(k: int, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam), summed from where the terms are largest (log-space start)."""
    if k < 0:
        return 0.0
    if lam <= 0:
        return 1.0

    def pmf(j: int) -> float:
        return math.exp(j * math.log(lam) - lam - math.lgamma(j + 1))

    if k < lam:  # the terms fall from k downwards
        term = total = pmf(k)
        for j in range(k, 0, -1):
            term *= j / lam
            total += term
            if term <= total * 1e-16:
                break
        return min(total, 1.0)
    # k at or above the mean: 1 - P(X > k), whose terms fall from k + 1 upwards
    return max(0.0, 1.0 - poisson_upper_tail(k + 1, lam))


def poisson_upper_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if k <= lam:
        return max(0.0, 1.0 - poisson_lower_tail(k - 1, lam))
    term = upper = math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))
    j = k
    while term > upper * 1e-16:
        term *= lam / (j + 1)
        upper += term
        j += 1
    return min(upper, 1.0)


def count_lower_tail(k: int, mean: float, c2: float) -> float:
    """P(X <= k) for a count with this mean and Var = mean + c2 x mean^2: Poisson when c2 is 0,
    else negative binomial with r = 1 / c2 (summed term by term from 0; k is small where it matters)."""
    if c2 <= 0:
        return poisson_lower_tail(k, mean)
    if k < 0:
        return 0.0
    if mean <= 0:
        return 1.0
    r = 1 / c2
    p = r / (r + mean)
    log_term = r * math.log(p)  # P(X = 0)
    total = 0.0
    for j in range(k + 1):
        if j:
            log_term += math.log((j + r - 1) / j) + math.log1p(-p)
        total += math.exp(log_term)
    return min(total, 1.0)


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact enough for any n (log-space start, then term ratios)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0

    def pmf(j: int) -> float:
        return math.exp(math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                        + j * math.log(p) + (n - j) * math.log1p(-p))

    odds = p / (1 - p)
    if k > n * p:  # terms fall from k upwards: sum them until they no longer matter
        term = total = pmf(k)
        for j in range(k, n):
            term *= (n - j) / (j + 1) * odds
            total += term
            if term <= total * 1e-16:
                break
        return min(total, 1.0)
    # k at or below the mean: 1 - P(X <= k-1), whose terms fall from k-1 downwards
    term = lower = pmf(k - 1)
    for j in range(k - 1, 0, -1):
        term *= j / (n - j + 1) / odds
        lower += term
        if term <= lower * 1e-16:
            break
    return max(0.0, 1.0 - lower)


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
