"""--format junit: well-formed XML in the testsuites/testsuite/testcase/failure shape CI tools read,
with one failing testcase per finding at or above --fail-on."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from anomaly_cli.render import junit
from tests.conftest import load_database
from tests.demo_fixture import at_or_above, build, json_findings

WHEN = datetime(2025, 9, 12, 10, 0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict]:
    db, until = build(tmp_path_factory.mktemp("junit"))
    return db, until, json_findings(db, until)


def suites(xml_text: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml_text)
    assert root.tag == "testsuites"
    assert all(child.tag == "testsuite" for child in root)
    return {s.get("name"): s for s in root}


@pytest.mark.parametrize("fail_on", ["low", "high", "critical", "never"])
def test_failures_are_the_findings_at_or_above_fail_on(demo, cli, fail_on: str, tmp_path: Path) -> None:
    db, until, findings = demo
    out = tmp_path / "anomaly.xml"  # .xml implies junit
    run = cli("scan", "all", "--db", db, "--until", until, "--fail-on", fail_on, "-o", str(out))
    assert run.exit_code == (0 if fail_on == "never" else 1)
    found = suites(out.read_text(encoding="utf-8"))
    assert set(found) == set(findings)
    for check, suite in found.items():
        cases = suite.findall("testcase")
        failures = [c.find("failure") for c in cases if c.find("failure") is not None]
        expected = at_or_above(findings[check], fail_on)
        assert len(failures) == len(expected) == int(suite.get("failures"))
        assert int(suite.get("tests")) == len(cases) and int(suite.get("errors")) == 0
        assert float(suite.get("time")) > 0
        assert sorted(c.get("name") for c in cases if c.find("failure") is not None) == \
            sorted(f["key"] for f in expected)
        assert sorted((f.get("message"), f.get("type")) for f in failures) == \
            sorted((f["message"], f["severity"]) for f in expected)
        if not expected:  # one passing testcase named after the check
            assert [c.get("name") for c in cases] == [check]
            assert cases[0].find("skipped") is None


def test_clean_check_passes_and_a_check_that_judged_nothing_is_skipped(sqlite_url: str, cli) -> None:
    load_database(sqlite_url, {"customers": [{"customer_id": 1, "customer_name": "A"}],
                               "products": [{"product_id": "p", "product_name": "P", "product_price": Decimal(10)}],
                               "transactions": [{"transaction_id": 1, "customer_id": 1, "status": "SUCCESS",
                                                 "transaction_date": WHEN, "total_amount": 10}],
                               "transaction_items": [{"item_id": 1, "transaction_id": 1, "product_id": "p",
                                                      "product_price": Decimal(10), "quantity": 1}]})
    run = cli("scan", "all", "--db", sqlite_url, "--format", "junit", "--until", "2025-09-13")
    found = suites(run.stdout)
    price = found["price"].findall("testcase")
    assert len(price) == 1 and price[0].find("failure") is None and price[0].find("skipped") is None
    sales = found["sales"]
    assert sales.get("skipped") == "1" and sales.find("testcase/skipped").get("message").startswith("not evaluated")
    # scan all leaves out the checks whose tables are missing: skipped suites, with the reason
    assert found["rates"].find("testcase/skipped").get("message").startswith("skipped")


def test_markup_and_control_characters_stay_well_formed(sqlite_url: str, cli) -> None:
    name = 'Eve <script>&"\x01\x1b[31m'
    load_database(sqlite_url, {
        "customers": [{"customer_id": 1, "customer_name": name}],
        "products": [{"product_id": "p", "product_name": "P]]>", "product_price": Decimal(100)}],
        "transactions": [{"transaction_id": 1, "customer_id": 1, "transaction_date": WHEN,
                          "status": "SUCCESS", "total_amount": Decimal(10)}],
        "transaction_items": [{"item_id": 1, "transaction_id": 1, "product_id": "p", "product_name": "P]]>",
                               "product_price": Decimal(10), "quantity": 1}]})
    run = cli("scan", "price", "--db", sqlite_url, "--format", "junit")
    failure = suites(run.stdout)["price"].find("testcase/failure")
    assert "Eve <script>&" in failure.get("message") and "\x01" not in failure.get("message")


def test_a_small_spool_writes_the_same_document(demo, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Testcases past the in-memory bound spill to disk; the document does not change."""
    db, until, _ = demo
    args = ("scan", "all", "--db", db, "--until", until, "--format", "junit", "-q")
    whole = cli(*args).stdout
    monkeypatch.setattr(junit, "SPOOL", 64)
    spilled = cli(*args).stdout
    strip = lambda text: "\n".join(l for l in text.splitlines() if "<testsuite " not in l)  # noqa: E731 (times differ)
    assert strip(spilled) == strip(whole)
