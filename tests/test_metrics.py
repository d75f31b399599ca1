"""--metrics FILE: a Prometheus text file that prometheus_client's own parser reads back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.demo_fixture import build, json_findings


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict]:
    db, until = build(tmp_path_factory.mktemp("metrics"))
    return db, until, json_findings(db, until)


def samples(path: Path) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_parse_and_match_the_run(demo, cli, tmp_path: Path) -> None:
    db, until, findings = demo
    path = tmp_path / "textfile" / "anomaly.prom"
    path.parent.mkdir()
    before = time.time()
    run = cli("scan", "all", "--db", db, "--until", until, "--format", "json", "-q", "--metrics", str(path))
    assert run.exit_code == 1
    got = samples(path)
    for check, found in findings.items():
        for severity in ("low", "medium", "high", "critical"):
            key = (("check", check), ("severity", severity))
            assert got["anomaly_findings"][key] == sum(f["severity"] == severity for f in found)
        assert got["anomaly_check_duration_seconds"][(("check", check),)] > 0
        assert got["anomaly_check_not_evaluated"][(("check", check),)] == 0
    assert before <= got["anomaly_last_success_timestamp_seconds"][()] <= time.time()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left beside it


def test_not_evaluated_is_one(sqlite_url: str, cli, tmp_path: Path) -> None:
    from tests.conftest import load_database

    load_database(sqlite_url, {"customers": [], "products": [], "transactions": [], "transaction_items": []})
    path = tmp_path / "m.prom"
    run = cli("scan", "sales", "--db", sqlite_url, "--metrics", str(path), "-q")
    assert run.exit_code == 0
    assert samples(path)["anomaly_check_not_evaluated"] == {(("check", "sales"),): 1}


def test_a_failed_run_keeps_the_previous_file(cli, tmp_path: Path) -> None:
    """The last-success timestamp must not move when the audit did not complete."""
    path = tmp_path / "m.prom"
    path.write_text("previous\n")
    run = cli("scan", "all", "--db", str(tmp_path / "missing" / "x.db"), "--metrics", str(path))
    assert run.exit_code == 3
    assert path.read_text() == "previous\n"


def test_a_metrics_path_that_cannot_work_is_refused_first(demo, cli, tmp_path: Path) -> None:
    db, until, _ = demo
    run = cli("scan", "all", "--db", db, "--metrics", str(tmp_path / "nowhere" / "m.prom"))
    assert run.exit_code == 2
    assert run.stderr.count("\n") == 1 and "--metrics" in run.stderr
