"""The behaviour check: judging without a database, unseen shops, three engines, the model file, evaluate."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from anomaly_cli.demo import demo_rows
from anomaly_cli.demo_data import generate
from anomaly_cli.ml.evaluate import Labelled, score_of, suggest_threshold, summary, top_k
from anomaly_cli.ml.judge import Episode, Scored, apply_rules, episodes, risk
from anomaly_cli.ml.sql import Raw
from anomaly_cli.model import Severity
from tests.conftest import load_database

CUTS = {"low": 0.55, "medium": 0.6, "high": 0.65, "critical": 0.8}
T0 = datetime(2025, 9, 15, 2, 0)


def raw(cid: int, minutes: int, amount: int = 100_000) -> Raw:
    return Raw(minutes, cid, T0 + timedelta(minutes=minutes), 0, amount, *([0] * 25))


# --- judging, without a database -----------------------------------------------------------

def test_consecutive_anomalous_transactions_of_one_customer_merge() -> None:
    scored = [Scored(raw(1, 0), (), 0.7), Scored(raw(1, 5), (), 0.9), Scored(raw(1, 9), (), 0.3),
              Scored(raw(1, 20), (), 0.6), Scored(raw(2, 21), (), 0.56), Scored(raw(2, 22), (), 0.2)]
    got = list(episodes(iter(scored), CUTS["low"]))
    assert [(e.customer_id, e.transactions, e.total_cents) for e in got] == [(1, 2, 200_000), (1, 1, 100_000),
                                                                            (2, 1, 100_000)]
    assert got[0].score == 0.9 and got[0].end == T0 + timedelta(minutes=5)  # a normal one ends the run


@pytest.mark.parametrize(("score", "total", "expected"), [
    (0.5, "1000000", None),  # below low: never reported
    (0.56, "100", None),  # low and small: auto-approved
    (0.62, "499.99", None),  # medium and small
    (0.62, "500.00", Severity.MEDIUM),
    (0.66, "100", Severity.HIGH),  # high is reported whatever the amount
    (0.66, "100000.00", Severity.CRITICAL),  # very high value: critical
    (0.81, "1", Severity.CRITICAL),  # above every cut-off
])
def test_risk_and_business_rules(score: float, total: str, expected: Severity | None) -> None:
    level = apply_rules(risk(score, CUTS), Decimal(total), Decimal("500.00"), Decimal("100000.00"))
    assert level == expected


def test_evaluation_from_labels() -> None:
    rows = [Labelled("behaviour", "fraud", 0.9), Labelled("behaviour", "fraud", 0.8),
            Labelled("behaviour", "false_positive", 0.7), Labelled("behaviour", "fraud", 0.6),
            Labelled("behaviour", None, 0.65), Labelled("behaviour", "false_positive", 0.5)]
    s = summary(rows)
    assert (s["fraud"], s["false_positive"], s["unlabelled"], s["precision"]) == (3, 2, 1, 0.6)
    assert s["precision_bounds"] == [0.5, round(4 / 6, 4)]
    assert top_k(rows, (2, 5)) == {"top_2": 1.0, "top_5": 0.6}
    assert suggest_threshold(rows, 0.75) == {"threshold": 0.6, "precision": 0.75,
                                             "recall_of_labelled_fraud": 1.0, "alerts_at_or_above": 4}
    assert suggest_threshold(rows, 1.0)["threshold"] == 0.8
    assert score_of("... - HIGH risk (score 0.63)") == 0.63 and score_of("no score") is None


def test_help_imports_no_machine_learning() -> None:
    code = "import sys, anomaly_cli.cli.apps, anomaly_cli.cli; print(sorted(m for m in ('sklearn', 'skops', " \
           "'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- shops the tests never saw ---------------------------------------------------------------

def _hits(finding: dict[str, Any], plant: Any) -> bool:
    return (finding["customer_id"] == plant.detail["customer_id"]
            and finding["episode_end"] >= plant.detail["start"] and finding["episode_start"] <= plant.detail["end"])


def _scan(cli: Any, url: str, *args: str) -> list[dict[str, Any]]:
    run = cli("scan", "behaviour", "--db", url, "--format", "jsonl", "--fail-on", "never", *args)
    assert run.exit_code == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.mark.parametrize("seed", [101, 202, 303])
def test_unseen_shops_every_plant_high_or_critical_and_precise(seed: int, cli, tmp_path: Path) -> None:
    end = datetime(2025, 3, 5, 14, 0) + timedelta(days=seed % 7, hours=seed % 11)
    data = generate(end, seed=seed)
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load_database(url, demo_rows(data))
    plants = [p for p in data.planted if p.check == "behaviour"]
    findings = _scan(cli, url, "--since", (end - timedelta(days=3)).isoformat(), "--until", end.isoformat())
    serious = [f for f in findings if f["severity"] in ("high", "critical")]
    assert all(any(_hits(f, p) for f in serious) for p in plants)  # recall 1.0
    true = [f for f in serious if any(_hits(f, p) for p in plants)]
    assert len(true) / len(serious) >= 0.7
    for f in findings:  # every finding explains itself
        assert f["features"] and all({"name", "value", "usual"} <= set(x) for x in f["features"])
        assert f["risk"] == f["severity"] and f["model"].startswith("runtime-")


# --- three engines, one model file -----------------------------------------------------------

DEMO_END = datetime(2025, 9, 17, 9, 30)
SINCE = (DEMO_END - timedelta(days=3)).isoformat()


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[dict]]]:
    from typer.testing import CliRunner

    from anomaly_cli.cli import app

    rows = demo_rows(generate(DEMO_END))
    directory = tmp_path_factory.mktemp("model")
    url = f"sqlite:///{directory / 'train.db'}"
    load_database(url, rows)
    model = directory / "behaviour.model"
    result = CliRunner().invoke(app, ["train", "behaviour", "--db", url, "--model", str(model), "--until", SINCE])
    assert result.exit_code == 0, result.stderr
    return model, rows


@pytest.mark.engines
def test_same_model_file_same_findings_on_every_engine(engine_url: str, cli, tmp_path: Path, demo_model) -> None:
    model, rows = demo_model
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    load_database(reference, rows)
    load_database(engine_url, rows)
    args = ("--since", SINCE, "--until", DEMO_END.isoformat(), "--model", str(model))
    expected, got = _scan(cli, reference, *args), _scan(cli, engine_url, *args)
    assert got == expected
    assert {f["customer_id"] for f in got if f["severity"] in ("high", "critical")} >= {41, 42, 43}
    assert {f["model"] for f in got} == {json.loads(zipfile.ZipFile(model).read("meta.json"))["id"]}


@pytest.mark.engines
def test_measured_features_are_the_same_integers_on_every_engine(engine_url: str, tmp_path: Path,
                                                                 demo_model) -> None:
    # Every integer the model's features come from, refunds (negative amounts) included: an
    # integer division that floors on one engine and truncates on another shows here.
    from anomaly_cli.config import default_schema
    from anomaly_cli.db import connect, parse_url
    from anomaly_cli.ml import sql

    _, rows = demo_model
    transactions = [t | {"total_amount": -t["total_amount"]} if t["transaction_id"] % 37 == 0 else t
                    for t in rows["transactions"]]
    rows = rows | {"transactions": transactions}
    since = datetime.fromisoformat(SINCE)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    measured = {}
    for url in (reference, engine_url):
        load_database(url, rows)
        stmt = sql.feature_statement(default_schema(), since - timedelta(days=60), DEMO_END, since,
                                     sample_step=3, train_from=since - timedelta(days=14))
        with connect(parse_url(url)) as conn:
            measured[url] = list(sql.stream(conn, stmt))
    assert any(r.amount < 0 for r in measured[reference]) and len(measured[reference]) > 500
    assert measured[engine_url] == measured[reference]


def test_model_from_another_version_is_refused(cli, tmp_path: Path, demo_model) -> None:
    model, rows = demo_model
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load_database(url, rows)
    old = tmp_path / "old.model"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(old, "w") as dst:
        meta = json.loads(src.read("meta.json"))
        dst.writestr("meta.json", json.dumps({**meta, "sklearn": "0.24.2"}))
        dst.writestr("model.skops", src.read("model.skops"))
    run = cli("scan", "behaviour", "--db", url, "--since", SINCE, "--model", str(old))
    assert run.exit_code == 2
    assert "trained with scikit-learn 0.24.2" in run.stderr and "retrain" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    missing = cli("scan", "behaviour", "--db", url, "--since", SINCE, "--model", str(tmp_path / "none.model"))
    assert missing.exit_code == 2 and "not found" in missing.stderr


def test_train_refuses_labels_and_too_little_history(cli, tmp_path: Path, demo_model) -> None:
    _, rows = demo_model
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load_database(url, rows)
    run = cli("train", "behaviour", "--db", url, "--model", str(tmp_path / "m"), "--until", "2025-08-01")
    assert run.exit_code == 2 and "too few transactions" in run.stderr
    run = cli("train", "behaviour", "--db", url, "--model", str(tmp_path / "m"), "--labels")
    assert run.exit_code == 2 and "not implemented" in run.stderr


# --- evaluate, end to end --------------------------------------------------------------------

def test_evaluate_from_labels_given_with_alerts_label(cli, tmp_path: Path, demo_model) -> None:
    model, rows = demo_model
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load_database(url, rows)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    findings = _scan(cli, url, "--since", SINCE, "--until", DEMO_END.isoformat(), "--model", str(model),
                     "--new-only", "--state", state)
    plants = {41, 42, 43}
    for f in findings:  # the reviewer: the planted customers are fraud, one other is not
        if f["customer_id"] in plants:
            assert cli("alerts", "label", f["key"], "--fraud", "--state", state).exit_code == 0
    normal = [f for f in findings if f["customer_id"] not in plants]
    for f in normal[:2]:
        assert cli("alerts", "label", f["key"], "--false-positive", "--state", state).exit_code == 0
    run = cli("evaluate", "--state", state, "--json")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)["behaviour"]
    fraud = sum(f["customer_id"] in plants for f in findings)
    assert (result["alerts"], result["fraud"], result["false_positive"]) == (len(findings), fraud, 2)
    assert result["precision"] == round(fraud / (fraud + 2), 4)
    assert result["precision_bounds"] == [round(fraud / len(findings), 4),
                                          round((len(findings) - 2) / len(findings), 4)]
    assert result["suggested_threshold"]["recall_of_labelled_fraud"] == 1.0
    text = cli("evaluate", "--state", state, "--check", "behaviour")
    assert text.exit_code == 0 and "precision" in text.stdout and "top 5" in text.stdout
    assert cli("evaluate", "--state", state, "--since", "2099-01-01").exit_code == 0


def test_rule_checks_do_not_see_the_behavioural_plants(cli, tmp_path: Path) -> None:
    data = generate(DEMO_END)
    plants = {p.detail["customer_id"] for p in data.planted if p.check == "behaviour"}
    assert plants == {41, 42, 43}
    assert all(t["status"] == "SUCCESS" for t in data.transactions if t["customer_id"] in plants)
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load_database(url, demo_rows(data))
    run = cli("scan", "all", "--db", url, "--format", "jsonl", "--until", DEMO_END.isoformat(), "--fail-on", "never")
    assert run.exit_code == 0, run.stderr
    findings = [json.loads(line) for line in run.stdout.splitlines()]
    rules = [f for f in findings if f["check"] != "behaviour"]
    assert rules and not [f for f in rules if f.get("customer_id") in plants]
    seen = {f["customer_id"] for f in findings if f["check"] == "behaviour" and f["severity"] in ("high", "critical")}
    assert plants <= seen


def test_runs_of_one_day_fit_the_same_model_and_agree(cli, tmp_path: Path) -> None:
    """Without --since the window starts at a midnight: two runs of one day (a cron job's hourly
    runs) fit the same model, so a transaction is not reported at 07:30 and dropped at 09:30."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load_database(url, demo_rows(generate(DEMO_END, seed=7)))
    runs = {}
    for until in (DEMO_END - timedelta(hours=2), DEMO_END):
        run = cli("scan", "behaviour", "--db", url, "--until", until.isoformat(), "--format", "json",
                  "--fail-on", "never")
        assert run.exit_code == 0, run.stderr
        check = json.loads(run.stdout)["checks"][0]
        runs[until] = check
    early, late = runs.values()
    midnight = DEMO_END.replace(hour=0, minute=0) - timedelta(days=7)
    assert early["summary"]["scored_since"] == late["summary"]["scored_since"] == midnight.isoformat()
    assert early["summary"]["model"] == late["summary"]["model"]
    assert early["summary"]["cutoffs"] == late["summary"]["cutoffs"]
    cut = (DEMO_END - timedelta(hours=2)).isoformat()
    assert [f["key"] for f in early["findings"]] == [f["key"] for f in late["findings"] if f["episode_end"] < cut]
