"""anomaly report / --format html without a browser: self-contained, escaped, capped, streamed."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from anomaly_cli.render import html as html_sink
from tests.conftest import load_database
from tests.demo_fixture import build

WHEN = datetime(2025, 9, 12, 10, 0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return build(tmp_path_factory.mktemp("report"))


class Tags(HTMLParser):
    """Every tag and attribute, to look for anything that would load from somewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    return tags


def shop_with(name: str, items: int) -> dict:
    """`items` sales of a 100 item at 10 by one customer called `name`: each a critical discount."""
    return {
        "customers": [{"customer_id": 1, "customer_name": name}],
        "products": [{"product_id": "p", "product_name": "Widget", "product_price": Decimal(100)}],
        "transactions": [{"transaction_id": n, "customer_id": 1, "transaction_date": WHEN, "status": "SUCCESS",
                          "total_amount": Decimal(10)} for n in range(1, items + 1)],
        "transaction_items": [{"item_id": n, "transaction_id": n, "product_id": "p", "product_price": Decimal(10),
                               "quantity": 1} for n in range(1, items + 1)],
    }


def test_the_demo_report_loads_nothing_from_anywhere(demo, cli, tmp_path: Path) -> None:
    db, until = demo
    out = tmp_path / "report.html"
    run = cli("report", "--db", db, "--until", until, "--output", str(out))
    assert run.exit_code == 1  # findings at or above low, as scan all
    text = out.read_text(encoding="utf-8")
    assert out.stat().st_size < 2_000_000
    assert not re.search(r"https?:|[\"'(]//|@import|url\(", text, re.IGNORECASE)
    tags = parse(text)
    assert not [t for t, a in tags.tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    assert not [a for _, a in tags.tags if {"src", "href"} & set(a)]
    assert sum(1 for t, a in tags.tags if t == "figure") == 8  # one per check: freshness and behaviour included
    assert text.rstrip().endswith("</html>")


def test_names_are_escaped(sqlite_url: str, cli) -> None:
    load_database(sqlite_url, shop_with('<script>alert("x")</script>\x1b[2J', 1))
    run = cli("scan", "price", "--db", sqlite_url, "--format", "html")
    assert "<script>" not in run.stdout and "&lt;script&gt;" in run.stdout
    assert "\x1b" not in run.stdout


def test_tables_are_capped_with_a_count_of_the_rest(sqlite_url: str, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    load_database(sqlite_url, shop_with("Eva", 7))
    monkeypatch.setattr(html_sink, "MAX_ROWS", 3)
    run = cli("scan", "price", "--db", sqlite_url, "--format", "html")
    assert run.stdout.count('<tr class="finding">') == 3
    assert "4 more findings not shown" in run.stdout
    assert 'data-points="7"' in run.stdout  # the chart still has every flagged item


def test_a_check_that_judged_nothing_says_why(sqlite_url: str, cli) -> None:
    load_database(sqlite_url, shop_with("Eva", 0))
    run = cli("scan", "sales", "--db", sqlite_url, "--format", "html")
    assert "not evaluated" in run.stdout and "<svg" not in run.stdout


def test_report_needs_a_file_on_a_terminal_only(demo, cli) -> None:
    db, until = demo
    run = cli("report", "--db", db, "--until", until, "-q", "--fail-on", "never")  # stdout is not a terminal here
    assert run.exit_code == 0 and run.stdout.startswith("<!DOCTYPE html>")
    assert "--format" not in cli("report", "--help").stdout


def test_output_suffix_html_implies_the_report(demo, cli, tmp_path: Path) -> None:
    db, until = demo
    out = tmp_path / "nightly.html"
    cli("scan", "all", "--db", db, "--until", until, "-o", str(out), "-q")
    assert out.read_text(encoding="utf-8").count("<svg") >= 6


def test_a_failed_report_leaves_the_previous_file(cli, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("yesterday")
    run = cli("report", "--db", str(tmp_path / "nope" / "x.db"), "-o", str(out))
    assert run.exit_code == 3 and out.read_text() == "yesterday"
