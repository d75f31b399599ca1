"""The demo database for the format tests, and its findings as JSON to compare other formats with."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from anomaly_cli.cli import app
from anomaly_cli.demo import build_demo_database
from anomaly_cli.model import Severity


def build(directory: Path) -> tuple[str, str]:
    """The demo at `directory`/demo.db and an --until (this minute) that makes every run judge the same."""
    now = datetime.now().replace(second=0, microsecond=0)
    build_demo_database(directory / "demo.db", now=now)
    return str(directory / "demo.db"), now.isoformat(timespec="minutes")


def json_findings(db: str, until: str) -> dict[str, list[dict[str, Any]]]:
    """check -> its findings, from --format json."""
    result = CliRunner().invoke(app, ["scan", "all", "--db", db, "--until", until, "--format", "json", "-q"],
                                env={}, catch_exceptions=False)
    return {c["check"]: c["findings"] for c in json.loads(result.stdout)["checks"]}


def at_or_above(findings: list[dict[str, Any]], fail_on: str) -> list[dict[str, Any]]:
    if fail_on == "never":
        return []
    return [f for f in findings if Severity.parse(f["severity"]) >= Severity.parse(fail_on)]
