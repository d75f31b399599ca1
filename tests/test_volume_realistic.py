"""Recall and precision of the volume judgement on realistic series (tests/series.py), several seeds.

Day buckets (scan sales' default) are held to the issue's bar: every planted collapse found
(recall 1.0), precision >= 0.9 over all scenarios, a level shift reported once. Hour buckets are
held to what they measure today (see the figures in the report of issue 11): the floors below
keep them from getting worse. The same series go through the whole check on SQLite and on the
server engines, with identical findings.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import pytest

from tests.conftest import load_database
from tests.series import SCENARIOS, Series, _flags, make, score

SEEDS = range(5)


def day_flags(series: Series) -> list[tuple[datetime, datetime, bool]]:
    return _flags(series, hourly=False)


def hour_flags(series: Series) -> list[tuple[datetime, datetime, bool]]:
    return _flags(series, hourly=True)


def measured(hourly: bool) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for name in SCENARIOS:
        totals = [0, 0, 0, 0]
        for seed in SEEDS:
            series = make(name, seed)
            found = hour_flags(series) if hourly else day_flags(series)
            for i, value in enumerate(score(found, series, hourly=hourly)):
                totals[i] += value
        out[name] = (totals[0], totals[1], totals[2], totals[3])
    return out


def test_day_buckets_find_every_planted_collapse_with_precision_over_90_percent() -> None:
    figures = measured(hourly=False)
    true = sum(t for _, _, t, _ in figures.values())
    false = sum(f for _, _, _, f in figures.values())
    for name, (planted, found, _, _) in figures.items():
        if name != "shift":
            assert found == planted, (name, figures[name])
    assert true / (true + false) >= 0.9, figures


def test_a_level_shift_is_reported_once_and_then_is_the_normal() -> None:
    found = 0
    for seed in SEEDS:
        series = make("shift", seed)
        flags = day_flags(series)
        shifts = [f for f in flags if f[2]]
        assert len(shifts) <= 1, (seed, flags)
        assert not [f for f in flags if not f[2] and f[0].date() >= series.shift_day], (seed, flags)
        found += bool(shifts) and abs((shifts[0][0].date() - series.shift_day).days) <= 3
    assert found >= 4  # measured: 4 of 5 (seed 2's shift sinks into noise of cv 0.5)


def test_hour_buckets_stay_at_their_measured_level() -> None:
    figures = measured(hourly=True)
    planted = sum(p for name, (p, _, _, _) in figures.items() if name != "shift")
    found = sum(f for name, (_, f, _, _) in figures.items() if name != "shift")
    true = sum(t for name, (_, _, t, _) in figures.items() if name != "shift")
    false = sum(f for name, (_, _, _, f) in figures.items() if name != "shift")
    assert found / planted >= 0.9, figures  # measured 0.93 (seeds 0-4)
    assert true / (true + false) >= 0.9, figures  # measured 0.96 (without the shift scenario)


# --- through the whole check, on every engine -----------------------------------------------

def sales_rows(series: Series) -> dict[str, list[dict]]:
    rows, i = [], 1
    for when, n in sorted(series.hours.items()):
        for k in range(n):
            rows.append({"transaction_id": i, "customer_id": 1, "status": "SUCCESS", "total_amount": 25,
                         "transaction_date": when + timedelta(seconds=(3600 * k) // max(n, 1))})
            i += 1
    return {"customers": [{"customer_id": 1, "customer_name": "Eva Green"}], "transactions": rows}


@pytest.mark.engines
@pytest.mark.parametrize("name", ["noisy", "shift"])
def test_the_check_finds_the_plants_on_every_engine(engine_url: str, cli, name: str) -> None:
    series = make(name, 1, level=150)
    load_database(engine_url, sales_rows(series))
    run = cli("scan", "sales", "--db", engine_url, "--format", "json", "--fail-on", "never",
              "--until", series.end.isoformat())
    assert run.exit_code == 0, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    found = [(datetime.fromisoformat(f["bucket_start"]), datetime.fromisoformat(f["bucket_end"]),
              "level shift" in f["message"]) for f in check["findings"]]
    planted, hit, true, false = score(found, series, hourly=False)
    assert hit == planted and false == 0, check["findings"]
    assert found == day_flags(series)  # the check and the judgement agree, on every engine
    for day in series.must_days:
        assert datetime.combine(day, time()) in {f[0] for f in found}
