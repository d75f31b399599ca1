"""Precision of the volume judgement where the noise model decides (issue 11): a count the noise
model does not find improbable stays silent, while a drop under --collapse of a meaningful
expectation is still reported. Without a database (anomaly_cli/volume.py, stats.py)."""

from __future__ import annotations

import math
import random

from anomaly_cli.stats import c2_bound, fit_c2, t_quantile
from anomaly_cli.volume import Direction, Settings, judge_series
from tests.series import HOUR_WEIGHTS, _poisson

# Day totals of a series with CV 0.5 (tests/series.py "dst", seed 2): its first three Saturdays
# happen to lie close together (343, 296, 293) and its Thursday of week 4 is a planted outage.
DAYS = [304, 378, 524, 652, 752, 343, 260, 335, 446, 422, 332, 311, 296, 177,
        509, 671, 449, 416, 1893, 293, 266, 433, 379, 366, 3, 491, 129]


def test_the_t_bar_of_a_spread_measured_on_few_residuals() -> None:
    assert 4.7 < t_quantile(3.0, 6) < 5.2  # tables: 4.9 (one-sided 0.00135, 6 degrees of freedom)
    assert 3.1 < t_quantile(3.0, 55) < 3.3
    assert abs(t_quantile(3.0, 10_000) - 3.0) < 0.01


def test_a_dispersion_fitted_on_a_week_of_residuals_is_widened_for_its_sampling_error() -> None:
    rng = random.Random(0)
    for _ in range(20):  # a week of residuals of a CV 0.4 series (c^2 0.16): the fit wanders
        week = [(rng.gauss(0, 1) * 0.4 * 300, 300.0) for _ in range(7)]
        assert c2_bound(week, 3.0) >= 2 * fit_c2(week, 0.0)
    many = [(rng.gauss(0, 1) * 0.4 * 300, 300.0) for _ in range(2000)]
    assert 0.13 < fit_c2(many, 0.0) < c2_bound(many, 3.0) < 1.05 * fit_c2(many, 0.0) < 0.19


def test_the_dispersion_is_measured_from_the_expectation_not_from_the_residuals_median() -> None:
    """A week whose days all ran above their expectation (tests/series.py "noisy", seed 2)."""
    week = [(6.5, 358.0), (14.6, 492.0), (71.9, 324.0), (80.2, 315.0), (18.6, 296.0), (59.3, 366.0), (4.8, 445.0)]
    assert fit_c2(week) < 0.003  # about their own median (18.6) they lie close together
    assert fit_c2(week, 0.0) > 2 * fit_c2(week)


def test_three_close_weeks_do_not_make_a_quiet_saturday_a_drop_but_an_outage_is_one() -> None:
    flags = judge_series(Settings.for_bucket(86400), ((i, i % 7, 0, c, 0.0) for i, c in enumerate(DAYS)))
    # 129 against 305 (42 %) with only three Saturdays behind it and no measured dispersion: the
    # assumed c^2 of days (0.25) allows for it. 3 against 416 is a collapse whatever the spread.
    assert {f.start: f.kind for f in flags} == {24: Direction.DROP}


def hours(day_levels: list[float], zeros: set[int] = frozenset(), seed: int = 1) -> list[tuple[int, int, int, float, float]]:
    """Hourly counts of a shop of about 400 sales a day, each day at its level x a noise of CV 0.5
    (a level under 1: exactly that level)."""
    rng = random.Random(seed)
    total = sum(HOUR_WEIGHTS)
    out = []
    for d, level in enumerate(day_levels):
        noise = math.exp(rng.gauss(0, 0.47)) if level == 1 else 1.0
        for h, w in enumerate(HOUR_WEIGHTS):
            i = 24 * d + h
            mean = 400 * w / total * level * noise
            # Poisson by inversion (small means) or its normal approximation
            count = 0 if i in zeros else max(0, round(rng.gauss(mean, math.sqrt(mean)))) if mean > 30 \
                else _poisson(rng, mean)
            out.append((i, i % 168, h, float(count), 0.0))
    return out


def test_an_hour_under_collapse_of_its_slot_but_likely_given_a_low_day_is_not_reported() -> None:
    """A day running at 35 %: 2 sales at 12:00, 6 % of its week-slot expectation (about 34), are
    Poisson-negative-binomial chance against the 13 that today's level expects."""
    levels = [1.0] * 35 + [0.35] + [1.0] * 3
    series = hours(levels)
    noon = 24 * 35 + 12
    series[noon] = (noon, noon % 168, 12, 2.0, 0.0)
    flags = judge_series(Settings.for_bucket(3600), series)
    assert not [f for f in flags if f.start // 24 == 35], flags
    # ... while three hours at nothing in that day are one improbable run given today: reported.
    series = hours(levels, zeros={noon, noon + 1, noon + 2})
    flags = judge_series(Settings.for_bucket(3600), series)
    assert {noon, noon + 1, noon + 2} <= {f.start for f in flags if f.start // 24 == 35}, flags
