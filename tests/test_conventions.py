"""Issue 15, as a new user meets the CLI: what a subset shows, severity and keys in every human
format, output plumbing, colour, conventions, `scan all` selection, alert scopes."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from anomaly_cli.demo_data import generate
from tests.conftest import load_database

END = datetime(2025, 9, 17, 9, 30)
UNTIL = ("--until", "2025-09-17T09:30")
CLOUDWALK = Path(__file__).resolve().parent.parent / "fixtures" / "cloudwalk"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SEVERITIES = ["critical", "high", "medium", "low"]


def demo(url: str) -> str:
    data = generate(END)
    load_database(url, {"customers": data.customers, "products": data.products,
                        "transactions": data.transactions, "transaction_items": data.transaction_items})
    return url


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo shop (every kind of planted anomaly), built once for this module; scans only read it."""
    return demo(f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}")


# --- 1. --limit shows the worst --------------------------------------------------------------

def test_limit_shows_the_most_severe_first(shop: str, cli) -> None:
    full = json.loads(cli("scan", "all", "--db", shop, "-f", "json", *UNTIL).stdout)
    limited = cli("scan", "all", "--db", shop, "-f", "json", "--limit", "3", *UNTIL)
    for everything, check in zip(full["checks"], json.loads(limited.stdout)["checks"], strict=True):
        ranks = sorted(SEVERITIES.index(f["severity"]) for f in everything["findings"])[:3]
        assert [SEVERITIES.index(f["severity"]) for f in check["findings"]] == ranks
        assert check["summary"]["findings"] == everything["summary"]["findings"]  # all still counted
    # price has 4 critical findings, the earliest of them dated after two high ones: the text
    # subset leads with the critical ones all the same.
    text = cli("scan", "price", "--db", shop, "--limit", "3", *UNTIL).stdout.splitlines()
    assert [line.split("]")[0] for line in text] == ["[CRITICAL"] * 3
    first = [f["severity"] for f in full["checks"][0]["findings"]][:3]
    assert "critical" not in first[:2]  # in the check's own (time) order the critical one is not first


# --- 2. severity and key in every human format -----------------------------------------------

def test_text_lines_lead_with_the_severity_and_end_with_the_key(shop: str, cli) -> None:
    doc = json.loads(cli("scan", "spam", "--db", shop, "-f", "json", *UNTIL).stdout)
    text = cli("scan", "spam", "--db", shop, "-f", "text", *UNTIL).stdout.splitlines()
    findings = doc["checks"][0]["findings"]
    assert len(text) == len(findings) > 0
    for line, finding in zip(text, findings, strict=True):
        # JSON's message stays the seed's sentence; only the text rendering is tagged.
        assert line == f"[{finding['severity'].upper()}] {finding['message']} (key {finding['key']})"
        assert not finding["message"].startswith("[")


def test_table_shows_keys_with_wide(shop: str, cli) -> None:
    doc = json.loads(cli("scan", "price", "--db", shop, "-f", "json", *UNTIL).stdout)
    keys = [f["key"] for f in doc["checks"][0]["findings"]]
    narrow = cli("scan", "price", "--db", shop, "-f", "table", *UNTIL).stdout
    wide = cli("scan", "price", "--db", shop, "-f", "table", "--wide", *UNTIL).stdout
    assert "┃ Key" not in narrow and "┃ Key" in wide and all(key not in narrow for key in keys)
    assert all(key in wide for key in keys)  # whole, never folded: copyable


# --- 4. output plumbing ----------------------------------------------------------------------

def test_dash_is_stdout_and_no_file_named_dash(shop: str, cli, clean_environment: Path) -> None:
    run = cli("scan", "price", "--db", shop, "-o", "-", "-f", "jsonl", *UNTIL)
    assert run.exit_code == 1 and len(run.stdout.splitlines()) == 10
    assert not (clean_environment / "-").exists()


def test_dev_stdout_into_a_pipe(shop: str) -> None:
    anomaly = Path(sys.executable).with_name("anomaly")
    run = subprocess.run([str(anomaly), "scan", "price", "--db", shop, "-o", "/dev/stdout", "-f", "jsonl",
                          *UNTIL], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert len(run.stdout.splitlines()) == 10 and json.loads(run.stdout.splitlines()[0])["check"] == "price"


@pytest.mark.parametrize(("args", "words"), [
    (["-o", "report.xlsx"], "does not write .xlsx"),
    (["-o", "report.html", "-f", "text"], "names html but --format is text"),
    (["-o", "report.sarif"], "does not write .sarif"),
    (["-o", "report.parquet"], "does not write .parquet"),
    (["-o", "out.csv", "-f", "json"], "names csv but --format is json"),
])
def test_output_names_that_contradict_the_format_are_refused(shop: str, cli, clean_environment: Path,
                                                             args: list[str], words: str) -> None:
    run = cli("scan", "price", "--db", shop, *args, *UNTIL)
    assert run.exit_code == 2 and words in run.stderr and len(run.stderr.splitlines()) == 1
    assert list(clean_environment.iterdir()) == []


def test_a_suffix_that_names_a_format_is_followed(shop: str, cli, clean_environment: Path) -> None:
    assert cli("scan", "price", "--db", shop, "-o", "out.csv", *UNTIL).exit_code == 1
    assert (clean_environment / "out.csv").read_text().startswith("check,key,severity,message")
    # A format from the environment is a default: the file's name wins over it.
    assert cli("scan", "price", "--db", shop, "-o", "b.jsonl", *UNTIL, env={"ANOMALY_FORMAT": "csv"}).exit_code == 1
    assert json.loads((clean_environment / "b.jsonl").read_text().splitlines()[0])["check"] == "price"
    assert cli("scan", "price", "--db", shop, "-o", "r.html", *UNTIL).exit_code == 1
    assert "<html" in (clean_environment / "r.html").read_text().lower()
    assert cli("scan", "price", "--db", shop, "-o", "r.xml", *UNTIL).exit_code == 1
    assert "<testsuite" in (clean_environment / "r.xml").read_text()


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run anomaly with stderr on a pseudo-terminal and stdout on a pipe: (code, stdout, stderr)."""
    anomaly = Path(sys.executable).with_name("anomaly")
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(anomaly), *args], stdout=subprocess.PIPE, stderr=slave,
                            env={**os.environ, "COLUMNS": "100", **env})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=60)
    os.close(master)
    return code, out, b"".join(chunks).decode(errors="replace")


def test_status_line_on_a_terminal_only(shop: str, tmp_path: Path) -> None:
    args = ["scan", "all", "--db", shop, "-o", str(tmp_path / "all.jsonl"), *UNTIL, "--skip", "behaviour"]
    code, out, err = _on_a_terminal(args, {})
    assert code == 1 and out == ""
    assert re.search(r"price \(2/5\): running", ANSI.sub("", err))  # the transient line, on stderr (freshness first)
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 19
    _, _, quiet = _on_a_terminal([*args, "-q"], {})
    assert quiet.strip() == ""
    # stdout piped (it may reach the same screen through `| less`): no line to get in its way.
    _, piped_out, piped = _on_a_terminal(["scan", "all", "--db", shop, "-f", "text", *UNTIL], {})
    assert "running" not in piped and "\x1b" not in piped_out and piped_out.startswith("[")


def test_the_scan_use_case_reports_progress_without_printing(shop: str, capsys) -> None:
    from anomaly_cli.config import load_settings
    from anomaly_cli.scan import build_request, run_scan
    from anomaly_cli.timewindow import parse_window

    events: list[tuple[str, dict]] = []
    settings = load_settings(flags={"db.url": shop})
    request = build_request(settings, ["price", "sales"], parse_window(None, "2025-09-17T09:30", now=END),
                            progress=lambda event, **info: events.append((event, info)))
    run_scan(request)
    assert capsys.readouterr() == ("", "")
    names = [e for e, _ in events]
    assert names[0] == "connect" and names.count("check") == 2 and names.count("check_done") == 2
    assert ("findings", {"name": "price", "count": 10}) in events


# --- 5. colour ----------------------------------------------------------------------------------

def test_force_color_and_no_color(shop: str, cli) -> None:
    args = ("scan", "price", "--db", shop, "-f", "table", *UNTIL)
    assert "\x1b[" not in cli(*args).stdout  # piped: plain
    assert "\x1b[" in cli(*args, env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[" not in cli(*args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout


def test_severity_column_is_never_cut_at_80_columns(shop: str, cli) -> None:
    for env in ({"COLUMNS": "80"}, {"COLUMNS": "80", "FORCE_COLOR": "1"}):
        run = cli("scan", "all", "--db", shop, "-f", "table", "--wide", *UNTIL, env=env)
        lines = ANSI.sub("", run.stdout).splitlines()
        assert max(len(line) for line in lines) <= 80
        cells = [line.split("│")[1].strip() for line in lines if line.startswith("│") and line.split("│")[1].strip()]
        severities = [c for c in cells if c not in ("Total",)]
        assert set(severities) <= set(SEVERITIES) and "critical" in severities


# --- 6. conventions -----------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["-h"], ["scan", "-h"], ["scan", "price", "-h"], ["alerts", "list", "-h"]])
def test_dash_h_is_help(cli, args: list[str]) -> None:
    run = cli(*args)
    assert run.exit_code == 0 and run.stdout.startswith("Usage: anomaly")


def test_completion_is_offered(cli) -> None:
    assert "--install-completion" in cli("--help").stdout
    run = cli("--show-completion", "bash")
    assert run.exit_code == 0 and "complete" in run.stdout and "_ANOMALY_COMPLETE" in run.stdout


@pytest.mark.parametrize("name", ["price", "sales", "spam", "failed", "rates", "checkout", "all"])
def test_every_scan_help_has_exit_codes_and_two_examples(cli, name: str) -> None:
    text = cli("scan", name, "--help").stdout
    assert "Exit codes: 0" in text and "3 the audit could not be completed" in text
    assert len(re.findall(rf"^\s+anomaly scan {name} ", text, re.M)) == 2


def test_one_duration_grammar(shop: str, cli, clean_environment: Path) -> None:
    for since in ("90s", "30m", "4h", "1d", "1h30m", "2w"):
        assert cli("scan", "price", "--db", shop, "--since", since).exit_code in (0, 1), since
    state = ("--state", f"sqlite:///{clean_environment / 'state.db'}")
    ok = cli("scan", "price", "--db", shop, "--new-only", "--cooldown", "1h30m", *state, *UNTIL)
    assert ok.exit_code == 1
    bare = cli("scan", "price", "--db", shop, "--new-only", "--cooldown", "30", *state)
    assert bare.exit_code == 2 and "'30' has no unit" in bare.stderr
    (clean_environment / "anomaly.toml").write_text("cooldown = 30\n")
    assert cli("scan", "price", "--db", shop, "--new-only", *state).exit_code == 2
    alone = cli("scan", "price", "--db", "x.db", "--cooldown", "30m")
    assert alone.exit_code == 2 and "--cooldown applies only with --new-only" in alone.stderr


def test_alerts_list_formats(shop: str, cli, clean_environment: Path) -> None:
    state = ("--state", f"sqlite:///{clean_environment / 'state.db'}")
    cli("scan", "price", "--db", shop, "--new-only", *state, *UNTIL)
    jsonl = cli("alerts", "list", "--format", "jsonl", *state).stdout.splitlines()
    assert len(jsonl) == 10 and json.loads(jsonl[0])["check"] == "price"
    assert cli("alerts", "list", "--json", *state).stdout.splitlines() == jsonl  # the old spelling
    doc = json.loads(cli("alerts", "list", "-f", "json", *state).stdout)
    assert len(doc["alerts"]) == 10 and doc["labels"]["price"]["unlabelled"] == 10
    assert "Key" in cli("alerts", "list", "--format", "table", *state).stdout
    assert "--json" not in cli("alerts", "list", "--help").stdout


@pytest.mark.parametrize("check", ["sales", "spam", "failed", "rates"])
def test_units_are_named_in_the_help(cli, check: str) -> None:
    text = " ".join(cli("scan", check, "--help").stdout.split())
    for flag in ("--bucket", "--history", "--min-count", "--window"):
        match = re.search(rf"{flag} [A-Z|a-z0-9]+\s+(.*?)\(config key", text)
        if match:
            assert re.search(r"weeks|days|hours|minutes|seconds|buckets|transactions|minute|hour|day|15min",
                             match.group(1)), (flag, match.group(1))


# --- 7. scan all selection ----------------------------------------------------------------------

def test_scan_all_checks_skip_and_set(shop: str, cli) -> None:
    def checks(*args: str) -> dict:
        run = cli("scan", "all", "--db", shop, "-f", "json", *UNTIL, *args)
        assert run.exit_code in (0, 1), run.stderr
        return {c["check"]: c for c in json.loads(run.stdout)["checks"]}

    assert list(checks("--checks", "price,sales")) == ["price", "sales"]
    assert list(checks("--skip", "spam,failed,behaviour")) == ["freshness", "price", "sales"]
    chosen = checks("--checks", "price", "--set", "price.below=0.5", "--set", "price.above=2")
    assert chosen["price"]["params"] == {"below": 0.5, "above": 2.0}
    assert chosen["price"]["summary"]["findings"] == 3
    bad = cli("scan", "all", "--db", shop, "--checks", "prise")
    assert bad.exit_code == 2 and "did you mean 'price'" in bad.stderr
    typo = cli("scan", "all", "--db", shop, "--set", "price.blow=0.5")
    assert typo.exit_code == 2 and "did you mean 'price.below'" in typo.stderr
    # Named checks must be able to run: their missing tables are an error, not a skip.
    assert cli("scan", "all", "--db", shop, "--checks", "rates").exit_code == 3


def test_scan_all_on_a_monitoring_only_database(sqlite_url: str, cli) -> None:
    for name, day in (("transactions_1.csv", "2025-07-12"), ("checkout_1.csv", "2025-07-12")):
        kind = "counts" if name.startswith("transactions") else "checkout"
        assert cli("load", kind, str(CLOUDWALK / name), "--date", day, "--db", sqlite_url).exit_code == 0
    run = cli("scan", "all", "--db", sqlite_url, "-f", "json", "--until", "2025-07-13")
    assert run.exit_code == 1, run.stderr
    assert [c["check"] for c in json.loads(run.stdout)["checks"]] == ["freshness", "rates", "checkout"]
    assert "price: skipped: table 'transactions' not found" in run.stderr


# --- 3. alert keys scoped by the audited database ------------------------------------------------

@pytest.mark.engines
def test_one_state_two_databases(shop: str, cli, state_engine_url: str, tmp_path: Path) -> None:
    # The same shop twice: every key matches. The state lives on each engine in turn.
    twin = demo(f"sqlite:///{tmp_path / 'twin.db'}")
    state = f"sqlite:///{tmp_path / 'state.db'}" if state_engine_url.startswith("sqlite") else state_engine_url
    args = ("scan", "price", "-f", "jsonl", "--new-only", "--state", state, *UNTIL)
    first = cli(*args, "--db", shop)
    second = cli(*args, "--db", twin)
    assert len(first.stdout.splitlines()) == len(second.stdout.splitlines()) == 10
    assert cli(*args, "--db", shop).stdout == "" and cli(*args, "--db", twin).stdout == ""
    key = json.loads(first.stdout.splitlines()[0])["key"]
    ambiguous = cli("alerts", "ack", key, "--state", state)
    assert ambiguous.exit_code == 2 and "2 databases" in ambiguous.stderr
    assert cli("alerts", "ack", key, "--state", state, "--db", twin).exit_code == 0
    listed = [json.loads(line) for line in cli("alerts", "list", "-f", "jsonl", "--state", state).stdout.splitlines()]
    assert len(listed) == 20 and len({r["scope"] for r in listed}) == 2


@pytest.mark.engines
def test_a_store_from_before_scopes_is_migrated(state_engine_url: str, shop: str, cli) -> None:
    from anomaly_cli.state import ALERTS

    old = sa.MetaData()
    columns = [sa.Column(c.name, c.type, primary_key=c.name == "key", nullable=c.nullable)
               for c in ALERTS.columns if c.name != "scope"]
    table = sa.Table("anomaly_alerts", old, *columns, sa.Index("ix_anomaly_alerts_check", "check"))
    engine = sa.create_engine(state_engine_url)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(table.insert(), [{"key": "price:1:1", "check": "price", "severity": 4,
                                       "first_seen": END, "last_seen": END, "times_seen": 1,
                                       "message": "old", "label": "fraud"}])
    engine.dispose()
    run = cli("scan", "price", "--db", shop, "-f", "jsonl", "--new-only", "--state", state_engine_url, *UNTIL)
    assert len(run.stdout.splitlines()) == 10, run.stderr
    listed = [json.loads(line) for line in cli("alerts", "list", "-f", "jsonl", "--state", state_engine_url).stdout.splitlines()]
    old_row = next(r for r in listed if r["key"] == "price:1:1")
    assert old_row["scope"] == "" and old_row["label"] == "fraud"
    assert cli("scan", "price", "--db", shop, "-f", "jsonl", "--new-only", "--state", state_engine_url, *UNTIL).stdout == ""
