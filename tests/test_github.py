"""--format github: one workflow-command annotation per finding at or above --fail-on, escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from anomaly_cli.render.github import command, escape_data, escape_property
from tests.demo_fixture import at_or_above, build, json_findings

ANNOTATION = re.compile(r"^::(error|warning|notice) title=([^:]*)::(.*)$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict]:
    db, until = build(tmp_path_factory.mktemp("github"))
    return db, until, json_findings(db, until)


def unescape(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


@pytest.mark.parametrize("fail_on", ["low", "medium", "high", "critical"])
def test_one_annotation_per_finding_at_or_above_fail_on(demo, cli, fail_on: str, tmp_path: Path) -> None:
    db, until, findings = demo
    out = tmp_path / "annotations.txt"
    run = cli("scan", "all", "--db", db, "--until", until, "--fail-on", fail_on, "--format", "github", "-o", str(out))
    assert run.exit_code == 1
    lines = out.read_text(encoding="utf-8").splitlines()
    parsed = [ANNOTATION.match(line) for line in lines]
    assert all(parsed), lines
    got = sorted((m.group(1), unescape(m.group(2)), unescape(m.group(3))) for m in parsed if m.group(1) != "notice")
    expected = sorted(("error" if f["severity"] in ("high", "critical") else "warning", f"anomaly {check}",
                       f["message"]) for check, found in findings.items() for f in at_or_above(found, fail_on))
    assert got == expected and len(got) > 0


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert escape_data("50% off\r\nnext") == "50%25 off%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    line = command("error", "anomaly price", "Eve\n::error title=x::forged")
    assert line.count("\n") == 1 and line.endswith("%0A::error title=x::forged\n")


def test_never_annotates_nothing(demo, cli) -> None:
    db, until, _ = demo
    run = cli("scan", "all", "--db", db, "--until", until, "--fail-on", "never", "--format", "github", "-q")
    assert run.exit_code == 0
    assert [line for line in run.stdout.splitlines() if not line.startswith("::notice")] == []
