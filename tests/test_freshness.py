"""The freshness check: a stalled feed against the table's own rhythm, on three engines."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from anomaly_cli.checks.freshness import Rhythm, learn, severity_for, slot_of
from anomaly_cli.model import Severity
from tests.conftest import load_counts, load_database, scan_json

START = datetime(2025, 6, 2)  # a Monday


def test_learn_is_per_hour_of_week_and_pools_with_less_than_a_week() -> None:
    hours = {START + timedelta(hours=h): (0 if (START + timedelta(hours=h)).hour < 6 else 60)
             for h in range(14 * 24)}
    rhythm = learn(hours, START, START + timedelta(days=14))
    assert rhythm.weeks == 1  # the first hour (Monday 00:00) is partial: one whole Monday 00:00
    assert rhythm.per_slot[slot_of(datetime(2025, 6, 9, 3))] == 0  # nights are silent
    assert rhythm.per_slot[slot_of(datetime(2025, 6, 9, 12))] == 60
    # A quiet night adds nothing; a stalled afternoon adds a row a minute.
    assert rhythm.expected_rows(datetime(2025, 6, 16, 0, 30), datetime(2025, 6, 16, 5, 30)) == 0
    assert rhythm.expected_rows(datetime(2025, 6, 16, 12, 30), datetime(2025, 6, 16, 14, 0)) == 90
    young = learn(hours, START, START + timedelta(days=3))
    assert young.weeks == 0 and set(young.per_slot.values()) == {60.0}


def test_severity_by_times_the_bar() -> None:
    assert severity_for(1) is Severity.MEDIUM
    assert severity_for(3) is Severity.HIGH
    assert severity_for(9) is Severity.CRITICAL
    assert Rhythm({}, 0).expected_rows(START, START + timedelta(hours=2)) == 0


def counts_rows(until: datetime, *, quiet_nights: bool = False) -> list[dict]:
    rows = []
    moment = START
    while moment < until:
        if not (quiet_nights and moment.hour < 6):
            rows += [{"ts": moment, "status": "approved", "count": 50}, {"ts": moment, "status": "denied", "count": 3}]
        moment += timedelta(minutes=1)
    return rows


def load(url: str, counts: list[dict], transactions: list[dict] | None = None) -> None:
    load_database(url, {"customers": [{"customer_id": 1, "customer_name": "Eva Green"}],
                        "transactions": transactions or []})
    load_counts(url, counts)


def scan(cli, url: str, *args: str) -> dict:
    return scan_json(cli, "freshness", url, *args)


@pytest.mark.engines
def test_a_stalled_feed_is_reported_and_a_quiet_night_is_not(engine_url: str, cli) -> None:
    stop = datetime(2025, 6, 16, 14, 0)  # a Monday afternoon, after two weeks of minutes
    txns = [{"transaction_id": i, "customer_id": 1, "transaction_date": START + timedelta(minutes=7 * i),
             "status": "SUCCESS", "total_amount": 10} for i in range(1, 14 * 24 * 60 // 7)]
    load(engine_url, counts_rows(stop), txns)
    check = scan(cli, engine_url, "--until", "2025-06-16T16:00:00")
    (finding,) = [f for f in check["findings"] if f["table"] == "status_counts"]
    assert finding["newest"] == "2025-06-16T13:59:00"
    assert finding["age_seconds"] == 7260 and finding["expected_gap_seconds"] == 60
    assert finding["severity"] == "critical"  # 121 expected gaps
    assert finding["message"].startswith("No new rows in status_counts since 13:59 on June 16, 2025: 2 h 1 min")
    assert list(finding)[4:] == ["table", "newest", "age_seconds", "expected_gap_seconds"]
    # The transactions table stopped on June 15 (14 days of them): also stalled, checkout is
    # missing (not an error).
    assert {f["table"] for f in check["findings"]} == {"status_counts", "transactions"}
    assert check["summary"]["skipped"] == {"missing_table": 1}
    assert check["summary"]["status"] == "findings"
    # Ten minutes after the last row: 10 gaps of a minute, under... no: 10 >= 7, medium.
    check = scan(cli, engine_url, "--until", "2025-06-16T14:09:00")
    (finding,) = [f for f in check["findings"] if f["table"] == "status_counts"]
    assert finding["severity"] == "medium"
    # Five minutes after: fewer than 7 expected gaps, nothing to say.
    check = scan(cli, engine_url, "--until", "2025-06-16T14:04:00")
    assert [f for f in check["findings"] if f["table"] == "status_counts"] == []


@pytest.mark.engines
def test_quiet_nights_and_explicit_max_age(engine_url: str, cli) -> None:
    load(engine_url, counts_rows(datetime(2025, 6, 17, 0, 0), quiet_nights=True))
    # 05:30 after a feed that is silent every night from midnight to 06:00: nothing due, no finding.
    check = scan(cli, engine_url, "--until", "2025-06-17T05:30:00")
    assert [f for f in check["findings"] if f["table"] == "status_counts"] == []
    # At 07:00 an hour of rows is missing: reported.
    check = scan(cli, engine_url, "--until", "2025-06-17T07:00:00")
    assert [f["table"] for f in check["findings"]] == ["status_counts"]
    # --max-age: the bar is that age, whatever the rhythm.
    check = scan(cli, engine_url, "--until", "2025-06-17T05:30:00", "--max-age", "2h")
    (finding,) = check["findings"]
    assert finding["expected_gap_seconds"] == 7200 and finding["severity"] == "medium"


def test_a_copy_and_an_empty_database_are_not_evaluated(sqlite_url: str, cli) -> None:
    load(sqlite_url, counts_rows(datetime(2025, 6, 3)))
    check = scan(cli, sqlite_url)  # the clock is years later: a copy, not a live feed
    assert check["findings"] == []
    assert check["summary"]["status"] == "not_evaluated"
    assert "over a week old" in check["summary"]["reason"]
    run = cli("scan", "freshness", "--db", sqlite_url, "--max-age", "soon")
    assert run.exit_code == 2 and "freshness.max_age" in run.stderr and "Traceback" not in run.stderr


def test_scan_all_includes_freshness(sqlite_url: str, cli) -> None:
    load(sqlite_url, counts_rows(datetime(2025, 6, 16, 14)))
    run = cli("scan", "all", "--db", sqlite_url, "--format", "json", "--fail-on", "never",
              "--until", "2025-06-16T16:00:00")
    assert run.exit_code == 0, run.stderr
    checks = {c["check"]: c for c in json.loads(run.stdout)["checks"]}
    assert [f["table"] for f in checks["freshness"]["findings"]] == ["status_counts"]
