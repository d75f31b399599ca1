"""The HTML report of the demo database, opened in a real headless Chromium (the system package).

Asserts what a reader depends on: no console errors, no network request at all (the file is
self-contained), one chart per check with its data points drawn. Screenshots land in
test-artifacts/ (or $ANOMALY_TEST_ARTIFACTS); the file size and timings are printed (pytest -s)
and written to test-artifacts/report-measurements.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from anomaly_cli.checks import registry
from anomaly_cli.demo import build_demo_database
from tests.cdp import Browser, artifacts_dir, chromium_path
from tests.conftest import UNDER_CI

MAX_BYTES = 2_000_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        if UNDER_CI:
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    started = time.monotonic()
    chrome = Browser(executable)
    MEASURED["browser_start_seconds"] = round(time.monotonic() - started, 2)
    try:
        yield chrome
    finally:
        chrome.close()


MEASURED: dict[str, float | int] = {}


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    from anomaly_cli.cli import app

    work = tmp_path_factory.mktemp("report")
    database = work / "demo.db"
    build_demo_database(database, now=datetime.now())
    out = work / "demo-report.html"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["report", "--db", str(database), "--output", str(out), "--fail-on", "never"],
                                env={}, catch_exceptions=False)
    MEASURED["render_seconds"] = round(time.monotonic() - started, 2)
    assert result.exit_code == 0, result.stderr
    MEASURED["report_bytes"] = out.stat().st_size
    return out


def test_demo_report_in_chromium(browser: Browser, demo_report: Path) -> None:
    started = time.monotonic()
    tab = browser.open(demo_report.as_uri(), width=1200, height=900)
    page = tab.page
    assert page.errors == []
    # The document itself is the one request; a script, style, font or image would add one.
    assert page.requests == [demo_report.as_uri()]
    charts = tab.evaluate("""[...document.querySelectorAll('section.check')].map(s => ({
        check: s.dataset.check,
        figures: s.querySelectorAll('figure.chart-figure').length,
        declared: [...s.querySelectorAll('svg.chart')].reduce((n, c) => n + Number(c.dataset.points), 0),
        drawn: [...s.querySelectorAll('svg.chart polyline.series, svg.chart circle')]
                 .filter(e => e.getBBox().width > 0 || e.getBBox().height > 0).length,
        width: s.querySelector('svg.chart') ? s.querySelector('svg.chart').getBoundingClientRect().width : 0,
        rows: s.querySelectorAll('tr.finding').length,
        badges: s.querySelectorAll('tr.finding .badge').length}))""")
    assert [c["check"] for c in charts] == list(registry())  # the demo has every check's tables
    for chart in charts:
        assert chart["figures"] == 1, chart
        assert chart["declared"] > 0 and chart["drawn"] > 0, chart
        assert chart["width"] > 500, chart  # laid out, not collapsed
        assert chart["rows"] > 0 and chart["badges"] == chart["rows"], chart
    header = tab.evaluate("document.querySelector('header').innerText")
    assert "sqlite:///" in header and "Window" in header and "Run at" in header
    tiles = tab.evaluate("[...document.querySelectorAll('.kpis .tile')].map(t => t.innerText)")
    assert any("revenue impact" in t for t in tiles) and any("not evaluated" in t for t in tiles)
    # The KPI tiles are written last (streaming) yet shown right under the header.
    order = tab.evaluate("['header', '.kpis', 'section.check'].map(q => document.querySelector(q)"
                         ".getBoundingClientRect().top)")
    assert order == sorted(order)
    MEASURED["browser_check_seconds"] = round(time.monotonic() - started, 2)

    out = artifacts_dir()
    MEASURED["screenshot_bytes"] = tab.screenshot(out / "report-full.png")
    tab.screenshot(out / "report-top.png", full=False)
    for i, check in enumerate(c["check"] for c in charts):
        box = tab.evaluate(f"(() => {{ const r = document.querySelectorAll('section.check')[{i}]"
                           ".querySelector('figure').getBoundingClientRect();"
                           " return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height}; })()")
        tab.screenshot(out / f"report-chart-{check}.png", clip=box)
    assert (out / "report-full.png").stat().st_size > 10_000
    (out / "report-measurements.json").write_text(json.dumps(MEASURED, indent=2) + "\n")
    print(f"\nreport measurements: {MEASURED}")
    assert MEASURED["report_bytes"] < MAX_BYTES


def test_printable(browser: Browser, demo_report: Path) -> None:
    """Printed to PDF with the print stylesheet: pages come out, nothing fails."""
    tab = browser.open(demo_report.as_uri())
    pdf = browser.send("Page.printToPDF", tab.id, printBackground=True)["data"]
    assert len(pdf) > 10_000
    assert tab.page.errors == []


def test_the_browser_checks_can_fail(browser: Browser, tmp_path: Path) -> None:
    """A page with a remote image and a console error: both are seen (so their absence means something)."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom")</script></body></html>')
    seen = browser.open(page.as_uri()).page
    assert any("boom" in e for e in seen.errors)
    assert "http://127.0.0.1:9/x.png" in seen.requests
