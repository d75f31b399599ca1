"""A lasting shift in a small, noisy shop (issue 11): about 60 sales a day at a day-to-day CV of
0.6 that halves (tests/shops.py, never tuned on). Its two-sample statistic can stay under
--sensitivity for the four weeks the data runs after the change, so the shift may stay
unconfirmed; its level is then held where it was, and a day at 20 % of the old level (40 % of
the new normal) must not become one finding a week against the old level, while a fall to
nothing keeps its collapsed days. Without a database: day totals through the judge
(anomaly_cli/volume.py, volume_shift.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from anomaly_cli.volume import Settings, judge_series
from tests.shops import Scenario, generate

JAN = datetime(2025, 1, 6)
EPOCH = datetime(1970, 1, 1)


def _days(seed: int) -> tuple[list[tuple[datetime, float, float, float]], datetime]:
    shop = generate(Scenario("small", seed, JAN, 98, bad_rows=300, shift=(70, 0.5)))  # as tests/shops_eval.py
    assert shop.shift_day is not None
    return [(d, *t) for d, t in sorted(shop.day_truth.items()) if d + timedelta(days=1) <= shop.end], shop.shift_day


def _judge(days: list[tuple[datetime, float, float, float]]) -> list[tuple[datetime, bool]]:
    items = [((d - EPOCH).days, ((d - EPOCH).days + 3) % 7, 0, actual, 0.0) for d, _, _, actual in days]
    return [(EPOCH + timedelta(days=f.start), f.shift) for f in judge_series(Settings.for_bucket(86400), items)]


@pytest.mark.parametrize("seed", [41, 42, 1, 2, 3])
def test_an_unconfirmed_shift_makes_no_finding_a_week_and_every_dead_day_is_reported(seed: int) -> None:
    days, shift_day = _days(seed)
    found = _judge(days)
    truth = {d: (normal, planted, actual) for d, normal, planted, actual in days}
    reported = {d for d, shift in found if not shift}
    # Recall: every day under 10 % of a meaningful normal (>= 50 sales), as tests/shops_eval.py.
    dead = {d for d, (n, p, a) in truth.items() if n >= 50 and max(p, a) < 0.1 * n}
    assert dead <= reported, sorted(dead - reported)
    # Precision after the change: a finding on a day after its first is a planted incident, a day
    # naturally under 20 % of its (new) normal, or the shift itself; nothing against the old level.
    false = [d for d in reported if d > shift_day and truth[d][1] >= 0.9 * truth[d][0]
             and truth[d][2] >= 0.2 * truth[d][0]]
    assert false == [], [f"{d:%Y-%m-%d}: {truth[d][2]:.0f} of a normal {truth[d][0]:.0f}" for d in sorted(false)]
    assert sum(shift for _, shift in found) <= 1


def test_a_dead_day_while_the_shift_is_unconfirmed_is_still_reported() -> None:
    """The same shop (seed 1, whose shift stays unconfirmed) with a day at 1 sale two weeks after
    the change: under --collapse of the new level too, reported."""
    days, shift_day = _days(1)
    at = next(i for i, (d, *_) in enumerate(days) if d == shift_day + timedelta(days=16))
    d, normal, _, _ = days[at]
    days[at] = (d, normal, 0.0, 1.0)
    assert d in {when for when, shift in _judge(days) if not shift}


def _fall(days: int, tail: int, seed: int) -> tuple[set[int], set[int]]:
    """A shop of about 400 sales a day (CV 0.3) falling over `days` days to 5 % and staying there
    `tail` days: (the days under 10 % of the old level, the days reported)."""
    import math
    import random

    rng = random.Random(seed)
    weekday = (1.0, 1.05, 1.05, 1.1, 1.2, 0.75, 0.55)
    levels = [1.0] * 56 + [1 - 0.95 / days * (i + 1) for i in range(days)] + [0.05] * tail
    items, dead = [], set()
    for i, level in enumerate(levels):
        mean = 400 * weekday[(i + 3) % 7] * level * (math.exp(rng.gauss(0, 0.3)) if level > 0.1 else 1.0)
        items.append((i, (i + 3) % 7, 0, float(max(0, round(rng.gauss(mean, math.sqrt(mean))))), 0.0))
        if level < 0.1:
            dead.add(i)
    return dead, {f.start for f in judge_series(Settings.for_bucket(86400), items) if not f.shift}


# (days of the fall, days at 5 % after it, seed, dead days that may go unreported): the falling
# days are a change past its bar, but a fall to nothing is no level to judge its own collapses
# by. Without either guard of ShiftDetector.suspected_level 10/20/0, 2 and 4 lose days; without
# the trend guard 10/1/2 loses one; without the collapse-zone guard 14/5/7 loses five (main, with
# no re-judging at all, misses one of them too).
FALLS = [(10, 20, seed, 0) for seed in range(5)] + [(10, 1, 2, 0), (14, 5, 7, 1)]


@pytest.mark.parametrize(("days", "tail", "seed", "spare"), FALLS)
def test_a_fall_to_nothing_keeps_its_collapsed_days(days: int, tail: int, seed: int, spare: int) -> None:
    dead, reported = _fall(days, tail, seed)
    assert len(dead - reported) <= spare, sorted(dead - reported)
