"""The rules that judge one bucket against its expectation: pure functions of the settings.

VolumeJudge (volume.py) builds the expectation (baseline, level, spread) and keeps the state
(held hours, runs, shifts); these say whether a count is a drop or a spike against it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import median

from anomaly_cli.stats import count_lower_tail, median_error, poisson_lower_tail, poisson_upper_tail
from anomaly_cli.volume_model import Basis, Direction, Expectation, Settings

COLLAPSE_Z = 2.0  # --collapse is taken of the expectation's upper two-sigma end


def weighted_median(pairs: list[tuple[float, float]]) -> float:
    """A median of the ratios weighted by the medians: one busy day does not move the level."""
    pairs.sort()
    half, acc = sum(w for _, w in pairs) / 2, 0.0
    for ratio, weight in pairs:
        acc += weight
        if acc >= half:
            return ratio
    return pairs[-1][0]


def leave_one_out(histories: list[list[float]], min_history: int) -> list[tuple[float, float]]:
    """(residual / sqrt(median error), expected) of each count of every slot with at least
    `min_history` counts against the median of its slot's other counts: the spread before the
    first week of residuals (VolumeJudge._early_c2)."""
    pool = []
    for counts in histories:
        if len(counts) < min_history:
            continue
        for i, count in enumerate(counts):
            others = counts[:i] + counts[i + 1:]
            expected = float(median(others))
            if expected >= 1:
                pool.append(((count - expected) / math.sqrt(median_error(len(others))), expected))
    return pool


def widen_factor(e: Expectation) -> float:
    """The upper end of the expectation's own interval, as a factor (at most 1.5)."""
    return min(1.5, math.exp(COLLAPSE_Z * math.sqrt(math.log1p(e.c2) * (median_error(e.size) - 1))))


def collapsed_drop(s: Settings, count: float, e: Expectation, whole_day: bool) -> bool:
    """Under --collapse of a meaningful expectation, with only the Poisson test (1 against 2
    is chance, 1 against 12 is not): reported however noisy the series. --collapse applies to
    the upper end of a day's expectation's own interval (a median of 8 noisy weeks can read a
    third under the truth): 44 sales against an estimated 344 (c = 0.55) is a collapse."""
    if e.count < s.min_expected:
        return False
    # Days only: an hour's spread is mostly its day's, which today's level measures instead.
    # At most 1.5 x --collapse of the estimate, the zone a collapsed day is also told by.
    widen = widen_factor(e) if whole_day else 1.0
    return count < s.collapse * e.count * widen \
        and poisson_lower_tail(math.floor(count), e.count) <= s.alpha


def assess(s: Settings, count: float, e: Expectation, whole_day: bool) -> Direction | None:
    """A drop, a spike or nothing, by the series' spread (and the collapse rule)."""
    deviation = count - e.count
    if s.direction is not Direction.SPIKE and e.count > 0:
        if collapsed_drop(s, count, e, whole_day):
            return Direction.DROP
        low = deviation < -s.sensitivity * e.sigma
        if e.log_sd is not None and e.count >= s.min_expected:
            # Multiplicative noise is symmetric in log space: a fall far beyond the series'
            # own log spread (one sigma more than asked, for the tails) is a drop even where
            # the linear sigma reaches below zero.
            low = low or math.log((count + 0.5) / (e.count + 0.5)) < -(s.sensitivity + 1) * e.log_sd
        # Those rules are about the series' spread: their count test allows for its
        # overdispersion too (negative binomial with the fitted c^2).
        if low and count_lower_tail(math.floor(count), e.count, e.c2) <= s.alpha:
            return Direction.DROP
    if s.direction is not Direction.DROP and deviation > s.sensitivity * e.sigma:
        if poisson_upper_tail(math.ceil(count), max(e.count, 0.5)) <= s.alpha:
            return Direction.SPIKE
    return None


def at_level(e: Expectation, scale: float) -> Expectation:
    """The expectation at another level (a change under way): count, revenue and spread scaled."""
    return replace(e, count=e.count * scale, extra=e.extra * scale, sigma=e.sigma * scale,
                   z_sigma=e.z_sigma * scale)


def drop_given_today(s: Settings, count: float, e: Expectation) -> bool:
    """A count that the negative binomial of today's level rules out. Its spread is the
    hour's own plus today's level's uncertainty: three sales at 06:00 do not make 1 at 07:00
    a collapse, 400 by noon make 0 at 13:00 one."""
    return count_lower_tail(math.floor(count), e.count, e.c2) <= s.alpha


def early_low(s: Settings, count: float, e: Expectation, measured: bool) -> bool:
    """A sub-day bucket in the day's first hour with a meaningful expectation, under --collapse
    of its interval's upper end: nothing of today measures its level yet (`measured` False), so
    its median is as uncertain as a day's (5 sales against an estimated 35, truly 78). Also below
    its lower end by the Poisson test (2 against 13 is a quiet day's chance). Held until the next
    bucket: reported when it is a drop too (an outage), else forgotten (a quiet morning)."""
    if e.count < s.min_expected or e.basis is not Basis.SEASONAL or measured:
        return False
    widen = widen_factor(e)
    return count < s.collapse * e.count * widen \
        and poisson_lower_tail(math.floor(count), e.count / widen) <= s.alpha


RUN_FLOOR = 0.2  # of --min-expected (2 sales): an hour expecting less given today is a quiet one
HABIT = 2  # weeks of its slot at as little as today: a low count is the hour's habit, no outage


def quiet_low(s: Settings, count: float, given: Expectation, weeks: list[float]) -> bool:
    """A sub-day bucket under --collapse of its expectation given today, too small for the
    collapse rule on its own (0 against 8): it may be part of an outage whose hours each expect
    little, so it joins the run of low buckets (volume_run.py), which decides on their sum. Not
    a night hour expecting under a fifth of --min-expected (2 sales), which holds 0 as often as
    not, nor an hour whose own `weeks` (its slot's usable counts) held as little twice: nights
    that are either dead or busy have a median of 4 and a 0 every other week. Against the
    week's slots only, like the run's other members: a fallback baseline (recent days) is too
    rough for anything short of a collapse."""
    return s.direction is not Direction.SPIKE and given.basis is Basis.SEASONAL \
        and given.count >= RUN_FLOOR * s.min_expected and count < s.collapse * given.count \
        and sum(week <= count for week in weeks) < HABIT
