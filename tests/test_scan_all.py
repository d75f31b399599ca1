"""`scan all`: one document, one entry per check, the worst exit code, the same on three engines."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from anomaly_cli.demo_data import generate
from tests.conftest import load_database

END = datetime(2025, 9, 17, 9, 30)
SHOP_CHECKS = ["freshness", "price", "sales", "spam", "failed", "behaviour"]
FINDING_FIELDS = {
    "freshness": ["table", "newest", "age_seconds", "expected_gap_seconds"],
    "price": ["transaction_id", "item_id", "customer_id", "customer_name", "product_id", "product_name",
              "transaction_date", "status", "quantity", "catalog_price", "sold_price", "deviation_pct",
              "direction", "revenue_impact"],
    "sales": ["bucket_start", "bucket_end", "transactions", "revenue", "expected_transactions",
              "expected_revenue", "drop_pct"],
    "spam": ["customer_id", "customer_name", "window_start", "window_end", "transactions", "failed",
             "total_amount"],
    "failed": ["bucket_start", "bucket_end", "failed", "total", "failure_rate", "expected_rate",
               "distinct_customers", "scope"],
    "behaviour": ["customer_id", "customer_name", "episode_start", "episode_end", "transactions", "total_amount",
                  "score", "risk", "features", "model"],
}


def demo(url: str) -> None:
    data = generate(END)
    load_database(url, {"customers": data.customers, "products": data.products,
                        "transactions": data.transactions, "transaction_items": data.transaction_items})


@pytest.mark.engines
def test_scan_all_document_follows_the_contract(engine_url: str, cli) -> None:
    demo(engine_url)
    run = cli("scan", "all", "--db", engine_url, "--format", "json", "--until", "2025-09-17T09:30")
    assert run.exit_code == 1, run.stderr
    doc = json.loads(run.stdout)
    assert [c["check"] for c in doc["checks"]] == SHOP_CHECKS
    # The monitor's checks read tables a shop database does not have: skipped, and said so.
    assert "rates: skipped" in run.stderr and "checkout: skipped" in run.stderr
    for check in doc["checks"]:
        assert set(check) == {"check", "params", "summary", "findings"}
        assert check["summary"]["findings"] == len(check["findings"])
        # Every shop check finds its plants; a live shop's feed is fresh, so freshness finds nothing.
        assert bool(check["findings"]) is (check["check"] != "freshness")
        assert sum(check["summary"]["by_severity"].values()) == check["summary"]["findings"]
        for finding in check["findings"]:
            assert list(finding)[:4] == ["check", "key", "severity", "message"]
            assert list(finding)[4:] == FINDING_FIELDS[check["check"]]
            assert finding["severity"] in {"low", "medium", "high", "critical"}
    keys = [f["key"] for c in doc["checks"] for f in c["findings"]]
    assert len(keys) == len(set(keys))


@pytest.mark.engines
def test_scan_all_is_identical_on_every_engine(engine_url: str, cli, tmp_path) -> None:
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    demo(reference)
    demo(engine_url)
    args = ("scan", "all", "--format", "jsonl", "--until", "2025-09-17T09:30", "--fail-on", "never")
    ours, theirs = cli(*args, "--db", engine_url), cli(*args, "--db", reference)
    assert ours.exit_code == theirs.exit_code == 0
    assert ours.stdout == theirs.stdout and ours.stdout


@pytest.mark.parametrize(("fail_on", "code"), [("critical", 1), ("never", 0)])
def test_exit_code_is_the_worst_of_the_checks(sqlite_url: str, cli, fail_on: str, code: int) -> None:
    demo(sqlite_url)
    run = cli("scan", "all", "--db", sqlite_url, "--format", "json", "--fail-on", fail_on,
              "--until", "2025-09-17T09:30")
    worst = {s for c in json.loads(run.stdout)["checks"] for s in c["summary"]["by_severity"]}
    assert "critical" in worst
    assert run.exit_code == code


def test_the_window_applies_to_every_check(sqlite_url: str, cli) -> None:
    demo(sqlite_url)
    run = cli("scan", "all", "--db", sqlite_url, "--format", "json", "--until", "2025-09-17T09:30",
              "--since", "2025-09-09", "--fail-on", "high")
    by_check = {c["check"]: c["summary"]["findings"] for c in json.loads(run.stdout)["checks"]}
    # Only the markups of September 12 and the three low-sales days fall after September 9.
    rules = {name: n for name, n in by_check.items() if name != "behaviour"}  # its own: test_behaviour.py
    assert rules == {"freshness": 0, "price": 4, "sales": 3, "spam": 0, "failed": 0}
    assert run.exit_code == 1


def test_table_groups_findings_by_check(sqlite_url: str, cli) -> None:
    demo(sqlite_url)
    run = cli("scan", "all", "--db", sqlite_url, "--format", "table", "--until", "2025-09-17T09:30")
    positions = [run.stdout.index(f"\n{name}") if not run.stdout.startswith(name) else 0 for name in SHOP_CHECKS]
    assert positions == sorted(positions)
