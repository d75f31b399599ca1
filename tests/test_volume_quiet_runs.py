"""Runs of quiet low hours (anomaly_cli/volume_run.py, volume_rules.quiet_low): a blackout whose
hours each expect under --min-expected is one outage by their sum, while the quiet hours of a
steady shop's nights never add up to one. Without a database (the judgement only)."""

from __future__ import annotations

import random

import pytest

from anomaly_cli.volume import Basis, Expectation, Settings, judge_series
from anomaly_cli.volume_rules import quiet_low
from tests.series import _poisson

# A small shop's hours of the day (no sales 00:00-06:00; 11:00-13:00 busiest) and its weekdays.
HOURS = (0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.2, 0.8, 1.2, 1.4, 1.5, 1.6,
         1.8, 1.5, 1.2, 1.1, 1.2, 1.4, 1.3, 0.9, 0.5, 0.3, 0.2, 0.1)
WEEKDAYS = (1.0, 0.9, 0.95, 1.05, 1.3, 1.6, 0.5)  # Monday first
DAYS = 63  # nine weeks from a Monday
BLACKOUT_DAY = 60  # a Thursday
BLACKOUT = range(10, 14)  # 10:00-14:00: no sales at all


def shop(seed: int, daily: float, day_cv: float, blackout: bool) -> list[tuple[int, int, int, float, float]]:
    """Hourly sales: each day at `daily` x its weekday x a gamma noise of CV `day_cv`, each hour
    at its share x a gamma noise of CV 0.35, Poisson counts; the blackout's hours at 0."""
    rng = random.Random(seed)
    total = sum(HOURS)
    out = []
    for day in range(DAYS):
        level = daily * WEEKDAYS[day % 7] * rng.gammavariate(1 / day_cv ** 2, day_cv ** 2)
        for hour, share in enumerate(HOURS):
            count = _poisson(rng, level * share / total * rng.gammavariate(8, 1 / 8))
            if blackout and day == BLACKOUT_DAY and hour in BLACKOUT:
                count = 0
            index = 24 * day + hour
            out.append((index, index % 168, hour, float(count), 0.0))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_a_blackout_of_hours_each_under_min_expected_is_found_in_a_noisy_shop(seed: int) -> None:
    """About 110 sales a day with day CV 0.45: the blackout's hours each expect 5-9 sales (under
    --min-expected 10, so no hour is a collapse on its own), together 25-35: 0 is an outage."""
    flags = judge_series(Settings.for_bucket(3600), shop(seed, 110, 0.45, blackout=True))
    hours = {24 * BLACKOUT_DAY + h for h in BLACKOUT}
    found = {f.start for f in flags if not f.shift}
    assert hours <= found, sorted((f.start // 24, f.start % 24, f.count, round(f.expected, 1)) for f in flags)


@pytest.mark.parametrize(("seed", "daily"), [(11, 110), (12, 110), (13, 250), (14, 250), (15, 500), (16, 500)])
def test_the_quiet_hours_of_a_steady_shop_are_never_an_outage(seed: int, daily: float) -> None:
    """A steady shop (day CV 0.1) without incidents: its night and shoulder hours expect 0.2 to 6
    sales and often hold none, runs of them included. Nothing is reported against the week's
    slots (the first weeks' fallback baselines report a few hours of their own, as before)."""
    flags = judge_series(Settings.for_bucket(3600), shop(seed, daily, 0.1, blackout=False))
    seasonal = [f for f in flags if f.basis is Basis.SEASONAL]
    assert not seasonal, sorted((f.start // 24, f.start % 24, f.count, round(f.expected, 1)) for f in seasonal)


def given(count: float, basis: Basis = Basis.SEASONAL) -> Expectation:
    return Expectation(count, 0.0, 1.0, basis, 8, c2=0.1, shared=0.02)


@pytest.mark.parametrize(("count", "expected", "weeks", "basis", "quiet"), [
    (0, 8.0, [7, 9, 8, 6, 10, 8, 9, 7], Basis.SEASONAL, True),  # an outage hour of a small shop
    (1, 8.0, [7, 9, 8, 6, 10, 8, 9, 7], Basis.SEASONAL, False),  # 1 is not under --collapse of 8
    (0, 1.5, [1, 2, 1, 2, 1, 3, 2, 1], Basis.SEASONAL, False),  # a night hour: 0 is its chance
    (0, 8.0, [0, 9, 0, 12, 8, 0, 9, 7], Basis.SEASONAL, False),  # dead or busy: 0 is its habit
    (0, 8.0, [0, 9, 8, 6, 10, 8, 9, 7], Basis.SEASONAL, True),  # one dead week is no habit
    (0, 8.0, [7, 9, 8], Basis.RECENT, False),  # a fallback baseline: collapses only
])
def test_which_low_hours_join_a_run_as_quiet_ones(count: float, expected: float, weeks: list[float],
                                                  basis: Basis, quiet: bool) -> None:
    assert quiet_low(Settings.for_bucket(3600), count, given(expected, basis), weeks) is quiet
