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
    assert "10 suppressed" in third.stderr


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
    assert "\x1b" not in run.stdout and all(line.startswith("[") and "] Transaction ID" in line for line in run.stdout.splitlines())


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


# --- the environment a scan runs in -----------------------------------------------------------------

def run_shell(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ANOMALY_", "OPENAI_"))}
    environment.update(env)
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=cwd, env=environment,
                          timeout=120)


ANOMALY = f"{sys.executable} -c 'from anomaly_cli.cli import main; main()'"


@pytest.mark.parametrize(("command", "code", "line"), [
    ("{a} scan price --db {db} > /dev/full", 3, "anomaly: error: cannot write standard output: No space left on device"),
    ("ulimit -f 1; {a} scan all --db {db} -o out.json", 3, "anomaly: error: cannot write out.json: File too large"),
    ("{a} scan price --db {db} >&-", 3, "anomaly: error: standard output is closed (give --output FILE)"),
    ("PYTHONIOENCODING=ascii {a} scan price --db {db} -f text > o.txt", 3,
     "anomaly: error: cannot write standard output: its encoding (ascii) cannot show '\\u20b9' "
     "(set PYTHONIOENCODING=utf-8, or write a file with --output (always UTF-8))"),
    ("printf '\\xff\\xfe\\x00' > .env; {a} scan price --db {db}", 2, "anomaly: error: file {cwd}/.env is not UTF-8 text"),
    ("{a} scan price --db {db} --config /dev/zero", 2,
     "anomaly: error: config file /dev/zero is larger than 1024 KiB (is it the right file?)"),
    ("HOME=/proc/1 XDG_STATE_HOME= {a} scan price --db {db} --new-only -f json", 3,
     "anomaly: error: cannot create the alert state folder /proc/1/.local/state/anomaly: No such file or directory "
     "(give --state URL or set ANOMALY_STATE to a writable place)"),
    ("ANOMALY_PRICE_BELOW=2 {a} scan price --db {db}", 2,
     "anomaly: error: --below 2 is above 1: every item at catalog price would be flagged "
     "(price.below from ANOMALY_PRICE_BELOW)"),
])
def test_environment_problems_end_in_one_line(demo_db: str, tmp_path: Path, command: str, code: int, line: str) -> None:
    run = run_shell(command.format(a=ANOMALY, db=demo_db), tmp_path)
    assert run.returncode == code, run.stderr
    assert run.stderr.splitlines() == [line.format(cwd=tmp_path)]
    assert list(tmp_path.glob(".out.json.*")) == []


def test_a_closed_pipe_stops_quietly(demo_db: str, tmp_path: Path) -> None:
    run = run_shell(f"{ANOMALY} scan all --db {demo_db} -f text | head -1; echo \"exit ${{PIPESTATUS[0]}}\"", tmp_path)
    assert run.stdout.splitlines()[-1] == "exit 141" and run.stderr == ""


def test_a_bad_line_in_dotenv_is_one_warning_that_quiet_silences(demo_db: str, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ANOMALY_FAIL_ON=never\nthis is not a setting\n")
    loud = run_shell(f"{ANOMALY} scan price --db {demo_db} -f json", tmp_path)
    assert loud.returncode == 0  # the good line still applies
    assert loud.stderr.splitlines()[0] == f"anomaly: {tmp_path}/.env: line 2 is not KEY=VALUE; ignored"
    quiet = run_shell(f"{ANOMALY} scan price --db {demo_db} -f json -q", tmp_path)
    assert quiet.stderr == ""


def test_a_malformed_model_endpoint_falls_back_to_the_template(demo_db: str, cli) -> None:
    run = cli("scan", "price", "--db", demo_db, "--format", "text", "--llm-base-url", "http://[::1",
              "--llm-api-key", "k")
    assert run.exit_code == 1 and len(run.stdout.splitlines()) == 10
    assert "llm: cannot use the endpoint 'http://[::1' (InvalidURL); template lines used instead" in run.stderr


def test_an_oversized_model_reply_is_refused(demo_db: str, cli) -> None:
    server = ChatServer(lambda request: Reply(content="x" * 300_000))
    try:
        run = cli("scan", "price", "--db", demo_db, "--format", "text",
                  env={"ANOMALY_LLM_BASE_URL": server.base_url, "ANOMALY_LLM_API_KEY": "k"})
    finally:
        server.close()
    assert run.exit_code == 1 and "the reply was too long" in run.stderr
    assert all(line.startswith("[") and "] Transaction ID" in line for line in run.stdout.splitlines())
    assert json.loads(server.bodies[0])["max_tokens"] > 0


def test_a_row_stored_twice_is_one_finding(tmp_path: Path, demo_db: str, cli) -> None:
    """A copy without primary keys (an export) holds a mispriced item twice."""
    import shutil
    import sqlite3

    path = tmp_path / "dup.db"
    shutil.copy(demo_db, path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items2 AS SELECT * FROM transaction_items")
        conn.execute("INSERT INTO items2 SELECT * FROM transaction_items")
        conn.execute("DROP TABLE transaction_items")
        conn.execute("ALTER TABLE items2 RENAME TO transaction_items")
    run = cli("scan", "price", "--db", str(path), "--format", "json")
    check = json.loads(run.stdout)["checks"][0]
    keys = [f["key"] for f in check["findings"]]
    assert len(keys) == len(set(keys)) == 10
    assert check["summary"]["skipped"]["duplicate_key"] == 10
