"""The sales check: judging rules without a database, then scans of real and synthetic shops on three engines."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from anomaly_cli.checks import registry
from anomaly_cli.checks.sales import BucketSize, Direction, Measured, drop_pct, fill, sales_amount, template_line
from anomaly_cli.config import load_settings
from anomaly_cli.demo_data import generate
from anomaly_cli.model import Severity, Window
from anomaly_cli.scan import build_request, run_scan
from anomaly_cli.stats import severity_by_drop
from tests.conftest import load_database

# --- judging rules, no database ------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "severity"),
    [("100", Severity.CRITICAL), ("90", Severity.CRITICAL), ("89.99", Severity.HIGH), ("60", Severity.HIGH),
     ("59.99", Severity.MEDIUM), ("30", Severity.MEDIUM), ("29.99", Severity.LOW), ("5", Severity.LOW),
     ("-95", Severity.CRITICAL), ("-45", Severity.MEDIUM)],  # negative: a rise, judged by its size
)
def test_severity_scale(change: str, severity: Severity) -> None:
    assert severity_by_drop(Decimal(change)) is severity


@pytest.mark.parametrize(
    ("transactions", "expected", "pct"),
    [(0, 118.5, "100"), (36, 113.5, "68.28"), (49, 114.0, "57.02"), (150, 100.0, "-50"),
     (4, 0.0, "-400")],  # nothing expected: the rise is measured against one transaction
)
def test_drop_pct(transactions: int, expected: float, pct: str) -> None:
    assert drop_pct(transactions, expected).quantize(Decimal("0.01")) == Decimal(pct)


@pytest.mark.parametrize(
    ("amount", "text"),
    [("333200.00", "₹333,200"), ("3570", "₹3,570"), ("590442.50", "₹590,442.50"), ("0.00", "₹0"),
     ("1234567.891", "₹1,234,567.89"), ("999.999", "₹1,000"), ("12.05", "₹12.05")],
)
def test_sales_amount_is_grouped_and_whole_when_it_can_be(amount: str, text: str) -> None:
    assert sales_amount(Decimal(amount), "₹") == text


def test_template_lines_follow_the_seed() -> None:
    fields = {"bucket_start": datetime(2025, 9, 15), "transactions": 17, "revenue": Decimal("333200.00")}
    assert template_line(fields, BucketSize.DAY, Direction.DROP, "₹") == \
        "September 15, 2025: 17 transactions, ₹333,200 sales - low performance"
    hourly = {**fields, "bucket_start": datetime(2025, 9, 15, 14), "revenue": Decimal("3570.50")}
    assert template_line(hourly, BucketSize.HOUR, Direction.DROP, "$") == \
        "September 15, 2025 14:00: 17 transactions, $3,570.50 sales - low performance"
    assert template_line(fields, BucketSize.DAY, Direction.SPIKE, "₹").endswith("sales - unusually high sales")


def test_fill_adds_zero_buckets_for_gaps_and_up_to_the_end() -> None:
    rows = [Measured(10, 5, 500, 0, 6), Measured(13, 2, 200, 1, 2), Measured(20, 9, 900, 0, 9)]
    filled = list(fill(rows, 16))
    assert [b.index for b in filled] == [10, 11, 12, 13, 14, 15]  # 20 is past the end: not read
    assert [b.transactions for b in filled] == [5, 0, 0, 2, 0, 0]
    assert filled[1] == Measured(11, 0, 0, 0, 0)
    assert list(fill([], 16)) == []  # no data: no buckets, not sixteen zero days


# --- a synthetic shop: weekly seasonality, noise, planted outages --------------------------

HOUR_WEIGHTS = (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.6, 1.5, 3, 4.5, 6, 8,
                9, 8.5, 7.5, 6.5, 6, 6.5, 8, 9, 8.5, 6, 3.5, 1.5)
DAY_LEVELS = (115, 120, 120, 125, 130, 60, 45)  # Monday..Sunday: weekends well below weekdays
FIRST_DAY = date(2025, 3, 3)  # a Monday


def poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def synthetic_shop(seed: int, *, weeks: int = 8, scale: float = 1.0, noise: float = 0.04,
                   hourly_outage: bool = False) -> tuple[list[tuple[datetime, str, Decimal]], set[datetime], datetime]:
    """Transactions of `weeks` whole weeks plus a last day cut at 10:00, the planted anomalous
    bucket starts, and that cutoff. Day volumes vary by weekday, by a day-to-day factor
    (lognormal, `noise`) and by Poisson chance; 94 % SUCCESS, 5 % FAILED, 1 % PENDING (unknown).
    Daily plants: a day with no sales and two partial outages losing 55-70 % of the day.
    Hourly plants: one weekday with a 3-hour outage. Plants sit on weekdays after 4 weeks."""
    rng = random.Random(seed)
    days = [FIRST_DAY + timedelta(d) for d in range(7 * weeks + 1)]
    candidates = [d for d in days[28:-1] if d.weekday() < 5]
    loss: dict[tuple[date, int], float] = {}
    if hourly_outage:
        day, first_hour = rng.choice(candidates), rng.randrange(10, 18)
        truth = {datetime.combine(day, time(h)) for h in range(first_hour, first_hour + 3)}
        loss = {(day, h): 1.0 for h in range(first_hour, first_hour + 3)}
    else:
        zero, *partial = rng.sample(candidates, 3)
        drops = {zero: 1.0, **{d: rng.uniform(0.55, 0.7) for d in partial}}
        truth = {datetime.combine(d, time()) for d in drops}
        loss = {(d, h): f for d, f in drops.items() for h in range(24)}
    cutoff = datetime.combine(days[-1], time(10))
    rows = []
    for day in days:
        level = DAY_LEVELS[day.weekday()] * scale * math.exp(rng.gauss(0, noise)) / sum(HOUR_WEIGHTS)
        for hour, weight in enumerate(HOUR_WEIGHTS):
            for _ in range(poisson(rng, level * weight * (1 - loss.get((day, hour), 0.0)))):
                when = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)))
                status = rng.choices(("SUCCESS", "FAILED", "PENDING"), (94, 5, 1))[0]
                amount = Decimal(math.exp(rng.gauss(7, 1))).quantize(Decimal("0.01"))
                if when < cutoff:
                    rows.append((when, status, amount))
    return rows, truth, cutoff


def shop_rows(transactions: Sequence[tuple[datetime | None, str | None, Decimal | None]]) -> dict[str, list]:
    """The seed tables for a list of (transaction_date, status, total_amount)."""
    return {
        "customers": [{"customer_id": 1, "customer_name": "Eva Green"}],
        "transactions": [
            {"transaction_id": i, "customer_id": 1, "transaction_date": when, "status": status, "total_amount": amount}
            for i, (when, status, amount) in enumerate(transactions, 1)
        ],
    }


def scan_json(cli, url: str, *args: str) -> dict[str, Any]:
    run = cli("scan", "sales", "--db", url, "--format", "json", "--fail-on", "never", *args)
    assert run.exit_code == 0, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    return check


def starts(check: dict[str, Any]) -> set[datetime]:
    return {datetime.fromisoformat(f["bucket_start"]) for f in check["findings"]}


def test_synthetic_daily_shops_reach_full_recall_and_precision(tmp_path, cli) -> None:
    """Several seeds through the whole check (SQLite): every planted day found, almost nothing else."""
    found_true = found_false = planted = 0
    for seed in range(8):
        rows, truth, cutoff = synthetic_shop(seed)
        url = f"sqlite:///{tmp_path / f'daily{seed}.db'}"
        load_database(url, shop_rows(rows))
        check = scan_json(cli, url, "--until", cutoff.isoformat())
        found = starts(check)
        planted += len(truth)
        found_true += len(found & truth)
        found_false += len(found - truth)
        assert datetime.combine(cutoff.date(), time()) not in found  # the incomplete last day
        assert check["summary"]["skipped"]["incomplete"] == 1
        for finding in check["findings"]:  # a planted day loses 55 % or more: medium or worse
            if datetime.fromisoformat(finding["bucket_start"]) in truth:
                assert finding["severity"] in {"critical", "high", "medium"}
    assert found_true == planted  # recall 1.0
    assert found_true / (found_true + found_false) >= 0.9


def test_synthetic_hourly_shops_find_a_three_hour_outage(tmp_path, cli) -> None:
    found_true = found_false = planted = 0
    for seed in range(4):
        rows, truth, cutoff = synthetic_shop(seed, weeks=5, scale=3, hourly_outage=True)
        url = f"sqlite:///{tmp_path / f'hourly{seed}.db'}"
        load_database(url, shop_rows(rows))
        check = scan_json(cli, url, "--bucket", "hour", "--until", cutoff.isoformat())
        found = starts(check)
        planted += len(truth)
        found_true += len(found & truth)
        found_false += len(found - truth)
        for finding in check["findings"]:
            start = datetime.fromisoformat(finding["bucket_start"])
            assert finding["key"] == f"sales:hour:{start.isoformat()}"
            assert finding["message"].startswith(f"{start:%B} {start.day}, {start.year} {start:%H}:00: ")
    assert found_true == planted
    assert found_true / (found_true + found_false) >= 0.9


# --- against real databases ---------------------------------------------------------------

DEMO_END = datetime(2025, 9, 17, 9, 30)


def demo_rows() -> tuple[dict, list]:
    data = generate(DEMO_END)
    rows = {"customers": data.customers, "products": data.products,
            "transactions": data.transactions, "transaction_items": data.transaction_items}
    return rows, [p for p in data.planted if p.check == "sales"]


@pytest.mark.engines
def test_scan_sales_finds_the_planted_days_and_nothing_else(engine_url: str, cli) -> None:
    rows, planted = demo_rows()
    load_database(engine_url, rows)
    run = cli("scan", "sales", "--db", engine_url, "--format", "json", "--until", DEMO_END.isoformat())
    assert run.exit_code == 1, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    expected = {p.detail["day"] for p in planted if p.anomaly}
    decoys = {p.detail["day"] for p in planted if not p.anomaly}  # the quiet Sunday, the cut-off last day
    found = {f["bucket_start"][:10]: f for f in check["findings"]}
    assert set(found) == expected == {"2025-09-09", "2025-09-10", "2025-09-11"}
    assert not set(found) & decoys
    zero = found["2025-09-09"]
    assert zero["severity"] == "critical" and zero["transactions"] == 0 and zero["drop_pct"] == 100
    assert zero["message"] == "September 9, 2025: 0 transactions, ₹0 sales - low performance"
    assert zero["key"] == "sales:day:2025-09-09T00:00:00"
    assert found["2025-09-10"]["severity"] == "high" and found["2025-09-11"]["severity"] == "medium"
    assert list(zero)[4:] == ["bucket_start", "bucket_end", "transactions", "revenue", "expected_transactions",
                              "expected_revenue", "drop_pct"]
    # The first three weeks are judged against fallback baselines (all days, then the last few):
    # only the first two days have nothing to compare with.
    assert check["summary"]["skipped"] == {"incomplete": 1, "short_history": 2}
    assert check["summary"]["judged"] == 39
    assert check["summary"]["baseline"] == {"seasonal": 20, "all_days": 14, "recent": 5}
    assert check["summary"]["confidence"] == "low"


@pytest.mark.engines
def test_findings_are_identical_on_every_engine(engine_url: str, cli, tmp_path) -> None:
    rows, _, cutoff = synthetic_shop(0, weeks=5, scale=3, hourly_outage=True)
    # A planted rise (the shop holds no other: a chance rise in its first measured week is not
    # reported since the dispersion allows for its sampling error): 80 more sales at 12:00.
    rows += [(datetime(2025, 4, 2, 12, k % 60, k // 60), "SUCCESS", Decimal("25.00")) for k in range(80)]
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    load_database(reference_url, shop_rows(rows))
    load_database(engine_url, shop_rows(rows))
    outputs = []
    for extra in (("--bucket", "hour"), ("--bucket", "day", "--direction", "both", "--sensitivity", "2"),
                  ("--bucket", "hour", "--since", "2025-03-31T13:30", "--direction", "both")):
        args = ("scan", "sales", "--format", "jsonl", "--fail-on", "never", "--until", cutoff.isoformat(), *extra)
        reference = cli(*args, "--db", reference_url)
        run = cli(*args, "--db", engine_url)
        assert run.exit_code == reference.exit_code == 0, run.stderr
        assert run.stdout == reference.stdout
        outputs.append(run.stdout)
    assert all(outputs)  # something was compared each time, drops and rises both
    assert "unusually high sales" in "".join(outputs) and "low performance" in "".join(outputs)


# A calm shop for the edge cases: 100 sales a weekday, 40 a weekend day, 100.00 each, from
# Monday 2025-06-02 for five weeks, then a sixth Monday cut off at 10:00 by `NOW`.
CALM_FIRST, CALM_WEEKS = date(2025, 6, 2), 5
NOW = datetime(2025, 7, 7, 10, 0)
QUIET_WEDNESDAY, FAILED_WEDNESDAY, NULL_AMOUNT_TUESDAY = date(2025, 6, 25), date(2025, 7, 2), date(2025, 7, 1)


def calm_shop() -> list[tuple[datetime | None, str | None, Decimal | None]]:
    rows: list[tuple[datetime | None, str | None, Decimal | None]] = []
    for offset in range(7 * CALM_WEEKS + 1):
        day = CALM_FIRST + timedelta(offset)
        count = 40 if day.weekday() >= 5 or day == QUIET_WEDNESDAY else 100
        status = "FAILED" if day == FAILED_WEDNESDAY else "SUCCESS"  # payments down all day
        for i in range(count):
            rows.append((datetime.combine(day, time(8)) + timedelta(minutes=6 * i), status, Decimal("100.00")))
        for i, odd in enumerate(("PENDING", "REFUNDED", None)):  # statuses that are not sales
            rows.append((datetime.combine(day, time(20, i)), odd, Decimal("100.00")))
    rows += [(datetime.combine(NULL_AMOUNT_TUESDAY, time(21, i)), "SUCCESS", None) for i in range(3)]
    rows += [(None, "SUCCESS", Decimal("5.00"))] * 4 + [(None, "FAILED", Decimal("5.00"))]
    rows += [(datetime(2030, 1, 1, 12), "SUCCESS", Decimal("1.00"))] * 5  # future-dated
    return rows


def scan_at(url: str, now: datetime, since: datetime | None = None, until: datetime | None = None,
            **params: str) -> tuple[list, dict[str, Any]]:
    """Run the check in-process with a chosen `now` (the CLI always uses the clock)."""
    cls = registry()["sales"]
    settings = load_settings(flags={"db.url": url, **{f"sales.{k}": v for k, v in params.items()}},
                             check_params={"sales": cls.params})
    report = run_scan(build_request(settings, [cls.name], Window(since, until), now=now, keep_findings=True))
    (result,) = report.results
    return list(report.findings or ()), result.summary()


@pytest.mark.engines
def test_edge_cases_are_not_anomalies(engine_url: str, cli) -> None:
    load_database(engine_url, shop_rows(calm_shop()))

    findings, summary = scan_at(engine_url, NOW)
    assert {f.fields["bucket_start"].date(): f.severity for f in findings} == {
        QUIET_WEDNESDAY: Severity.HIGH, FAILED_WEDNESDAY: Severity.CRITICAL}
    quiet, failed = findings
    assert quiet.message == "June 25, 2025: 40 transactions, ₹4,000 sales - low performance"
    assert quiet.fields["expected_transactions"] == Decimal("100.0")
    assert quiet.fields["expected_revenue"] == Decimal("10000.00")
    assert quiet.fields["drop_pct"] == Decimal("60.00")
    assert failed.fields["transactions"] == 0 and failed.fields["revenue"] == Decimal("0.00")
    # Weekends are normal, unknown and NULL statuses are not sales, today (cut at 10:00) is not
    # judged, the 2030 rows make no bucket, NULL dates and amounts are counted.
    assert summary["judged"] == 33
    assert summary["skipped"] == {"short_history": 2, "incomplete": 1, "no_date": 4}
    assert summary["without_amount"] == 3

    # The same through the CLI, whose clock is later: --until plays the cron job's "now".
    check = scan_json(cli, engine_url, "--until", NOW.isoformat())
    assert [f["key"] for f in check["findings"]] == [f.key for f in findings]

    # --since: the weeks before it are still read for the baseline; nothing before it is reported.
    findings, summary = scan_at(engine_url, NOW, since=datetime(2025, 7, 2, 9, 15))
    assert [f.fields["bucket_start"] for f in findings] == [datetime(2025, 7, 2)]
    assert summary["judged"] == 5

    # A window with no rows at all, long after the data: nothing reported, and the summary says why.
    findings, summary = scan_at(engine_url, datetime(2025, 9, 1), since=datetime(2025, 8, 4),
                                until=datetime(2025, 8, 11))
    assert findings == []
    assert summary["reason"] == "no transactions from 2025-08-04 00:00 before 2025-08-11 00:00"

    # A window shorter than one bucket.
    findings, summary = scan_at(engine_url, NOW, since=datetime(2025, 7, 2, 10), until=datetime(2025, 7, 2, 12))
    assert findings == []
    assert summary["skipped"] == {"incomplete": 1, "no_date": 4}
    assert summary["reason"] == "the window holds no complete day"
    findings, summary = scan_at(engine_url, NOW, since=datetime(2025, 7, 2, 10), until=datetime(2025, 7, 2, 12),
                                bucket="hour")
    # 10:00 and 11:00 of the Wednesday whose payments all failed: 0 sales against 10 each hour,
    # under 10 % of a meaningful expectation, so both are drops.
    assert [f.fields["bucket_start"].hour for f in findings] == [10, 11]
    assert summary["judged"] == 2 and summary["status"] == "findings"


@pytest.mark.engines
def test_an_empty_table_is_no_anomaly(engine_url: str, cli) -> None:
    load_database(engine_url, shop_rows([]))
    run = cli("scan", "sales", "--db", engine_url, "--format", "json")
    assert run.exit_code == 0, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    assert check["findings"] == []
    assert check["summary"]["status"] == "not_evaluated"
    assert check["summary"]["reason"].startswith("no transactions before ")


def test_impossible_history_settings_are_refused(sqlite_url: str, cli) -> None:
    load_database(sqlite_url, shop_rows([]))
    run = cli("scan", "sales", "--db", sqlite_url, "--history", "2", "--min-history", "3")
    assert run.exit_code == 2
    assert "--min-history 3 is more than --history 2" in run.stderr
    assert cli("scan", "sales", "--db", sqlite_url, "--bucket", "week").exit_code == 2
    assert cli("scan", "sales", "--db", sqlite_url, "--sensitivity", "0").exit_code == 2


def test_help_documents_the_options(cli) -> None:
    run = cli("scan", "sales", "--help")
    assert run.exit_code == 0
    for flag in ("--bucket", "--history", "--min-history", "--sensitivity", "--direction"):
        assert flag in run.stdout


def test_a_level_shift_and_an_hour_flagged_where_it_starts_have_keys_of_their_own() -> None:
    """One finding per key is kept (pipeline.unique_keys): a shift whose first hour was itself
    reported (its first day ran low) was dropped as that hour's repeat (tests/shops_eval.py,
    nightowl shift seed 42: no hour-level shift finding)."""
    from anomaly_cli.checks.sales.wording import make_finding
    from anomaly_cli.volume import Basis, Flag

    start = 483768  # 2025-03-10 00:00 in hours since the epoch
    hour = Flag(Direction.DROP, start, start + 1, 3, 0, 18.5, 0, Basis.SEASONAL)
    shift = Flag(Direction.DROP, start, start + 168, 3078, 0, 5804.3, 0, Basis.SEASONAL, shift=True)
    keys = {make_finding(f, BucketSize.HOUR, "₹").key for f in (hour, shift)}
    assert keys == {"sales:hour:2025-03-10T00:00:00", "sales:hour:shift:2025-03-10T00:00:00"}
