"""The spam check: judging rules without a database, then bursts found on three engines."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from anomaly_cli.checks.spam import Burst, BurstRow, SpamCheck, bursts, judge, severity_for
from anomaly_cli.demo_data import generate
from anomaly_cli.model import Severity
from tests.conftest import load_database

SMALL = Decimal("100.00")
T0 = datetime(2025, 9, 16, 16, 30, 0)


# --- judging, without a database -----------------------------------------------------------

@pytest.mark.parametrize(
    ("transactions", "failed", "small", "min_count", "severity"),
    [
        (6, 0, 0, 6, Severity.MEDIUM),  # just a burst
        (11, 5, 5, 6, Severity.MEDIUM),  # under half failed, under half small
        (12, 0, 0, 6, Severity.HIGH),  # twice min_count
        (6, 3, 0, 6, Severity.HIGH),  # exactly half failed: one sign
        (6, 0, 3, 6, Severity.HIGH),  # exactly half small: one sign
        (6, 3, 3, 6, Severity.CRITICAL),  # both signs: card testing
        (12, 10, 12, 6, Severity.CRITICAL),  # the demo's card tester
        (30, 0, 29, 6, Severity.HIGH),  # big and small but never failing: not card testing
        (30, 29, 0, 6, Severity.HIGH),  # failing with large amounts: not card testing
        (4, 0, 0, 2, Severity.HIGH),  # 2 x min_count with a small min_count
        (3, 0, 0, 2, Severity.MEDIUM),
    ],
)
def test_severity_rule(transactions: int, failed: int, small: int, min_count: int, severity: Severity) -> None:
    assert severity_for(transactions, failed, small, min_count) is severity


def row(customer: int, second: int, *, starts: bool = False, status: str | None = "SUCCESS",
        cents: int | None = 50000, name: str | None = "Quentin Fox", tid: int = 0) -> BurstRow:
    return BurstRow(customer, name, tid or second, T0 + timedelta(seconds=second), status, cents, starts)


def test_rows_fold_into_bursts_where_the_database_says_one_starts() -> None:
    rows = [
        row(17, 0, starts=True), row(17, 5), row(17, 10, status="FAILED"), row(17, 20, cents=None),
        row(17, 30), row(17, 40, status="declined"),  # an unknown status counts, but not as failed
        row(17, 45, starts=True, cents=999), row(17, 46), row(17, 47), row(17, 48), row(17, 49), row(17, 50),
        row(18, 50), row(18, 51), row(18, 52), row(18, 53), row(18, 54), row(18, 55),  # new customer
    ]
    first, second, third = bursts(rows, "FAILED", SMALL)
    assert (first.customer_id, first.start, first.end) == (17, T0, T0 + timedelta(seconds=40))
    assert (first.transactions, first.failed, first.small) == (6, 1, 1)  # NULL amount: 0, so small
    assert first.total_cents == 5 * 50000
    assert (second.transactions, second.small, second.total_cents) == (6, 1, 999 + 5 * 50000)
    assert (third.customer_id, third.transactions, third.start) == (18, 6, T0 + timedelta(seconds=50))


def test_small_is_strictly_below_the_small_amount() -> None:
    rows = [row(9, i, cents=10000 - (i % 2), starts=i == 0) for i in range(6)]  # 100.00 and 99.99
    (burst,) = bursts(rows, "FAILED", SMALL)
    assert burst.small == 3


def test_finding_fields_key_and_seed_sentence() -> None:
    burst = Burst(17, "Quentin Fox", datetime(2025, 9, 16, 16, 31, 5), datetime(2025, 9, 16, 16, 31, 50),
                  6, 1, 0, 123456)
    finding = judge(burst, 6)
    assert finding.key == "spam:17:2025-09-16T16:31:05"
    assert list(finding.fields) == list(SpamCheck.fields)
    assert finding.fields["total_amount"] == Decimal("1234.56")
    assert finding.severity is Severity.MEDIUM
    assert finding.message == ("Customer Quentin Fox (ID: 17) made 6 transactions on September 16, 2025 "
                               "at 16:31 - suspicious activity detected")


def test_unknown_customer_name_still_makes_a_line() -> None:
    finding = judge(Burst(3, None, T0, T0, 6, 0, 0, 0), 6)
    assert finding.message.startswith("Customer unknown (ID: 3) made 6 transactions on September 16, 2025 at 16:30")


# --- a brute-force reference, independent of the SQL ----------------------------------------

def reference(transactions: list[dict[str, Any]], min_count: int, window: int) -> set[tuple[int, datetime, int]]:
    """(customer, start, count) of every merged burst, by walking all windows in Python."""
    by_customer: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for t in transactions:
        if t["transaction_date"] is not None:
            by_customer[t["customer_id"]].append((t["transaction_date"], t["transaction_id"]))
    out = set()
    for customer, rows in by_customer.items():
        rows.sort()
        spans: list[list[int]] = []
        for end in range(min_count - 1, len(rows)):
            start = end - min_count + 1
            if (rows[end][0] - rows[start][0]).total_seconds() <= window:
                if spans and start <= spans[-1][1]:
                    spans[-1][1] = end
                else:
                    spans.append([start, end])
        out |= {(customer, rows[s][0], e - s + 1) for s, e in spans}
    return out


class Shop:
    """A tiny data set built transaction by transaction (ids follow insertion order)."""

    def __init__(self, customers: int = 60) -> None:
        self.customers = [{"customer_id": i, "customer_name": f"Customer {i}"} for i in range(1, customers + 1)]
        self.transactions: list[dict[str, Any]] = []

    def add(self, customer: int, when: datetime | None, status: str = "SUCCESS",
            amount: Decimal | None = Decimal("499.00")) -> None:
        self.transactions.append({"transaction_id": len(self.transactions) + 1, "customer_id": customer,
                                  "transaction_date": when, "status": status, "total_amount": amount})

    def series(self, customer: int, first: datetime, offsets: list[int], **kwargs: Any) -> None:
        for offset in offsets:
            self.add(customer, first + timedelta(seconds=offset), **kwargs)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        return {"customers": self.customers, "transactions": self.transactions}


def scan(cli, url: str, *args: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    run = cli("scan", "spam", "--db", url, "--format", "json", "--fail-on", "never", *args)
    assert run.exit_code == 0, run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    return check["findings"], check["summary"]


def found(findings: list[dict[str, Any]]) -> set[tuple[int, datetime, int]]:
    return {(f["customer_id"], datetime.fromisoformat(f["window_start"]), f["transactions"]) for f in findings}


# --- against real databases ------------------------------------------------------------------

@pytest.mark.engines
def test_decoys_are_not_bursts_and_a_straddling_burst_is(engine_url: str, cli) -> None:
    shop = Shop()
    shop.series(1, T0, [0, 7, 15, 22, 30])  # 5 in 30 s
    shop.series(2, T0, [0, 60, 120, 180, 240, 300])  # 6 over 5 minutes
    for customer in range(3, 9):  # 6 different customers in one minute
        shop.add(customer, T0 + timedelta(seconds=5 * customer))
    shop.series(9, T0, [0, 12, 24, 36, 48, 61])  # 6 in 61 s: just too slow
    shop.series(10, T0, [0, 12, 24, 36, 48, 60])  # 6 in exactly 60 s: a burst
    # 3 at 16:30:4x and 4 at 16:31:0x: no clock minute holds 6, the sliding window does
    shop.series(17, T0, [41, 45, 49, 62, 64, 66, 68])
    load_database(engine_url, shop.rows())
    findings, _ = scan(cli, engine_url)
    assert found(findings) == {(10, T0, 6), (17, T0 + timedelta(seconds=41), 7)}
    straddle = next(f for f in findings if f["customer_id"] == 17)
    assert straddle["key"] == "spam:17:2025-09-16T16:30:41"
    assert straddle["window_end"] == "2025-09-16T16:31:08"
    assert straddle["message"] == ("Customer Customer 17 (ID: 17) made 7 transactions on September 16, 2025 "
                                   "at 16:30 - suspicious activity detected")


@pytest.mark.engines
def test_overlapping_windows_merge_and_separate_ones_do_not(engine_url: str, cli) -> None:
    shop = Shop()
    shop.series(5, T0, list(range(0, 100, 10)))  # 10 transactions 10 s apart: 5 windows, one burst
    # same customer, a second burst 30 s after the first ends: no window spans both
    shop.series(5, T0 + timedelta(seconds=150), [0, 1, 2, 3, 4, 5])
    # card testing: 12 failed small amounts, the same second twice (ties broken by id)
    shop.series(6, T0, [0, 0, 5, 5, 10, 15, 20, 25, 30, 35, 40, 45], status="FAILED", amount=Decimal("1.00"))
    shop.add(6, None, amount=None)  # no date: skipped, counted
    shop.series(7, T0, [0, 5, 10, 15, 20, 25], amount=None)  # NULL amounts count as 0
    load_database(engine_url, shop.rows())
    findings, summary = scan(cli, engine_url)
    by_key = {f["key"]: f for f in findings}
    assert found(findings) == {(5, T0, 10), (5, T0 + timedelta(seconds=150), 6), (6, T0, 12), (7, T0, 6)}
    card = by_key["spam:6:2025-09-16T16:30:00"]
    assert (card["severity"], card["failed"], card["total_amount"]) == ("critical", 12, 12.0)
    assert by_key["spam:5:2025-09-16T16:30:00"]["severity"] == "medium"
    assert by_key["spam:7:2025-09-16T16:30:00"]["total_amount"] == 0.0
    assert by_key["spam:7:2025-09-16T16:30:00"]["severity"] == "high"  # all "small" (0), none failed
    assert summary["skipped"] == {"no_date": 1}
    assert summary["total_amount"] == pytest.approx(10 * 499 + 6 * 499 + 12)


@pytest.mark.engines
def test_a_burst_belongs_to_the_window_it_starts_in(engine_url: str, cli) -> None:
    shop = Shop()
    day = datetime(2025, 9, 16)
    # 20 from 23:59:30 across midnight: the 15 after midnight would look like a burst of their own
    # to a scan that did not look back before --since
    shop.series(1, day - timedelta(seconds=30), list(range(0, 120, 6)))
    shop.series(2, day + timedelta(hours=10), list(range(6)))
    shop.series(3, day + timedelta(days=1, hours=10), list(range(6)))  # the next day
    load_database(engine_url, shop.rows())
    assert found(scan(cli, engine_url, "--since", "2025-09-16", "--until", "2025-09-17")[0]) == {
        (2, day + timedelta(hours=10), 6)}
    # the day before owns the midnight burst, whole, though it runs past --until
    assert found(scan(cli, engine_url, "--since", "2025-09-15", "--until", "2025-09-16")[0]) == {
        (1, day - timedelta(seconds=30), 20)}
    assert len(scan(cli, engine_url)[0]) == 3


@pytest.mark.engines
def test_thresholds_are_options(engine_url: str, cli) -> None:
    shop = Shop()
    shop.series(1, T0, [0, 7, 15, 22, 30])  # 5 in 30 s
    shop.series(2, T0, [0, 60, 120, 180, 240, 300])  # 6 in 5 minutes
    shop.series(3, T0, [0, 1, 2, 3, 4, 5], amount=Decimal("150.00"))
    load_database(engine_url, shop.rows())
    assert {f["customer_id"] for f in scan(cli, engine_url, "--min-count", "5")[0]} == {1, 3}
    assert {f["customer_id"] for f in scan(cli, engine_url, "--window", "300")[0]} == {2, 3}
    assert {f["customer_id"]: f["severity"] for f in scan(cli, engine_url)[0]} == {3: "medium"}
    by_small = {f["customer_id"]: f["severity"] for f in scan(cli, engine_url, "--small-amount", "200")[0]}
    assert by_small == {3: "high"}


@pytest.mark.parametrize("option", [("--min-count", "1"), ("--min-count", "0"), ("--window", "0"),
                                    ("--window", "-1"), ("--small-amount", "-1")])
def test_impossible_thresholds_are_usage_errors(sqlite_url: str, cli, option: tuple[str, str]) -> None:
    load_database(sqlite_url, Shop().rows())
    run = cli("scan", "spam", "--db", sqlite_url, *option)
    assert run.exit_code == 2
    assert option[0].lstrip("-").replace("-", "_") in run.stderr


DEMO_END = datetime(2025, 9, 17, 9, 30)


def demo() -> tuple[dict[str, Any], list[Any]]:
    data = generate(DEMO_END)
    rows = {"customers": data.customers, "products": data.products,
            "transactions": data.transactions, "transaction_items": data.transaction_items}
    return rows, [p for p in data.planted if p.check == "spam"]


@pytest.mark.engines
def test_demo_data_planted_bursts_found_and_decoys_not(engine_url: str, cli) -> None:
    rows, planted = demo()
    load_database(engine_url, rows)
    findings, summary = scan(cli, engine_url)
    got = {(f["customer_id"], f["window_start"]): f for f in findings}
    expected = {(p.detail["customer_id"], p.detail["start"]): p for p in planted if p.anomaly}
    assert set(got) == set(expected)  # recall 1.0 and precision 1.0
    for key, plant in expected.items():
        finding = got[key]
        assert (finding["transactions"], finding["failed"], finding["window_end"]) == (
            plant.detail["count"], plant.detail["failed"], plant.detail["end"])
    card = next(p for p in planted if p.kind == "card-testing")
    assert got[(card.detail["customer_id"], card.detail["start"])]["severity"] == "critical"
    decoy_customers = {p.detail["customer_id"] for p in planted if not p.anomaly and p.detail["customer_id"]}
    decoy_customers |= {c for p in planted for c in p.detail.get("customer_ids", ())}
    assert not decoy_customers & {f["customer_id"] for f in findings}
    assert summary["findings"] == 3
    # the data as a whole agrees with the brute-force reference
    assert found(findings) == reference(rows["transactions"], 6, 60)


@pytest.mark.engines
def test_findings_are_identical_on_every_engine(engine_url: str, cli, tmp_path) -> None:
    rows, _ = demo()
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    load_database(reference_url, rows)
    load_database(engine_url, rows)
    args = ("scan", "spam", "--format", "jsonl", "--fail-on", "never", "--min-count", "3", "--window", "300")
    expected = cli(*args, "--db", reference_url)
    run = cli(*args, "--db", engine_url)
    assert run.exit_code == expected.exit_code == 0, run.stderr
    assert run.stdout == expected.stdout
    assert len(run.stdout.splitlines()) > 3  # looser thresholds: more than the plants, all identical


def noisy_shop(seed: int) -> tuple[Shop, set[tuple[int, datetime, int]], set[int], set[int]]:
    """Two days of random traffic by customers 1-40 with bursts and near misses by customers 41-80.

    Returns the shop, the planted bursts (customer, start, count), the card testers and the decoys.
    """
    rng = random.Random(seed)
    shop = Shop(customers=80)
    start = datetime(2025, 9, 15)
    events = []
    for customer in range(1, 41):  # noise: about 25 transactions a day each, exponential gaps
        when = start + timedelta(seconds=rng.randrange(3600))
        while when < start + timedelta(days=2):
            events.append((when, customer, rng.random() < 0.05))
            when += timedelta(seconds=int(rng.expovariate(1 / 3600)) + 1)
    planted, testers, decoys = set(), set(), set()
    customers = iter(range(41, 81))
    for _ in range(6):  # bursts: every 6 consecutive within 60 s, often straddling a minute
        customer, count = next(customers), rng.randint(6, 15)
        first = start + timedelta(hours=rng.randrange(40), minutes=rng.randrange(60), seconds=rng.choice((40, 50, 55)))
        # spread over at most 60 s, so every window of 6 qualifies and they all merge
        offsets = [0, 60] + [rng.randint(0, 60) for _ in range(count - 2)]
        planted.add((customer, first, count))
        events += [(first + timedelta(seconds=o), customer, False) for o in offsets]
    for _ in range(2):  # card testing: small, mostly failing, 8 s apart
        customer, count = next(customers), rng.randint(8, 20)
        first = start + timedelta(hours=rng.randrange(40), seconds=rng.randrange(3600))
        planted.add((customer, first, count))
        testers.add(customer)
        events += [(first + timedelta(seconds=8 * i), customer, f"card{i}") for i in range(count)]
    for _ in range(4):  # decoys by kind: 5 fast, 6 slow, 6 customers in one minute
        first = start + timedelta(hours=rng.randrange(40), seconds=rng.randrange(3600))
        fast, slow = next(customers), next(customers)
        decoys |= {fast, slow}
        events += [(first + timedelta(seconds=rng.randint(0, 30)), fast, False) for _ in range(5)]
        events += [(first + timedelta(seconds=61 * i), slow, False) for i in range(6)]
        crowd = [next(customers) for _ in range(6)]
        decoys |= set(crowd)
        events += [(first + timedelta(seconds=9 * i), c, False) for i, c in enumerate(crowd)]
    for when, customer, kind in sorted(events, key=lambda e: e[0]):
        if isinstance(kind, str):  # a card test: four in five fail
            failed = int(kind[4:]) % 5 != 4
            shop.add(customer, when, "FAILED" if failed else "SUCCESS", Decimal(rng.randint(100, 999)) / 100)
        else:
            shop.add(customer, when, "FAILED" if kind else "SUCCESS", Decimal(rng.randint(20000, 900000)) / 100)
    return shop, planted, testers, decoys


@pytest.mark.engines
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_planted_bursts_in_noisy_traffic(engine_url: str, cli, seed: int) -> None:
    shop, planted, testers, decoys = noisy_shop(seed)
    load_database(engine_url, shop.rows())
    findings, _ = scan(cli, engine_url)
    got = found(findings)
    assert got == reference(shop.transactions, 6, 60)  # exactly the brute-force answer
    assert planted <= got  # recall 1.0, with the right counts
    assert len(planted) / len(got) >= 0.9  # noise rarely bursts by chance
    assert not {f["customer_id"] for f in findings} & decoys
    severities = {f["customer_id"]: f["severity"] for f in findings}
    assert all(severities[c] == "critical" for c in testers)
    assert not {c for c, s in severities.items() if s == "critical"} - testers
