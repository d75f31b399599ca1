"""The price check: judging rules without a database, then the same scans on three engines."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from anomaly_cli.checks.price import PricedItem, judge, severity_for, skip_reason
from anomaly_cli.demo_data import generate
from anomaly_cli.model import Severity
from tests.conftest import load_database

BELOW, ABOVE = Decimal("0.75"), Decimal("1.05")


def item(catalog: int | None, sold: int | None, *, quantity: int | None = 1,
         when: datetime | None = datetime(2025, 9, 12, 10, 0)) -> PricedItem:
    return PricedItem(904, 1, 5, "Eva Green", "prod1005", "Mouse", when, "SUCCESS", quantity, catalog, sold)


@pytest.mark.parametrize(
    ("catalog_cents", "sold_cents", "flagged", "severity", "direction"),
    [
        (100000, 75000, False, None, None),  # exactly 0.75 x catalog: not flagged
        (100000, 74999, True, Severity.HIGH, "discount"),  # one cent below the boundary
        (100000, 105000, False, None, None),  # exactly 1.05 x catalog: not flagged
        (100000, 105001, True, Severity.LOW, "markup"),
        (1999, 1499, True, Severity.HIGH, "discount"),  # 19.99 x 0.75 = 14.9925 > 14.99
        (1999, 1500, False, None, None),
        (50000, 6800, True, Severity.CRITICAL, "discount"),  # the seed's 86.4 % Mouse
        (200000, 250000, True, Severity.HIGH, "markup"),  # the seed's 25 % Headphones
        (100000, 115000, True, Severity.MEDIUM, "markup"),
        (100000, 160000, True, Severity.CRITICAL, "markup"),
        (100000, 50000, True, Severity.HIGH, "discount"),  # exactly 50 %: high, not critical
        (100000, 100000, False, None, None),
    ],
)
def test_judge_boundaries(catalog_cents, sold_cents, flagged, severity, direction) -> None:
    finding = judge(item(catalog_cents, sold_cents), BELOW, ABOVE, "₹")
    assert (finding is not None) is flagged
    if finding is not None:
        assert finding.severity is severity
        assert finding.fields["direction"] == direction


@pytest.mark.parametrize(
    ("deviation", "severity"),
    [("-86.4", Severity.CRITICAL), ("50.01", Severity.CRITICAL), ("50", Severity.HIGH),
     ("-25", Severity.HIGH), ("24.99", Severity.MEDIUM), ("10", Severity.MEDIUM), ("9.99", Severity.LOW)],
)
def test_severity_scale(deviation: str, severity: Severity) -> None:
    assert severity_for(Decimal(deviation)) is severity


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (item(None, 500), "no_catalog_price"),
        (item(0, 500), "nonpositive_catalog_price"),
        (item(-100, 500), "nonpositive_catalog_price"),
        (item(1000, None), "no_sold_price"),
        (item(1000, 500, when=None), "no_date"),
        (item(1000, 500), None),
    ],
)
def test_unjudgeable_rows_are_skipped_with_a_reason(candidate: PricedItem, reason: str | None) -> None:
    assert skip_reason(candidate) == reason


def test_fields_and_seed_sentence() -> None:
    finding = judge(item(50000, 6800, quantity=2), BELOW, ABOVE, "₹")
    assert finding is not None
    assert finding.fields["deviation_pct"] == Decimal("-86.40")
    assert finding.fields["revenue_impact"] == Decimal("864.00")  # (500 - 68) x 2
    assert finding.key == "price:904:1"
    assert finding.message == (
        "Transaction ID 904: Customer Eva Green (ID: 5) purchased Mouse on September 12, 2025. "
        "The product has an actual catalog price of ₹500.00 but was sold for ₹68.00, resulting in a "
        "86.4% discount. This represents a CRITICAL price anomaly - significant revenue loss."
    )


def test_markup_sentence_and_negative_impact() -> None:
    finding = judge(item(200000, 250000), BELOW, ABOVE, "$")
    assert finding is not None
    assert finding.fields["revenue_impact"] == Decimal("-500.00")
    assert finding.message.endswith("resulting in a 25.0% markup. This represents a HIGH price anomaly "
                                    "- customer overcharged.")
    assert "$2000.00" in finding.message


# --- against real databases ---------------------------------------------------------------

DEMO_END = datetime(2025, 9, 17, 9, 30)


def demo_rows() -> tuple[dict, list]:
    data = generate(DEMO_END)
    rows = {"customers": data.customers, "products": data.products,
            "transactions": data.transactions, "transaction_items": data.transaction_items}
    return rows, [p for p in data.planted if p.check == "price"]


@pytest.mark.engines
def test_scan_price_reports_every_planted_anomaly_and_nothing_else(engine_url: str, cli) -> None:
    rows, planted = demo_rows()
    load_database(engine_url, rows)
    run = cli("scan", "price", "--db", engine_url, "--format", "json")
    assert run.exit_code == 1, run.stderr
    document = json.loads(run.stdout)
    (check,) = document["checks"]
    found = {(f["transaction_id"], f["item_id"]) for f in check["findings"]}
    expected = {(p.detail["transaction_id"], p.detail["item_id"]) for p in planted if p.anomaly}
    decoys = {(p.detail["transaction_id"], p.detail["item_id"]) for p in planted if not p.anomaly}
    assert found == expected
    assert not found & decoys
    assert check["summary"]["findings"] == len(expected)
    assert check["summary"]["skipped"] == {"no_sold_price": 1, "nonpositive_catalog_price": 1}
    for finding in check["findings"]:
        assert finding["key"] == f"price:{finding['transaction_id']}:{finding['item_id']}"


@pytest.mark.engines
def test_findings_are_identical_on_every_engine(engine_url: str, cli, tmp_path) -> None:
    rows, _ = demo_rows()
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    load_database(reference_url, rows)
    load_database(engine_url, rows)
    args = ("scan", "price", "--format", "jsonl", "--fail-on", "never", "--since", "2025-08-01")
    reference = cli(*args, "--db", reference_url)
    run = cli(*args, "--db", engine_url)
    assert run.exit_code == reference.exit_code == 0, run.stderr
    assert run.stdout == reference.stdout
    assert len(run.stdout.splitlines()) == 10


@pytest.mark.engines
def test_items_without_a_date_are_counted_not_flagged(engine_url: str, cli) -> None:
    rows, _ = demo_rows()
    undated = dict(rows["transactions"][0], transaction_id=999_999, transaction_date=None)
    item = dict(rows["transaction_items"][0], item_id=999_999, transaction_id=999_999, product_price=Decimal("1.00"))
    rows = {**rows, "transactions": [*rows["transactions"], undated],
            "transaction_items": [*rows["transaction_items"], item]}
    load_database(engine_url, rows)
    for window in ((), ("--since", "2025-08-01", "--until", "2025-10-01")):
        run = cli("scan", "price", "--db", engine_url, "--format", "json", *window)
        check = json.loads(run.stdout)["checks"][0]
        assert check["summary"]["skipped"]["no_date"] == 1
        assert 999_999 not in {f["transaction_id"] for f in check["findings"]}


@pytest.mark.engines
def test_transactions_without_line_items_are_not_evaluated(engine_url: str, cli) -> None:
    """Sales after the demo's end were loaded without their items: a window over them judged
    nothing (F10), while the whole history still is judged (the probe runs after the stream)."""
    rows, planted = demo_rows()
    later = [dict(rows["transactions"][0], transaction_id=900_000 + n, transaction_date=datetime(2025, 9, 20, n))
             for n in range(3)]
    load_database(engine_url, {**rows, "transactions": [*rows["transactions"], *later]})
    bare = json.loads(cli("scan", "price", "--db", engine_url, "--format", "json", "--since", "2025-09-18").stdout)
    assert bare["checks"][0]["summary"]["status"] == "not_evaluated"
    assert bare["checks"][0]["summary"]["reason"] == "no line items in the window"
    whole = json.loads(cli("scan", "price", "--db", engine_url, "--format", "json").stdout)
    assert whole["checks"][0]["summary"]["status"] == "findings"
    assert whole["checks"][0]["summary"]["findings"] == len([p for p in planted if p.anomaly])
