"""The shared volume judgement (anomaly_cli/volume.py), without a database."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from anomaly_cli.volume import Basis, Direction, Flag, Settings, VolumeJudge, judge_series

WEEK = [100, 100, 100, 100, 100, 40, 40]  # five weekdays, a quiet weekend


def judge_days(counts: Sequence[float], **kw: object) -> list[Flag]:
    settings = Settings.for_bucket(86400, **kw)
    return judge_series(settings, ((i, i % 7, 0, c, c * 100) for i, c in enumerate(counts)))


def flagged(flags: Sequence[Flag]) -> dict[int, Direction]:
    return {f.start: f.kind for f in flags}


def test_flat_history_keeps_a_poisson_floor() -> None:
    counts = WEEK * 6
    counts[5 * 7 + 2] = 92  # a tiny dip after five perfectly flat weeks (no spread at all)
    assert flagged(judge_days(counts)) == {}
    counts[5 * 7 + 2] = 60
    assert flagged(judge_days(counts)) == {37: Direction.DROP}


def test_quiet_weekends_are_normal_but_a_wednesday_like_a_sunday_is_not() -> None:
    assert flagged(judge_days(WEEK * 6)) == {}
    counts = WEEK * 6
    counts[4 * 7 + 2] = 40  # the Wednesday of week 5
    assert flagged(judge_days(counts)) == {30: Direction.DROP}


def test_past_outages_do_not_poison_later_baselines() -> None:
    counts = WEEK * 7
    counts[3 * 7 + 1] = counts[4 * 7 + 1] = 0  # two Tuesdays in a row with no sales
    assert flagged(judge_days(counts)) == {22: Direction.DROP, 29: Direction.DROP}
    judge = VolumeJudge(Settings.for_bucket(86400))
    for i, c in enumerate(counts[:36]):
        judge.feed(i, i % 7, 0, c)
    expectation, _ = judge.expect(1, 0)  # the next Tuesday: compared with normal Tuesdays only
    assert expectation is not None and expectation.count == 100 and expectation.basis is Basis.SEASONAL


def test_a_lasting_level_shift_is_reported_once_then_normal() -> None:
    rng = random.Random(3)
    counts = [round(c * rng.uniform(0.9, 1.1)) for c in WEEK * 5] + \
             [round(c * 0.5 * rng.uniform(0.9, 1.1)) for c in WEEK * 6]
    flags = judge_days(counts)
    assert len(flags) == 1
    (shift,) = flags
    assert shift.shift and shift.kind is Direction.DROP and shift.start == 35
    assert 0.4 < shift.count / shift.expected < 0.6
    # A rise is followed silently when only drops are asked for, and reported once for both.
    up = [round(c * rng.uniform(0.9, 1.1)) for c in WEEK * 5] + [c * 2 for c in WEEK * 6]
    assert judge_days(up) == []
    assert [(f.start, f.kind, f.shift) for f in judge_days(up, direction=Direction.BOTH)] == \
        [(35, Direction.SPIKE, True)]


def test_consecutive_outage_days_are_not_a_shift() -> None:
    counts = WEEK * 6
    counts[29], counts[30], counts[31] = 0, 30, 55  # three bad days, then normal again
    flags = judge_days(counts)
    assert [(f.start, f.shift) for f in flags] == [(29, False), (30, False), (31, False)]


def test_noisy_history_widens_the_bar_but_a_collapse_is_always_a_drop() -> None:
    rng = random.Random(5)
    noisy = [round(c * rng.lognormvariate(0, 0.5)) for c in WEEK * 8]
    noisy[7 * 7 + 2] = 55  # a 45 % dip: inside this shop's ordinary swings
    assert 51 not in flagged(judge_days(noisy))
    noisy[7 * 7 + 2] = 3  # under 10 % of a meaningful expectation
    assert flagged(judge_days(noisy)).get(51) is Direction.DROP
    calm = WEEK * 6
    calm[5 * 7 + 2] = 55  # the same dip in a calm shop is an anomaly
    assert flagged(judge_days(calm)) == {37: Direction.DROP}


def test_spikes_only_when_asked_for() -> None:
    counts = WEEK * 5
    counts[4 * 7 + 3] = 200
    assert flagged(judge_days(counts)) == {}
    assert flagged(judge_days(counts, direction=Direction.SPIKE)) == {31: Direction.SPIKE}
    counts[4 * 7 + 1] = 10
    assert flagged(judge_days(counts, direction=Direction.BOTH)) == {29: Direction.DROP, 31: Direction.SPIKE}


def test_short_history_falls_back_and_says_so() -> None:
    counts = [100.0] * 10 + [0.0] + [100.0] * 3  # a ten-day-old shop, then a day without sales
    (flag,) = judge_days(counts)
    assert flag.start == 10 and flag.basis is Basis.ALL_DAYS and flag.basis.confidence == "medium"
    (flag,) = judge_days([100.0] * 4 + [3.0])
    assert flag.basis is Basis.RECENT and flag.basis.confidence == "low"
    # With little history only collapses count: a 60 % dip is not reported yet.
    assert judge_days([100.0] * 4 + [40.0]) == []
    # A shop closed on Sundays is not down on its second Sunday.
    closed = [0.0 if i % 7 == 6 else 100.0 for i in range(14)]
    assert [f.start for f in judge_days(closed)] == [6]  # only the first, before any Sunday was seen


def test_an_expectation_below_min_expected_needs_the_sigma_rule() -> None:
    counts = [3.0, 2.0, 4.0, 3.0, 2.0, 3.0, 4.0] * 4 + [0.0]  # 0 against ~3: Poisson says chance
    assert judge_days(counts) == []
    assert math.isclose(Settings.for_bucket(3600).shift_run, 48)


def test_hour_slots_follow_the_shops_clock_across_daylight_saving() -> None:
    from datetime import datetime

    from anomaly_cli.checks.sales import BucketSize, index_of, slots

    winter = index_of(datetime(2025, 3, 24, 8), BucketSize.HOUR)  # Monday 08:00 UTC = 09:00 in Berlin
    summer = index_of(datetime(2025, 3, 31, 7), BucketSize.HOUR)  # Monday 07:00 UTC = 09:00 in Berlin
    assert slots(winter, BucketSize.HOUR, "Europe/Berlin") == slots(summer, BucketSize.HOUR, "Europe/Berlin") == (9, 9)
    assert slots(winter, BucketSize.HOUR) == (8, 8)  # the stored wall clock: Monday 08:00
    assert slots(index_of(datetime(2025, 3, 26), BucketSize.DAY), BucketSize.DAY) == (2, 0)  # a Wednesday
