"""The checkout check: the Poisson tail and judging rules without a database, then scans on three engines."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from anomaly_cli.checks import CheckContext
from anomaly_cli.checks.checkout import (
    CheckoutCheck, Hour, Rules, expected_for, is_drop, judge, lower_tail, skip_reason,
)
from anomaly_cli.config import default_schema
from anomaly_cli.loaders import load_checkout, parse_checkout
from anomaly_cli.model import Severity, Window
from anomaly_cli.stats import severity_by_drop
from anomaly_cli.volume import Direction

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cloudwalk"
DAY1, DAY2 = date(2025, 7, 12), date(2025, 7, 13)
RULES = Rules()


def exact_lower(k: int, lam: float) -> float:
    return sum(math.exp(-lam) * lam**j / math.factorial(j) for j in range(k + 1))


@pytest.mark.parametrize(("k", "lam"), [(0, 9.57), (2, 19.54), (2, 5.39), (13, 23.73), (0, 0.5), (5, 5.0),
                                        (30, 20.0), (100, 150.0), (0, 34.89)])
def test_lower_tail_matches_the_exact_sum(k: int, lam: float) -> None:
    assert lower_tail(k, lam) == pytest.approx(exact_lower(k, lam), rel=1e-9, abs=1e-300)


def test_lower_tail_edges() -> None:
    assert lower_tail(-1, 3.0) == 0.0
    assert lower_tail(4, 0.0) == 1.0
    # Large counts neither overflow nor lose the tail: summed in log space, term by term.
    log_exact = sum(math.exp(j * math.log(500) - 500 - math.lgamma(j + 1)) for j in range(401))
    assert lower_tail(400, 500.0) == pytest.approx(log_exact, rel=1e-9)
    assert 0 <= lower_tail(2000, 5000.0) < 1e-300


def hour(today: float | None, *baselines: float | None, ts: datetime | None = datetime(2025, 7, 12, 8)) -> Hour:
    return Hour(ts, today, *baselines)


@pytest.mark.parametrize(
    ("today", "baselines", "flagged"),
    [
        (0, (1, 18, 8.71, 10.42), True),  # checkout_1 08h: 0 against a median of 9.57
        (2, (9, 30, 20, 19.07), True),  # checkout_1 09h
        (2, (3, 9, 5.57, 5.21), False),  # 07h: 2 against 5.39 happens by chance 1 time in 10
        (1, (0, 0, 0.42, 0.46), False),  # 03h: nothing to fall from
        (0, (0, 1, 0.42, 0.46), False),
        (0, (51, 42, 22.427, 27.78), True),  # checkout_2's zero hours
        (13, (32, 29, 16.85, 18.46), False),  # 18h: 45 % down is not half
        (19, (32, 35, 19.57, 24.89), False),
        (0, (6, 6, 6, 6), False),  # below --min-expected... 6 >= 5, but 0 of 6 is chance 1 in 400
        (0, (8, 8, 8, 8), True),
        (4, (8, 8, 8, 8), False),  # exactly half: not below it
    ],
)
def test_is_drop(today: float, baselines: tuple, flagged: bool) -> None:
    assert (judge(hour(today, *baselines), RULES) is not None) is flagged


def test_expected_is_the_median_of_the_known_baselines() -> None:
    assert expected_for(hour(0, 1, 18, 8.71, 10.42)) == pytest.approx(9.565)
    assert expected_for(hour(0, None, 18, None, 10)) == 14
    assert expected_for(hour(0, 100, 18, 20, 19)) == 19.5  # one odd baseline moves it little


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [(hour(None, 1, 2, 3, 4), "no_today"), (hour(1, None, None, None, 4), "too_few_baselines"),
     (hour(1, 1, 2, 3, 4, ts=None), "no_time"), (hour(1, None, None, 3, 4), None)],
)
def test_skip_reasons(candidate: Hour, reason: str | None) -> None:
    assert skip_reason(candidate) == reason


def test_the_options_are_the_rules() -> None:
    assert not is_drop(3, 10, Rules(drop=0.8))
    assert is_drop(1, 10, Rules(drop=0.8))
    assert not is_drop(0, 9.57, Rules(min_expected=10))
    assert not is_drop(0, 9.57, Rules(sensitivity=4))  # 7e-5 is not below the 4-sigma tail (3e-5)


@pytest.mark.parametrize(("drop", "severity"), [("100", Severity.CRITICAL), ("90", Severity.CRITICAL),
                                                ("89.99", Severity.HIGH), ("60", Severity.HIGH),
                                                ("59.99", Severity.MEDIUM), ("29.99", Severity.LOW)])
def test_severity(drop: str, severity: Severity) -> None:
    assert severity_by_drop(Decimal(drop)) is severity


def test_fields_and_sentence() -> None:
    finding = judge(hour(2, 9, 30, 20, 19.07, ts=datetime(2025, 7, 12, 9)), RULES)
    assert finding is not None
    assert finding.key == "checkout:2025-07-12T09:00:00"
    assert finding.fields == {
        "bucket_start": datetime(2025, 7, 12, 9), "bucket_end": datetime(2025, 7, 12, 10), "today": 2,
        "expected": Decimal("19.54"), "drop_pct": Decimal("89.76"), "yesterday": 9, "same_day_last_week": 30,
        "avg_last_week": Decimal("20.00"), "avg_last_month": Decimal("19.07")}
    assert finding.severity is Severity.HIGH
    assert finding.message == (
        "Checkouts fell to 2 from 09:00 to 10:00 on July 12, 2025 against 19.54 expected (yesterday 9, same day "
        "last week 30, last week's average 20.00, last month's average 19.07) - a 89.8% drop.")


def test_cloudwalk_files_flag_the_known_drops_and_nothing_else() -> None:
    flagged = []
    for name, day in (("checkout_1.csv", DAY1), ("checkout_2.csv", DAY2)):
        for row in parse_checkout(FIXTURES / name, day=day).rows:
            finding = judge(Hour(*row), RULES)
            if finding is not None:
                flagged.append(finding.fields["bucket_start"])
    assert flagged == [datetime(2025, 7, 12, 8), datetime(2025, 7, 12, 9), datetime(2025, 7, 13, 15),
                       datetime(2025, 7, 13, 16), datetime(2025, 7, 13, 17)]


# --- against real databases ---------------------------------------------------------------------

def load_cloudwalk(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name, day in (("checkout_1.csv", DAY1), ("checkout_2.csv", DAY2)):
            load_checkout(conn, default_schema(), parse_checkout(FIXTURES / name, day=day))
    engine.dispose()


@pytest.mark.engines
def test_scan_checkout_on_the_cloudwalk_days(engine_url: str, cli) -> None:
    load_cloudwalk(engine_url)
    run = cli("scan", "checkout", "--db", engine_url, "--format", "json")
    assert run.exit_code == 1, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    assert [(f["key"], f["severity"]) for f in check["findings"]] == [
        ("checkout:2025-07-12T08:00:00", "critical"), ("checkout:2025-07-12T09:00:00", "high"),
        ("checkout:2025-07-13T15:00:00", "critical"), ("checkout:2025-07-13T16:00:00", "critical"),
        ("checkout:2025-07-13T17:00:00", "critical")]
    first = check["findings"][0]
    assert list(first)[4:] == ["bucket_start", "bucket_end", "today", "expected", "drop_pct", "yesterday",
                               "same_day_last_week", "avg_last_week", "avg_last_month"]
    assert (first["today"], first["expected"], first["drop_pct"], first["avg_last_week"]) == (0, 9.57, 100.0, 8.71)
    assert check["summary"]["judged"] == 48

    windowed = cli("scan", "checkout", "--db", engine_url, "--format", "json", "--since", "2025-07-13T16:00",
                   "--until", "2025-07-13T18:00")
    assert [f["key"] for f in json.loads(windowed.stdout)["checks"][0]["findings"]] == [
        "checkout:2025-07-13T16:00:00", "checkout:2025-07-13T17:00:00"]


@pytest.mark.engines
def test_an_hour_still_running_is_not_judged(engine_url: str) -> None:
    load_cloudwalk(engine_url)
    from anomaly_cli import db

    params = {"drop": 0.5, "min_expected": 5.0, "sensitivity": 3.0}
    with db.connect(db.parse_url(engine_url)) as conn:
        ctx = CheckContext(conn=conn, schema=default_schema(), window=Window(since=datetime(2025, 7, 13)),
                           params=params, currency="₹", now=datetime(2025, 7, 13, 16, 30))
        keys = [f.key for f in CheckoutCheck().run(ctx)]
    assert keys == ["checkout:2025-07-13T15:00:00"]  # 16h ends at 17:00, after now
    assert ctx.stats.judged == 16


# --- weekday-aware judging, spikes, and the table's own history --------------------------------

def test_a_quiet_weekday_hour_is_not_a_drop_when_last_week_was_as_quiet() -> None:
    # Monday 02:00: yesterday (Sunday night) and the averages are busier, last Monday was as quiet.
    assert judge(hour(0, 9, 0, 6, 6, ts=datetime(2025, 7, 14, 2)), RULES) is None
    assert judge(hour(0, 9, 8, 6, 6, ts=datetime(2025, 7, 14, 2)), RULES) is not None
    assert judge(hour(0, 12, None, 9, 9, ts=datetime(2025, 7, 14, 2)), RULES) is not None


def test_spikes_only_when_asked_for() -> None:
    busy = hour(40, 10, 12, 11, 10, ts=datetime(2025, 7, 14, 12))
    assert judge(busy, RULES) is None
    finding = judge(busy, Rules(direction=Direction.BOTH))
    assert finding is not None and finding.fields["drop_pct"] < 0
    assert "rose to 40" in finding.message and finding.message.endswith("rise.")


def weeks_of_hours(first: datetime, weeks: int, zero: set[datetime]) -> list[dict]:
    """Hourly rows whose Sunday mornings run at a fifth of the week's average, with baselines that
    ignore the weekday (a feed whose 'same day last week' is an average too); the hours in `zero`
    have no checkouts."""
    def usual(moment: datetime) -> float:
        base = 30.0 if 8 <= moment.hour <= 20 else 6.0
        return base / 5 if moment.weekday() == 6 and moment.hour < 12 else base

    rows = []
    for h in range(weeks * 7 * 24):
        ts = first + timedelta(hours=h)
        today = 0.0 if ts in zero else usual(ts)
        rows.append({"ts": ts, "today": today, "yesterday": usual(ts - timedelta(days=1)),
                     "same_day_last_week": 30.0 if 8 <= ts.hour <= 20 else 6.0,
                     "avg_last_week": 30.0 if 8 <= ts.hour <= 20 else 6.0,
                     "avg_last_month": 30.0 if 8 <= ts.hour <= 20 else 6.0})
    return rows


def test_the_tables_own_weeks_decide_once_there_are_enough(sqlite_url: str, cli) -> None:
    from anomaly_cli.loaders import checkout_table
    from tests.conftest import load_database

    first = datetime(2025, 6, 2)  # a Monday
    zero = {datetime(2025, 6, 25, 14), datetime(2025, 6, 25, 15)}  # a Wednesday afternoon, week 4
    load_database(sqlite_url, {})
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        table = checkout_table(default_schema())
        table.create(conn)
        conn.execute(table.insert(), weeks_of_hours(first, 5, zero))
    engine.dispose()
    run = cli("scan", "checkout", "--db", sqlite_url, "--format", "json", "--fail-on", "never",
              "--since", "2025-06-23", "--until", "2025-07-07")
    assert run.exit_code == 0, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    # Sunday mornings at a fifth of the averages were flagged by the row baselines alone; with
    # three earlier weeks of the table's own Sunday mornings they are ordinary.
    assert [f["key"] for f in check["findings"]] == ["checkout:2025-06-25T14:00:00", "checkout:2025-06-25T15:00:00"]
    assert check["summary"]["judged_by_own_history"] == 14 * 24
    # Without enough weeks of its own (--min-history 8), the row baselines flag the Sunday mornings.
    run = cli("scan", "checkout", "--db", sqlite_url, "--format", "json", "--fail-on", "never",
              "--since", "2025-06-23", "--until", "2025-07-07", "--min-history", "8")
    keys = [f["key"] for f in json.loads(run.stdout)["checks"][0]["findings"]]
    assert "checkout:2025-06-29T09:00:00" in keys and "checkout:2025-06-25T14:00:00" in keys
