"""Reliability of a scan's own output: signals, failed outputs and alert claims, terminal and
formula injection, and personal data kept from the model for every check."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from anomaly_cli.checks import registry
from tests.chat_server import ChatServer, Reply, findings_of

ROOT = Path(__file__).resolve().parents[1]
EVIL_NAME = "Eve\x1b]0;owned\x07\x1b[2J\r\nFAKE LINE"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from anomaly_cli.demo import build_demo_database

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    build_demo_database(path, now=datetime.now())
    return str(path)


def anomaly(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ANOMALY_", "OPENAI_"))}
    environment.update(env or {})
    return subprocess.Popen([sys.executable, "-c", "from anomaly_cli.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                            **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def hanging_model() -> Iterator[ChatServer]:
    server = ChatServer(lambda request: Reply(content="{}", delay=30))
    yield server
    server.close()


# --- signals ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_mid_scan_leaves_no_file_and_no_claims(demo_db: str, tmp_path: Path, hanging_model: ChatServer,
                                                        signum: int, code: int) -> None:
    """The scan is held in a model request after its --new-only claims were made."""
    state = f"sqlite:///{tmp_path / 'state.db'}"
    target = tmp_path / "report.txt"
    env = {"ANOMALY_LLM_BASE_URL": hanging_model.base_url, "ANOMALY_LLM_API_KEY": "k", "ANOMALY_LLM_TIMEOUT": "60"}
    proc = anomaly("scan", "price", "--db", demo_db, "--new-only", "--state", state, "--format", "text",
                   "--output", str(target), env=env)
    deadline = time.monotonic() + 60
    while not hanging_model.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hanging_model.requests, "the scan never reached the model"
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == f"anomaly: terminated ({signal.Signals(signum).name})"
    assert "Traceback" not in stderr
    assert list(tmp_path.glob(".report.txt.*")) == [] and not target.exists()
    again = anomaly("scan", "price", "--db", demo_db, "--new-only", "--state", state, "--format", "jsonl")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 1, err
    assert len(out.splitlines()) == 10  # nothing was silenced by the interrupted run


# --- a failed output keeps the findings un-notified ---------------------------------------------

@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_failed_output_does_not_silence_alerts(demo_db: str, tmp_path: Path, cli) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    failed = cli("scan", "price", "--db", demo_db, "--new-only", "--state", state, "--format", "json",
                 "--output", "/dev/full")
    assert failed.exit_code == 3, failed.stderr
    assert failed.stderr.count("\n") == 1 and "/dev/full" in failed.stderr
    again = cli("scan", "price", "--db", demo_db, "--new-only", "--state", state, "--format", "jsonl")
    assert again.exit_code == 1 and len(again.stdout.splitlines()) == 10
    third = cli("scan", "price", "--db", demo_db, "--new-only", "--state", state, "--format", "jsonl")
    assert third.exit_code == 0 and third.stdout == ""
    assert "10 already reported" in third.stderr


# --- injection ------------------------------------------------------------------------------------

@pytest.fixture
def evil_db(tmp_path: Path, demo_db: str) -> str:
    """The demo with customer 5 renamed to a name full of escape sequences and a line break."""
    import shutil
    import sqlite3

    path = tmp_path / "evil.db"
    shutil.copy(demo_db, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE customers SET customer_name = ? WHERE customer_id IN "
                     "(SELECT customer_id FROM transactions t JOIN transaction_items i USING (transaction_id) "
                     " JOIN products p USING (product_id) WHERE i.product_price < p.product_price * 0.75)",
                     (EVIL_NAME,))
        conn.execute("UPDATE customers SET customer_name = '=HYPERLINK(\"http://x\")' WHERE customer_id = 9")
    return str(path)


@pytest.mark.parametrize("fmt", ["text", "table"])
def test_control_characters_never_reach_a_terminal(evil_db: str, cli, fmt: str) -> None:
    run = cli("scan", "price", "--db", evil_db, "--format", fmt)
    assert run.exit_code == 1
    assert "\x1b" not in run.stdout and "\x07" not in run.stdout and "\r" not in run.stdout
    assert "\\x1b]0;owned\\x07" in run.stdout
    if fmt == "text":
        lines = run.stdout.splitlines()
        assert len(lines) == 10 and not any(line.startswith("FAKE LINE") for line in lines)


def test_csv_cells_that_would_run_as_formulas_are_quoted(evil_db: str, cli) -> None:
    run = cli("scan", "all", "--db", evil_db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    names = {r["customer_name"] for r in rows if r["customer_name"]}
    assert "'=HYPERLINK(\"http://x\")" in names and '=HYPERLINK("http://x")' not in names
    assert any(r["deviation_pct"].startswith("-") for r in rows if r["check"] == "price")  # numbers untouched


def test_json_keeps_the_data_exact(evil_db: str, cli) -> None:
    run = cli("scan", "price", "--db", evil_db, "--format", "json")
    names = {f["customer_name"] for f in json.loads(run.stdout)["checks"][0]["findings"]}
    assert EVIL_NAME in names  # programs get the data as it is, escaped by JSON itself


def test_a_model_line_with_control_characters_is_replaced_by_the_template(demo_db: str, cli) -> None:
    def reply(request: dict) -> Reply:
        lines = [{"id": e["id"], "line": "\r\x1b[K" + e["draft"]} for e in findings_of(request)]
        return Reply(content=json.dumps({"lines": lines}))

    server = ChatServer(reply)
    try:
        run = cli("scan", "price", "--db", demo_db, "--format", "text",
                  env={"ANOMALY_LLM_BASE_URL": server.base_url, "ANOMALY_LLM_API_KEY": "k"})
    finally:
        server.close()
    assert server.requests and run.exit_code == 1
    assert "\x1b" not in run.stdout and all(line.startswith("Transaction ID") for line in run.stdout.splitlines())


# --- personal data never reaches the model, whatever check wrote the line -----------------------

def test_no_customer_name_reaches_the_model_from_any_check(demo_db: str, cli) -> None:
    import sqlite3

    with sqlite3.connect(demo_db) as conn:
        people = [r for r in conn.execute("SELECT customer_name, email, mobile_number FROM customers")]
    server = ChatServer(lambda request: Reply(content=json.dumps({"lines": []})))
    try:
        for name in registry():
            extra = ["--list"] if name == "failed" else []
            run = cli("scan", name, "--db", demo_db, "--format", "text", "--brief", *extra,
                      env={"ANOMALY_LLM_BASE_URL": server.base_url, "ANOMALY_LLM_API_KEY": "k"})
            assert run.exit_code in (0, 1), run.stderr
    finally:
        server.close()
    sent = "\n".join(server.bodies)
    assert {json.loads(b)["messages"][-1]["content"].split(".", 1)[0] for b in server.bodies} >= \
        {f"Check: {name}" for name in registry()}
    for values in people:
        for value in values:
            if value:
                assert value not in sent, f"{value!r} was sent to the model"
