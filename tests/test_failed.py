"""The failed check: the binomial test and judging rules without a database, then scans on three engines."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from anomaly_cli.checks import CheckContext
from anomaly_cli.buckets import day_span as span
from anomaly_cli.buckets import from_epoch, to_epoch
from anomaly_cli.checks.failed.incidents import Incident, Tally, detect
from anomaly_cli.checks.failed.rules import BucketCount, Rules, scope_for, severity_for
from anomaly_cli.checks.failed.sql import measure_buckets
from anomaly_cli.checks.failed.wording import FailedTransaction, describe, list_finding
from anomaly_cli.stats import binomial_upper_tail as upper_tail
from anomaly_cli.demo_data import HOUR_WEIGHTS, generate
from anomaly_cli.model import Severity, Window
from tests.conftest import load_database

H = 3600
DAY0 = datetime(2025, 9, 1)  # the day under test in the synthetic bucket streams
T0 = to_epoch(DAY0)


# --- the binomial tail --------------------------------------------------------------------

def exact_tail(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(max(k, 0), n + 1))


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [(0, 10, 0.1), (1, 1, 0.03), (1, 2, 0.03), (5, 9, 0.03), (14, 25, 0.032), (3, 10, 0.5), (7, 10, 0.5),
     (2, 40, 0.1), (30, 200, 0.1), (10, 10, 0.9), (1, 300, 0.001)],
)
def test_upper_tail_matches_the_exact_sum(k: int, n: int, p: float) -> None:
    assert upper_tail(k, n, p) == pytest.approx(exact_tail(k, n, p), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("k", "n", "p", "expected"),
    [(11, 10, 0.5, 0.0), (1, 5, 0.0, 0.0), (3, 5, 1.0, 1.0), (-1, 5, 0.2, 1.0)],
)
def test_upper_tail_edges(k: int, n: int, p: float, expected: float) -> None:
    assert upper_tail(k, n, p) == expected


def test_upper_tail_large_volume_does_not_overflow() -> None:
    assert upper_tail(2000, 100_000, 0.02) == pytest.approx(0.5, abs=0.01)  # k is the mean
    assert upper_tail(2300, 100_000, 0.02) < 1e-10
    assert 0 < upper_tail(2150, 100_000, 0.02) < 1e-3


def test_sensitivity_is_a_one_sided_normal_tail() -> None:
    assert Rules(sensitivity=3).alpha == pytest.approx(0.0013499, rel=1e-4)
    assert Rules(sensitivity=2).alpha == pytest.approx(0.0227501, rel=1e-4)


# --- judging a stream of buckets ------------------------------------------------------------

def history(days: int = 28, total: int = 40, failed: int = 1, *, end: int = T0) -> list[BucketCount]:
    """Identical hourly buckets for `days` days before `end` (a 2.5 % failure rate by default)."""
    return [BucketCount(end - h * H, total, failed) for h in range(days * 24, 0, -1)]


def day(overrides: dict[int, tuple[int, int] | None], start: int = T0) -> list[BucketCount]:
    """24 hourly buckets of 20 successful transactions; overrides give (total, failed) or None (no rows)."""
    out = []
    for hour in range(24):
        value = overrides.get(hour, (20, 0))
        if value is not None:
            out.append(BucketCount(start + hour * H, *value))
    return out


def spans(buckets: Iterable[BucketCount], rules: Rules = Rules(), judge_from: int | None = T0,
          tally: Tally | None = None) -> list[tuple[int, int]]:
    """The incidents as (first hour, end hour) of DAY0."""
    found = detect(buckets, size=H, history_days=28, judge_from=judge_from, rules=rules, tally=tally)
    return [((i.start - T0) // H, (i.end(H) - T0) // H) for i in found]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({9: (20, 1), 13: (20, 2), 17: (22, 2), 21: (15, 1)}, []),  # normal noise
        ({3: (2, 1)}, []),  # the low-volume night: 50 % of almost nothing
        ({3: (1, 1), 4: (1, 1)}, []),  # even twice
        ({14: (20, 14), 15: (18, 12)}, [(14, 16)]),  # a two-hour outage is one incident
        ({14: (20, 14)}, [(14, 15)]),
        ({14: (20, 4)}, []),  # below --min-failures
        ({3: (6, 6)}, []),  # below --min-volume
        ({14: (7, 4), 15: (8, 4)}, [(14, 16)]),  # each hour too thin alone, together an incident
        ({14: (20, 14), 15: (3, 0), 16: (20, 14)}, [(14, 17)]),  # one quiet hour is bridged
        ({14: (20, 14), 15: None, 16: (20, 14)}, [(14, 17)]),  # so is one hour with no rows
        ({14: (20, 14), 15: (20, 0), 16: (20, 14)}, [(14, 15), (16, 17)]),  # a full clean hour is not
        ({14: (20, 14), 15: (3, 0), 16: (3, 0), 17: (20, 14)}, [(14, 15), (17, 18)]),  # nor are two thin ones
        ({14: (20, 14), 15: None, 16: None, 17: (20, 14)}, [(14, 15), (17, 18)]),
        ({14: (20, 14), 15: (20, 0)}, [(14, 15)]),  # a held quiet hour is not part of the incident
        ({0: (20, 10), 23: (20, 10)}, [(0, 1), (23, 24)]),  # first and last bucket of the stream
        ({12: (2000, 99)}, []),  # significant (z > 5) but under 2 x the 2.5 % baseline
        ({12: (2000, 101)}, [(12, 13)]),  # just over 2 x the baseline
    ],
)
def test_incidents(overrides: dict[int, tuple[int, int] | None], expected: list[tuple[int, int]]) -> None:
    assert spans(history() + day(overrides)) == expected


@pytest.mark.parametrize(
    ("rules", "overrides", "expected"),
    [
        (Rules(min_volume=6), {3: (6, 6)}, [(3, 4)]),
        (Rules(min_failures=4), {14: (20, 4)}, [(14, 15)]),
        (Rules(min_ratio=1.5), {12: (2000, 80)}, [(12, 13)]),
        (Rules(sensitivity=3), {14: (20, 5)}, [(14, 15)]),  # P = 0.0002
        (Rules(sensitivity=4), {14: (20, 5)}, []),  # needs P < 0.00003
    ],
)
def test_thresholds_are_the_options(rules: Rules, overrides: dict, expected: list[tuple[int, int]]) -> None:
    assert spans(history() + day(overrides), rules) == expected


def test_expected_rate_is_the_baseline_without_the_incident() -> None:
    (incident,) = detect(history() + day({0: (20, 14), 1: (20, 15), 2: (20, 16)}), size=H,
                         history_days=28, judge_from=T0, rules=Rules())
    # n hours of 1 failure in 40, smoothed by one failure and one success; one hour leaves the
    # 28 days each hour and the incident's own hours never enter
    p0 = [(n + 1) / (40 * n + 2) for n in (672, 671, 670)]
    assert incident.expected_rate == pytest.approx(sum(p0) / 3)
    assert (incident.total, incident.failed) == (60, 45)


def test_anomalies_in_the_history_stay_out_of_the_baseline_and_unreported() -> None:
    outage = {b.start: BucketCount(b.start, 40, 30) for b in history()[300:310]}
    stream = [outage.get(b.start, b) for b in history()] + day({0: (40, 10)})
    (incident,) = detect(stream, size=H, history_days=28, judge_from=T0, rules=Rules())
    assert incident.start == T0  # the outage before --since is not reported
    clean = [b for b in stream if b.start < T0 and b.start not in outage]
    p0 = (sum(b.failed for b in clean) + 1) / (sum(b.total for b in clean) + 2)
    assert incident.expected_rate == pytest.approx(p0)  # nor does it lift the baseline


def test_without_history_nothing_is_judged() -> None:
    tally = Tally()
    assert spans(day({2: (20, 20), 3: (20, 20)}), judge_from=None, tally=tally) == []
    # 20 x 5 transactions make the 100 the baseline needs: from 05:00 on buckets are judged
    assert (tally.no_baseline, tally.judged) == (5, 19)


def test_an_incident_does_not_start_before_since() -> None:
    stream = history() + day({13: (20, 14), 14: (20, 14), 15: (20, 14)})
    assert spans(stream, judge_from=T0 + 14 * H) == [(14, 16)]
    (incident,) = detect(stream, size=H, history_days=28, judge_from=T0 + 14 * H, rules=Rules())
    assert incident.failed == 28


def test_unknown_statuses_count_in_total_and_in_the_notes() -> None:
    tally = Tally()
    stream = history() + [BucketCount(T0 + 14 * H, 20, 14, unknown=3), BucketCount(T0 + 15 * H, 20, 0, unknown=2)]
    assert spans(stream, tally=tally) == [(14, 15)]
    assert tally.unknown_status == 5
    assert tally.judged == 2


# --- wording, scope and severity ---------------------------------------------------------

@pytest.mark.parametrize(
    ("failed", "distinct", "top", "scope"),
    [(17, 10, 3, "broad"), (17, 10, 9, "concentrated"), (17, 10, 8, "broad"), (14, 1, 14, "concentrated"),
     (10, 2, 5, "concentrated"), (10, 3, 4, "broad"), (6, 3, 3, "concentrated")],
)
def test_scope(failed: int, distinct: int, top: int, scope: str) -> None:
    assert scope_for(failed, distinct, top) == scope


@pytest.mark.parametrize(
    ("rate", "scope", "severity"),
    [("68.00", "broad", Severity.CRITICAL), ("50.00", "broad", Severity.CRITICAL),
     ("49.99", "broad", Severity.HIGH), ("25.00", "broad", Severity.HIGH), ("24.99", "broad", Severity.MEDIUM),
     ("6.00", "broad", Severity.MEDIUM), ("56.00", "concentrated", Severity.HIGH),
     ("30.00", "concentrated", Severity.MEDIUM), ("10.00", "concentrated", Severity.LOW)],
)
def test_severity(rate: str, scope: str, severity: Severity) -> None:
    assert severity_for(Decimal(rate), scope) is severity


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        (datetime(2025, 9, 1, 14), datetime(2025, 9, 1, 16), "on September 1, 2025 from 14:00 to 16:00"),
        (datetime(2025, 9, 1, 22), datetime(2025, 9, 2), "on September 1, 2025 from 22:00 to 24:00"),
        (datetime(2025, 9, 1), datetime(2025, 9, 2), "on September 1, 2025"),
        (datetime(2025, 9, 1, 23), datetime(2025, 9, 2, 1), "from September 1, 2025 23:00 to September 2, 2025 01:00"),
    ],
)
def test_span(start: datetime, end: datetime, text: str) -> None:
    assert span(start, end) == text


def incident(total: int, failed: int, p0: float = 0.031) -> Incident:
    out = Incident()
    out.add(BucketCount(T0 + 14 * H, total - total // 2, failed - failed // 2), p0)
    out.add(BucketCount(T0 + 15 * H, total // 2, failed // 2), p0)
    return out


def test_broad_finding() -> None:
    failures = Counter({c: 2 for c in range(1, 8)} | {8: 1, 9: 1, 10: 1})
    finding = describe(incident(25, 17), H, failures, {})
    assert finding.key == "failed:2025-09-01T14:00:00"
    assert finding.severity is Severity.CRITICAL
    assert list(finding.fields) == ["bucket_start", "bucket_end", "failed", "total", "failure_rate",
                                    "expected_rate", "distinct_customers", "scope"]
    assert finding.fields["failure_rate"] == Decimal("68.00")
    assert finding.fields["expected_rate"] == Decimal("3.10")
    assert finding.fields["bucket_end"] == datetime(2025, 9, 1, 16)
    assert finding.message == (
        "Failed payments spiked on September 1, 2025 from 14:00 to 16:00: 17 of 25 transactions failed "
        "(68.0% against 3.1% expected) across 10 customers - likely a gateway or checkout problem.")


def test_concentrated_finding_names_the_top_customer() -> None:
    finding = describe(incident(25, 14), H, Counter({5: 13, 7: 1}), {5: "Eva Green", 7: "Grace Lee"})
    assert (finding.fields["scope"], finding.fields["distinct_customers"]) == ("concentrated", 2)
    assert finding.severity is Severity.HIGH
    assert finding.message.endswith("14 of 25 transactions failed (56.0% against 3.1% expected), "
                                    "13 of them by customer Eva Green (ID: 5) - customer-side errors.")


def test_list_finding_is_the_seed_line() -> None:
    txn = FailedTransaction(77, datetime(2025, 9, 16, 17, 0, 49), 9, "Ian Clark", ("Monitor", "Mouse"))
    finding = list_finding(txn)
    assert finding.message == ("Transaction Failed: 2025-09-16 17:00:49 - Customer: Ian Clark (ID: 9) "
                               "- Product: Monitor, Mouse")
    assert finding.key == "failed:txn:77"
    assert finding.severity is Severity.LOW
    assert finding.fields["products"] == "Monitor, Mouse"
    assert finding.fields["bucket_start"] == finding.fields["bucket_end"] == txn.transaction_date


# --- against real databases ---------------------------------------------------------------

DEMO_END = datetime(2025, 9, 17, 9, 30)


def demo_rows(end: datetime = DEMO_END, seed: int = 7) -> tuple[dict, list]:
    data = generate(end, seed=seed)
    rows = {"customers": data.customers, "products": data.products,
            "transactions": data.transactions, "transaction_items": data.transaction_items}
    return rows, [p for p in data.planted if p.check in ("failed", "spam")]


def scan(cli, url: str, *args: str) -> dict[str, Any]:
    run = cli("scan", "failed", "--db", url, "--format", "json", "--fail-on", "never", *args)
    assert run.exit_code == 0, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    return check


def overlapping(findings: list[dict], start: str, end: str) -> list[dict]:
    return [f for f in findings if f["bucket_start"] < end and f["bucket_end"] > start]


@pytest.mark.engines
def test_demo_incidents(engine_url: str, cli) -> None:
    rows, planted = demo_rows()
    load_database(engine_url, rows)
    check = scan(cli, engine_url)
    findings = check["findings"]
    truth = {p.kind: p.detail for p in planted}

    outage = truth["gateway-outage"]
    (found,) = overlapping(findings, outage["start"], outage["end"])
    assert (found["bucket_start"], found["bucket_end"]) == (outage["start"], outage["end"])
    assert (found["scope"], found["failed"], found["total"]) == ("broad", outage["failed"], outage["count"])
    assert found["distinct_customers"] == outage["customers"]
    assert found["severity"] == "critical"

    failing = truth["customer-failing"]
    (found,) = overlapping(findings, failing["start"], failing["end"])
    assert (found["bucket_start"], found["bucket_end"]) == (failing["start"], failing["end"])
    assert found["scope"] == "concentrated" and found["failed"] >= 14
    assert "by customer Eva Green (ID: 5) - customer-side errors" in found["message"]

    assert overlapping(findings, truth["low-volume-night"]["start"], truth["low-volume-night"]["end"]) == []

    # The card-testing burst (10 failed of 12 in 90 s) IS a concentrated failure spike.
    card = truth["card-testing"]
    (found,) = overlapping(findings, card["start"], card["end"])
    assert (found["bucket_start"], found["scope"]) == ("2025-09-04T22:00:00", "concentrated")
    assert "by customer Ian Clark (ID: 9)" in found["message"]

    assert len(findings) == 3  # nothing else: precision 1.0
    assert check["summary"]["judged"] > 600
    for finding in findings:
        assert finding["key"] == f"failed:{finding['bucket_start']}"


def small_shop() -> dict[str, list[dict[str, Any]]]:
    """5 quiet days, then an outage 14:00-16:00 with unknown statuses, a multi-item failure, NULL dates."""
    customers = [{"customer_id": c, "customer_name": f"Customer {c}"} for c in range(1, 13)]
    names = {"p1": "Mouse", "p2": "Keyboard", "p3": "Adapter"}
    products = [{"product_id": pid, "product_name": name, "product_price": Decimal("100.00")}
                for pid, name in names.items()]
    txns: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []

    def add(when: datetime | None, customer: int, status: str | None, products: tuple[str, ...] = ("p1",)) -> None:
        txn_id = len(txns) + 1
        txns.append({"transaction_id": txn_id, "customer_id": customer, "transaction_date": when,
                     "status": status, "total_amount": Decimal("100.00")})
        for pid in products:
            items.append({"item_id": len(items) + 1, "transaction_id": txn_id, "product_id": pid,
                          "product_name": names[pid], "product_price": Decimal("100.00"), "quantity": 1})

    start = DAY0 - timedelta(days=5)
    for hour in range(5 * 24 + 14):  # 5 transactions an hour, one failure every tenth hour
        for i in range(5):
            add(start + timedelta(hours=hour, minutes=10 * i + 1), 1 + (hour + i) % 12,
                "FAILED" if i == 0 and hour % 10 == 0 else "SUCCESS")
    for hour in (14, 15):  # the outage: 9 of 12 fail, spread over all customers; 1 pending in each hour
        for i in range(12):
            add(DAY0 + timedelta(hours=hour, minutes=5 * i), 1 + i, "FAILED" if i % 4 else "SUCCESS")
        add(DAY0 + timedelta(hours=hour, minutes=59, seconds=59), 3, "PENDING")
    add(DAY0 + timedelta(hours=15, minutes=30, seconds=30), 4, "FAILED", ("p2", "p3", "p1"))  # items out of name order
    add(None, 1, "FAILED")
    add(None, 2, "SUCCESS")
    add(DAY0 + timedelta(hours=16, minutes=1), 5, None)  # a NULL status: unknown, not a failure
    for hour in range(16, 24):
        add(DAY0 + timedelta(hours=hour, minutes=20), 6, "SUCCESS")
    return {"customers": customers, "products": products, "transactions": txns, "transaction_items": items}


@pytest.fixture
def shop_url(engine_url: str) -> str:
    load_database(engine_url, small_shop())
    return engine_url


@pytest.mark.engines
def test_outage_in_a_small_shop(shop_url: str, cli) -> None:
    check = scan(cli, shop_url, "--since", "2025-09-01", "--until", "2025-09-02")
    (finding,) = check["findings"]
    assert (finding["bucket_start"], finding["bucket_end"]) == ("2025-09-01T14:00:00", "2025-09-01T16:00:00")
    assert (finding["failed"], finding["total"], finding["scope"]) == (19, 27, "broad")
    assert finding["distinct_customers"] == 9
    summary = check["summary"]
    assert summary["skipped"] == {"no_date": 2}
    assert summary["unknown_status"] == 3  # two PENDING and one NULL status, in total but not failed
    assert summary["judged"] == 24


@pytest.mark.engines
def test_list_reports_every_failed_transaction_in_the_window(shop_url: str, cli) -> None:
    check = scan(cli, shop_url, "--since", "2025-09-01T15:00", "--until", "2025-09-01T16:00", "--list")
    incident, *listed = check["findings"]
    assert incident["bucket_start"] == "2025-09-01T15:00:00"
    assert [f["severity"] for f in listed] == ["low"] * 10
    times = [f["bucket_start"] for f in listed]
    assert times == sorted(times) and all(f["bucket_end"] == f["bucket_start"] for f in listed)
    multi = next(f for f in listed if f["products"] != "Mouse")
    assert multi["message"] == ("Transaction Failed: 2025-09-01 15:30:30 - Customer: Customer 4 (ID: 4) "
                                "- Product: Keyboard, Adapter, Mouse")
    assert multi["key"] == f"failed:txn:{multi['transaction_id']}"
    assert (multi["customer_id"], multi["customer_name"]) == (4, "Customer 4")


@pytest.mark.engines
def test_incomplete_last_bucket_is_not_judged(shop_url: str, cli) -> None:
    check = scan(cli, shop_url, "--since", "2025-09-01T14:00", "--until", "2025-09-01T15:59")
    (finding,) = check["findings"]
    assert finding["bucket_end"] == "2025-09-01T15:00:00"


@pytest.mark.engines
@pytest.mark.parametrize(
    ("since", "until"),
    [("2030-01-01", "2030-02-01"),  # no rows in the window
     ("2025-09-01T14:10", "2025-09-01T14:40"),  # shorter than one bucket
     ("2025-09-01T14:10", "2025-09-01T15:10")],  # longer, but holding no whole bucket
)
def test_windows_without_a_whole_bucket(shop_url: str, cli, since: str, until: str) -> None:
    check = scan(cli, shop_url, "--since", since, "--until", until)
    assert check["findings"] == []
    assert check["summary"]["judged"] == 0 and check["summary"]["status"] == "not_evaluated"


@pytest.mark.engines
def test_bucket_edges_are_exact_on_every_engine(engine_url: str) -> None:
    from anomaly_cli import db
    from anomaly_cli.config import default_schema

    rows = small_shop()
    rows["transactions"] += [
        {"transaction_id": 9001, "customer_id": 1, "transaction_date": datetime(2025, 9, 2, 23, 59, 59),
         "status": "FAILED", "total_amount": Decimal("1.00")},
        {"transaction_id": 9002, "customer_id": 1, "transaction_date": datetime(2025, 9, 3, 0, 0, 0),
         "status": "SUCCESS", "total_amount": Decimal("1.00")},
    ]
    load_database(engine_url, rows)
    with db.connect(db.parse_url(engine_url)) as conn:
        ctx = CheckContext(conn=conn, schema=default_schema(), window=Window(), params={}, currency="₹",
                           now=datetime(2030, 1, 1))
        days = list(measure_buckets(ctx, 86400, datetime(2025, 9, 2), datetime(2025, 9, 4)))
        quarter = list(measure_buckets(ctx, 900, DAY0 + timedelta(hours=15), DAY0 + timedelta(hours=16)))
    assert days == [BucketCount(to_epoch(datetime(2025, 9, 2)), 1, 1),  # 23:59:59 stays in its own day
                    BucketCount(to_epoch(datetime(2025, 9, 3)), 1, 0)]
    assert [(from_epoch(b.start).minute, b.total, b.failed, b.unknown) for b in quarter] == [
        (0, 3, 2, 0), (15, 3, 2, 0), (30, 4, 3, 0), (45, 4, 3, 1)]


@pytest.mark.engines
def test_findings_are_identical_on_every_engine(engine_url: str, cli, tmp_path) -> None:
    rows, _ = demo_rows()
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    load_database(reference_url, rows)
    load_database(engine_url, rows)
    for extra in (("--list", "--since", "2025-09-01"), ("--bucket", "15min"), ("--bucket", "day")):
        args = ("scan", "failed", "--format", "jsonl", "--fail-on", "never", *extra)
        reference = cli(*args, "--db", reference_url)
        run = cli(*args, "--db", engine_url)
        assert run.exit_code == reference.exit_code == 0, run.stderr
        assert run.stdout == reference.stdout
        assert run.stdout.count("\n") >= 1


def test_history_shorter_than_two_buckets_is_refused(cli, sqlite_url: str) -> None:
    load_database(sqlite_url, small_shop())
    run = cli("scan", "failed", "--db", sqlite_url, "--bucket", "day", "--history", "1")
    assert run.exit_code == 2
    assert "--history" in run.stderr


# --- recall and precision on randomized shops ------------------------------------------------

def random_shop(seed: int, *, fail_rate: float = 0.03) -> tuple[dict, list[tuple[str, str, str]], str]:
    """Five weeks with weekly seasonality and plain binomial failures; a two-hour broad outage, one
    customer failing 14 times in an hour and a 1-of-2 night hour planted in week four.
    Returns the rows, the incidents to find (start, end, scope) and the night hour's start."""
    rng = random.Random(seed)
    start = datetime(2025, 3, 3) + timedelta(days=7 * rng.randrange(20))  # a Monday
    daily = (140, 130, 135, 130, 150, 90, 60)  # weekly seasonality
    outage_day = start + timedelta(days=21 + rng.randrange(5))
    failing_day = outage_day + timedelta(days=1)
    night_day = outage_day + timedelta(days=2)
    outage_hour, failing_hour = rng.choice((11, 14, 19)), rng.choice((9, 10, 16))
    txns: list[tuple[datetime, int, str]] = []
    for d in range(35):
        when = start + timedelta(days=d)
        for _ in range(round(daily[when.weekday()] * rng.uniform(0.9, 1.1))):
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            if when == night_day and hour == 3:
                continue
            moment = when + timedelta(hours=hour, seconds=rng.randrange(3600))
            in_outage = when == outage_day and outage_hour <= hour < outage_hour + 2
            failed = rng.random() < (0.7 if in_outage else fail_rate)
            txns.append((moment, rng.randint(1, 40), "FAILED" if failed else "SUCCESS"))
    first = failing_day + timedelta(hours=failing_hour, seconds=rng.randrange(60))
    txns += [(first + timedelta(seconds=250 * i), 7, "FAILED") for i in range(14)]
    txns += [(night_day + timedelta(hours=3, minutes=12), 3, "FAILED"),
             (night_day + timedelta(hours=3, minutes=41), 4, "SUCCESS")]
    txns.sort()
    rows = {
        "customers": [{"customer_id": c, "customer_name": f"Customer {c}"} for c in range(1, 41)],
        "products": [{"product_id": "p1", "product_name": "Mouse", "product_price": Decimal("500.00")}],
        "transactions": [{"transaction_id": i, "customer_id": c, "transaction_date": t, "status": s,
                          "total_amount": Decimal("500.00")} for i, (t, c, s) in enumerate(txns, 1)],
        "transaction_items": [{"item_id": i, "transaction_id": i, "product_id": "p1", "product_name": "Mouse",
                               "product_price": Decimal("500.00"), "quantity": 1} for i in range(1, len(txns) + 1)],
    }
    iso = datetime.isoformat
    truth = [(iso(outage_day + timedelta(hours=outage_hour)), iso(outage_day + timedelta(hours=outage_hour + 2)),
              "broad"),
             (iso(failing_day + timedelta(hours=failing_hour)), iso(failing_day + timedelta(hours=failing_hour + 1)),
              "concentrated")]
    return rows, truth, iso(night_day + timedelta(hours=3))


def score(findings: list[dict], truth: list[tuple[str, str, str]], *, also_true: Iterable[str] = ()) -> tuple[int, int]:
    """(true positives among findings, planted incidents found once with the right scope)."""
    found = sum(1 for start, end, scope in truth
                if [f["scope"] for f in overlapping(findings, start, end)] == [scope])
    true_positives = sum(1 for f in findings
                         if any(overlapping([f], s, e) for s, e, _ in truth)
                         or any(f["bucket_start"] <= t < f["bucket_end"] for t in also_true))
    return true_positives, found


def test_recall_and_precision_on_randomized_shops(cli, tmp_path) -> None:
    true_positives = findings = 0
    for seed in range(6):
        rows, truth, night = random_shop(seed)
        url = f"sqlite:///{tmp_path / f'shop{seed}.db'}"
        load_database(url, rows)
        check = scan(cli, url)
        hits, found = score(check["findings"], truth)
        assert found == len(truth), (seed, check["findings"])  # recall 1.0 on every shop
        assert overlapping(check["findings"], night, night[:11] + "04:00:00") == []
        true_positives += hits
        findings += len(check["findings"])
    assert true_positives / findings >= 0.9


@pytest.mark.parametrize("seed", [1, 2, 3, 30])
def test_recall_and_precision_on_other_demo_seeds(cli, tmp_path, seed: int) -> None:
    end = (datetime(2025, 3, 5, 14), datetime(2024, 12, 31, 23, 59), datetime(2026, 1, 10, 8))[seed % 3]
    rows, planted = demo_rows(end, seed)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    load_database(url, rows)
    findings = scan(cli, url)["findings"]
    truth = [(p.detail["start"], p.detail["end"], p.detail["scope"])
             for p in planted if p.check == "failed" and p.anomaly]
    card = next(p.detail["start"] for p in planted if p.kind == "card-testing")
    hits, found = score(findings, truth, also_true=[card])
    assert found == len(truth) == 2
    assert hits == len(findings) == 3
    for start, end, _ in truth:  # found as one incident with the planted boundaries
        (finding,) = overlapping(findings, start, end)
        assert (finding["bucket_start"], finding["bucket_end"]) == (start, end)
