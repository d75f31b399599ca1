"""Repeat alerts from the command line: --new-only, --cooldown, and `anomaly alerts`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CLOUDWALK = Path(__file__).resolve().parent.parent / "fixtures" / "cloudwalk"


@pytest.fixture
def monitor(sqlite_url: str, cli) -> str:
    for name, day in (("transactions_1.csv", "2025-07-12"), ("transactions_2.csv", "2025-07-13")):
        assert cli("load", "counts", str(CLOUDWALK / name), "--date", day, "--db", sqlite_url).exit_code == 0
    return sqlite_url


def keys(run) -> list[str]:
    return [json.loads(line)["key"] for line in run.stdout.splitlines()]


@pytest.mark.engines
def test_new_only_reports_each_incident_once(monitor: str, cli, state_engine_url: str, tmp_path: Path) -> None:
    # The state store on each engine in turn; the audited database is SQLite (another file).
    state = f"sqlite:///{tmp_path / 'state.db'}" if state_engine_url.startswith("sqlite") else state_engine_url
    args = ("scan", "rates", "--db", monitor, "--format", "jsonl", "--new-only", "--state", state)
    first, second = cli(*args), cli(*args)
    assert first.exit_code == 1 and len(keys(first)) >= 5
    assert second.exit_code == 0 and keys(second) == []
    # A cooldown of zero makes every incident due again.
    again = cli(*args, "--cooldown", "0m")
    assert sorted(keys(again)) == sorted(keys(first))


def test_alerts_commands_list_show_ack_and_label(monitor: str, cli, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    run = cli("scan", "rates", "--db", monitor, "--format", "jsonl", "--new-only", "--state", state)
    key = keys(run)[0]
    listed = cli("alerts", "list", "--json", "--state", state)
    assert {json.loads(line)["key"] for line in listed.stdout.splitlines()} == set(keys(run))
    assert cli("alerts", "label", key, "--fraud", "--state", state).exit_code == 0
    assert cli("alerts", "ack", key, "--state", state).exit_code == 0
    shown = json.loads(cli("alerts", "show", key, "--state", state).stdout)
    assert shown["label"] == "fraud" and shown["acked_at"]
    table = cli("alerts", "list", "--state", state, env={"COLUMNS": "200"})
    assert "rates: fraud 1" in table.stdout and "precision 1.00" in table.stdout
    # An acknowledged alert stays quiet even when its cooldown is over.
    later = cli("scan", "rates", "--db", monitor, "--format", "jsonl", "--new-only", "--state", state,
                "--cooldown", "0m")
    assert key not in keys(later) and len(keys(later)) == len(keys(run)) - 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("alerts", "show", "no-such-key"), "no alert with key"),
        (("alerts", "label", "k"), "exactly one of"),
        (("alerts", "label", "no-such-key", "--fraud"), "no-such-key"),
    ],
)
def test_alerts_errors_exit_2(cli, tmp_path: Path, args, words) -> None:
    run = cli(*args, "--state", f"sqlite:///{tmp_path / 'state.db'}")
    assert run.exit_code == 2 and words in run.stderr


def test_new_only_refuses_the_audited_database_and_limit(monitor: str, cli) -> None:
    path = monitor.removeprefix("sqlite:///")
    for state in (monitor, path, f"sqlite:///{Path(path).parent}/../{Path(path).parent.name}/{Path(path).name}"):
        same = cli("scan", "rates", "--db", monitor, "--new-only", "--state", state)
        assert same.exit_code == 2 and "must not be the audited database" in same.stderr
    limited = cli("scan", "rates", "--db", monitor, "--new-only", "--limit", "1", "--state", "sqlite:///x.db")
    assert limited.exit_code == 2 and "--limit" in limited.stderr


def test_bad_cooldown_is_a_usage_error(monitor: str, cli) -> None:
    run = cli("scan", "rates", "--db", monitor, "--new-only", "--cooldown", "soon", "--state", "sqlite:///s.db")
    assert run.exit_code == 2 and "cooldown" in run.stderr



def test_a_failed_run_does_not_silence_its_findings(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    from anomaly_cli.model import Finding, Severity
    from anomaly_cli.state import AlertStore

    findings = [Finding("rates", f"rates:k{n}", Severity.HIGH, "m", {}) for n in range(5)]
    now = datetime(2025, 7, 12, 12, 0)
    with AlertStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        assert len(list(store.new_only(iter(findings), cooldown=timedelta(hours=4), now=now))) == 5
        assert store.release() == 5  # the report never got out
        again = list(store.new_only(iter(findings), cooldown=timedelta(hours=4), now=now + timedelta(minutes=5)))
        assert len(again) == 5
        assert list(store.new_only(iter(findings), cooldown=timedelta(hours=4), now=now + timedelta(minutes=10))) == []
