"""Issue 11 'Done when', tried as a new user would on shops the method was never tuned on.

The shops come from tests/shops.py (not tests/series.py): a flat 24/7 shop, a B2B shop with empty
weekends stored in UTC, a night-owl shop peaking at 22:00; gamma-Poisson day noise (CV 0.35-0.5),
growth, daylight-saving changes, planted dead days (0-8 %) and 2-4 hour outages (0-5 %), a lasting
shift to 50 %, a stalled feed. Each is created with `anomaly db init` and filled with INSERTs (COPY
on PostgreSQL), then scanned at default settings. Scoring as in tests/shops_eval.py: every bucket
whose true expectation is meaningful (>= 50 sales a day, >= 15 an hour) and which holds under 10 %
of it must be covered by a finding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from anomaly_cli.cli import app
from anomaly_cli.scan import scan
from tests.conftest import _fresh_database
from tests.shops import Scenario, Shop, generate, spoil
from tests.shops_eval import Score, load, score

JAN = datetime(2025, 1, 6)
SEEDS = (21, 22)
RECALL = [
    Scenario("flat247", seed, JAN, 91, trend=1.04) for seed in SEEDS
] + [
    Scenario("nightowl", seed, JAN, 91) for seed in SEEDS
] + [
    Scenario("b2b", seed, JAN, 70, storage="utc") for seed in SEEDS
]
DST_GAP = "2025-03-30T02:00:00"  # 02:00-03:00 does not exist in Europe/Berlin that night
SHIFT = [Scenario("flat247", seed, JAN, 84, shift=(49, 0.5), day_incidents=1, hour_incidents=1) for seed in SEEDS]


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """shop_db(scenario or shop, engine) -> (shop, url): generated and loaded as a user would, once
    per module (the same shop serves the recall and the precision test)."""
    made: dict[tuple[str, str, int], tuple[Shop, str]] = {}
    drops: list[Iterator[str]] = []
    runner = CliRunner()

    def init(url: str) -> None:
        done = runner.invoke(app, ["db", "init", "--db", url], catch_exceptions=False)
        assert done.exit_code == 0, done.stderr

    def make(s: Scenario | Shop, engine: str = "sqlite") -> tuple[Shop, str]:
        key = (s.scenario.name if isinstance(s, Shop) else s.name, engine, len(s.rows) if isinstance(s, Shop) else 0)
        if key not in made:
            shop = s if isinstance(s, Shop) else generate(s)
            databases = _fresh_database(engine, tmp_path_factory.mktemp("shop"))
            drops.append(databases)
            url = next(databases)
            load(shop, url, init)
            made[key] = shop, url
        return made[key]

    yield make
    for databases in drops:
        next(databases, None)  # drops a server database


def findings(shop: Shop, url: str, size: str) -> list[dict[str, Any]]:
    settings = {"sales.bucket": size}
    if shop.scenario.storage == "utc" and size == "hour":
        settings["sales.timezone"] = shop.scenario.zone
    report = scan(url, checks=["sales"], until=shop.end.isoformat(), settings=settings)
    assert report.results[0].status != "not_evaluated", report.results[0].summary()
    return [{**f.fields, "bucket_start": f.fields["bucket_start"].isoformat(),
             "bucket_end": f.fields["bucket_end"].isoformat(), "message": f.message} for f in report.findings]


def _misses(sc: Score) -> str:
    return "; ".join(f"{m[0]:%Y-%m-%d %a %H:%M} {m[3]:.0f} sales vs {m[1]} expected" for m in sc.missed)


@pytest.mark.parametrize("size", ["day", "hour"])
@pytest.mark.parametrize("scenario", RECALL, ids=lambda s: s.name)
def test_every_meaningful_dead_bucket_is_reported(shop_db: Any, scenario: Scenario, size: str) -> None:
    shop, url = shop_db(scenario)
    sc = score(shop, findings(shop, url, size), size)
    assert sc.required > 0 or size == "day"  # the plan planted something an hour scan must see
    assert sc.covered == sc.required, f"missed {sc.required - sc.covered}: {_misses(sc)}"


def test_a_dead_day_of_a_declining_b2b_shop_is_reported(shop_db: Any) -> None:
    """Friday 2025-03-14 at 7 %: 44 sales against a true 515 (the method's own estimate is lower)."""
    shop, url = shop_db(Scenario("b2b", 3, JAN, 98, storage="utc", trend=0.97))
    sc = score(shop, findings(shop, url, "day"), "day")
    assert sc.required > 0 and sc.covered == sc.required, f"missed: {_misses(sc)}"


@pytest.mark.parametrize("size", ["day", "hour"])
def test_precision_over_every_shop_and_seed(shop_db: Any, size: str) -> None:
    """Findings that cover no planted incident, no planted change and no naturally dead bucket."""
    hits = judged = 0
    false: list[str] = []
    for scenario in RECALL:
        shop, url = shop_db(scenario)
        sc = score(shop, findings(shop, url, size), size)
        hits += sc.hits + sc.shift
        judged += sc.findings - sc.neutral - sc.first_week
        false += [f"{scenario.name} {f['bucket_start']}: {f['message']}" for f in sc.false]
    assert hits / max(judged, 1) >= 0.9, f"precision {hits}/{judged}; false: " + " | ".join(false)


def test_a_small_shops_quiet_hours_are_not_outages(shop_db: Any) -> None:
    """About 60 sales a day at CV 0.6: its hours hold 2-5 sales, a 1 is common, and an hour under
    --collapse of its week-slot expectation on a day running low is chance given that day (it was
    reported before: hour precision 0.47 and 0.80 on seeds 41 and 42 of tests/shops_eval.py)."""
    hits = judged = 0
    false: list[str] = []
    for seed in SEEDS:
        shop, url = shop_db(Scenario("small", seed, JAN, 98))
        sc = score(shop, findings(shop, url, "hour"), "hour")
        hits += sc.hits + sc.shift
        judged += sc.findings - sc.neutral - sc.first_week
        false += [f"{f['bucket_start']}: {f['message']}" for f in sc.false]
    # measured: 27 of 28 (seed 22: one)
    assert judged and hits / judged >= 0.9, f"precision {hits}/{judged}; false: " + " | ".join(false)


@pytest.mark.parametrize("size", ["day", "hour"])
@pytest.mark.parametrize("scenario", SHIFT, ids=lambda s: s.name)
def test_a_lasting_shift_is_one_finding(shop_db: Any, scenario: Scenario, size: str) -> None:
    shop, url = shop_db(scenario)
    assert shop.shift_day is not None
    found = findings(shop, url, size)
    # Planted incidents are their own findings: whole days, and the hours of an outage (whose day
    # can stay above 90 %). A level shift spanning a dead day is still the shift.
    planted = {s for s, t in shop.day_truth.items() if t[1] < 0.9 * t[0]}
    outages = {s for s, t in shop.hour_truth.items() if t[1] < 0.9 * t[0]}

    def incident(f: dict[str, Any]) -> bool:
        start, end = datetime.fromisoformat(f["bucket_start"]), datetime.fromisoformat(f["bucket_end"])
        return "level shift" not in f["message"] and (
            start in outages or any(start <= d < end or start.replace(hour=0) == d for d in planted))

    after = [f for f in found if datetime.fromisoformat(f["bucket_start"]) >= shop.shift_day - timedelta(days=3)
             and not incident(f)]
    after = [f for f in after if f["bucket_start"] != DST_GAP]  # its own test
    shifts = [f for f in after if "level shift" in f["message"]]
    assert len(shifts) == 1 and len(after) == 1, [f"{f['bucket_start']}: {f['message']}" for f in after]
    # ... and a dead day inside it is reported on its own, not folded into the new level.
    dead = {s for s, t in shop.day_truth.items() if t[1] < 0.1 * t[0]}
    own = {datetime.fromisoformat(f["bucket_start"]).replace(hour=0) for f in found if "level shift" not in f["message"]}
    assert dead and dead <= own, sorted(dead - own)


# Noisier shops (day CV 0.5) whose halving is under one sigma a day: found by the CUSUM of log
# ratios and the two-sample test of volume_shift.py, not by any single day.
# Seed 42: its first day ran low and an hour of it was reported where the shift starts (both
# kept since a shift has a key of its own).
NOISY_SHIFT = [Scenario("nightowl", seed, JAN, 98, shift=(63, 0.5)) for seed in (1, 2, 3, 42)]


@pytest.mark.parametrize("size", ["day", "hour"])
def test_a_halving_in_a_noisy_shop_is_one_shift_and_a_steady_shop_has_none(shop_db: Any, size: str) -> None:
    """One level-shift finding per planted lasting shift (at day and at hour level: the hours
    take it from the day totals, not one per hour), starting within ten days of the change (at a
    CV of 0.5 a few low days before it look like it: measured 9 days early at worst); none on
    the shops without one."""
    for scenario in NOISY_SHIFT:
        shop, url = shop_db(scenario)
        assert shop.shift_day is not None
        shifts = [datetime.fromisoformat(f["bucket_start"]) for f in findings(shop, url, size)
                  if "level shift" in f["message"]]
        assert len(shifts) == 1, (scenario.name, shifts)
        assert abs(shifts[0] - shop.shift_day) <= timedelta(days=10), (scenario.name, shifts, shop.shift_day)
    for scenario in RECALL:
        shop, url = shop_db(scenario)
        shifts = [f["bucket_start"] for f in findings(shop, url, size) if "level shift" in f["message"]]
        assert shifts == [], (scenario.name, shifts)


def test_the_daylight_saving_hour_that_does_not_exist_is_no_outage(shop_db: Any) -> None:
    """Stored as the wall clock of Europe/Berlin, 2025-03-30 02:00-03:00 never happened."""
    shop, url = shop_db(Scenario("flat247", 21, JAN, 91, day_incidents=0, hour_incidents=0))
    gap = [f for f in findings(shop, url, "hour") if f["bucket_start"] == DST_GAP]
    assert gap == [], gap[0]["message"] if gap else ""


def test_a_stalled_feed_is_reported_and_a_live_one_is_not(shop_db: Any, cli: Any) -> None:
    for stall, expected in ((5, ["transactions"]), (0, [])):
        shop, url = shop_db(Scenario("nightowl", 21, JAN, 35, stall_hours=stall, day_incidents=0, hour_incidents=0))
        done = cli("scan", "freshness", "--db", url, "--until", shop.end.isoformat(), "--format", "json")
        check = json.loads(done.stdout)["checks"][0]
        assert [f["table"] for f in check["findings"]] == expected, check
        assert done.exit_code == (1 if expected else 0)


def test_same_findings_on_postgresql(shop_db: Any) -> None:
    scenario = RECALL[0]
    shop, lite = shop_db(scenario)
    _, pg = shop_db(scenario, "postgresql")
    for size in ("day", "hour"):
        assert findings(shop, pg, size) == findings(shop, lite, size)


def test_bad_rows_change_no_finding_but_are_counted(shop_db: Any) -> None:
    """Garbage dates and unreadable amounts (extra rows) leave the day verdicts as they were."""
    clean, url_clean = shop_db(Scenario("nightowl", 22, JAN, 63))
    dirty = replace(clean, rows=list(clean.rows))
    spoil(dirty.rows, np.random.default_rng(5), 40, len(clean.rows) + 1)
    _, url_dirty = shop_db(dirty)
    skipped = scan(url_dirty, checks=["sales"], until=dirty.end.isoformat()).results[0].summary()["skipped"]
    assert skipped.get("bad_date", 0) > 0 and skipped.get("bad_amount", 0) > 0, skipped
    for size in ("day", "hour"):
        keep = ("bucket_start", "bucket_end")  # an unreadable amount still counts as a sale
        assert [{k: f[k] for k in keep} for f in findings(dirty, url_dirty, size)] == \
            [{k: f[k] for k in keep} for f in findings(clean, url_clean, size)]


EMPTY = ("--since", "2025-05-01", "--until", "2025-05-03")


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "table", "junit", "github", "text"])
def test_not_evaluated_says_why_in_every_format(shop_db: Any, cli: Any, fmt: str, tmp_path: Path) -> None:
    """A window after the data. Machine formats must say so in the output itself (what a pipeline
    keeps with --quiet, the README's CI recipe); text, for people, on its stderr line."""
    shop, url = shop_db(Scenario("nightowl", 21, JAN, 21, day_incidents=0, hour_incidents=0))
    out = tmp_path / f"out.{fmt}"
    quiet = () if fmt == "text" else ("--quiet",)
    done = cli("scan", "sales", "--db", url, *EMPTY, "--format", fmt, *quiet, "--output", str(out))
    assert done.exit_code == 0
    said = done.stderr if fmt == "text" else out.read_text()
    assert "not evaluated" in said.replace("_", " ") and "no transactions" in said, f"{fmt}: {said!r}"
    loud = cli("scan", "sales", "--db", url, *EMPTY, "--format", fmt, "--fail-on-not-evaluated")
    assert loud.exit_code == 1 and "not evaluated: no transactions" in loud.stderr


def test_price_without_any_line_item_is_not_evaluated(shop_db: Any) -> None:
    """A shop that loads transactions only: price judged nothing, so it must not read 'ok'."""
    shop, url = shop_db(Scenario("nightowl", 21, JAN, 21, day_incidents=0, hour_incidents=0))
    summary = scan(url, checks=["price"], until=shop.end.isoformat()).results[0].summary()
    assert summary["status"] == "not_evaluated" and summary.get("reason"), summary


def test_a_one_day_shop_is_not_evaluated_for_lack_of_history(shop_db: Any) -> None:
    shop, url = shop_db(Scenario("flat247", 21, datetime(2025, 4, 13), 1, day_incidents=0, hour_incidents=0))
    outcome = scan(url, checks=["sales"], until=shop.end.isoformat()).results[0]
    summary = outcome.summary()
    assert summary["status"] == "not_evaluated" and "history" in summary["reason"], summary
