"""Notifications against real receivers on 127.0.0.1: JSON webhooks and an Alertmanager API
(http.server), e-mail (aiosmtpd). One grouped message per destination per run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.receivers import HttpReceiver, SmtpReceiver, http_receiver, mail_text, smtp_receiver

CLOUDWALK = Path(__file__).resolve().parent.parent / "fixtures" / "cloudwalk"
FAST = {"ANOMALY_NOTIFY_BACKOFF": "0"}  # retries without waiting


@pytest.fixture
def monitor(sqlite_url: str, cli) -> str:
    """Per-minute status counts of two days: `scan rates` finds 6 incidents (3 critical, 3 medium)."""
    for name, day in (("transactions_1.csv", "2025-07-12"), ("transactions_2.csv", "2025-07-13")):
        assert cli("load", "counts", str(CLOUDWALK / name), "--date", day, "--db", sqlite_url).exit_code == 0
    return sqlite_url


@pytest.fixture
def web() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def mail() -> Iterator[SmtpReceiver]:
    with smtp_receiver() as receiver:
        yield receiver


@pytest.fixture
def scan(monitor: str, cli, tmp_path: Path):
    state = f"sqlite:///{tmp_path / 'state.db'}"

    def run(*extra: str, env: dict[str, str] | None = None):
        return cli("scan", "rates", "--db", monitor, "--format", "jsonl", "--new-only", "--state", state, *extra,
                   env={**FAST, **(env or {})})

    return run


def lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("[")]


def test_one_grouped_message_per_destination_then_nothing_new(scan, web: HttpReceiver, mail: SmtpReceiver) -> None:
    first = scan("--notify", f"json://{web.url}/hook", "--notify", f"alertmanager://{web.url}",
                 "--notify", mail.url())
    assert first.exit_code == 1, first.stderr
    keys = [json.loads(line)["key"] for line in first.stdout.splitlines()]
    messages = [(json.loads(line)["severity"], json.loads(line)["message"]) for line in first.stdout.splitlines()]

    [hook] = web.bodies("/hook")
    assert hook["title"].startswith("anomaly: 6 findings (3 critical, 3 medium) in ")
    sent = lines(hook["message"])
    assert len(sent) == 6 and sorted(sent) == sorted(f"[{s.upper()}] {m}" for s, m in messages)
    assert sent[:3] == [line for line in sent if line.startswith("[CRITICAL]")]  # the most severe first

    [alerts] = web.bodies("/api/v2/alerts")
    assert sorted(a["labels"]["key"] for a in alerts) == sorted(keys)
    assert {a["labels"]["check"] for a in alerts} == {"rates"}
    assert all(a["labels"]["alertname"] == "anomaly" and a["startsAt"].endswith("Z")
               and a["annotations"]["summary"].startswith("[") for a in alerts)
    # Held firing for the cooldown (4 h) and a margin: the next --new-only post comes after it.
    held = {datetime.fromisoformat(a["endsAt"]) - datetime.fromisoformat(a["startsAt"]) for a in alerts}
    assert held == {timedelta(hours=4, minutes=15)}

    [letter] = mail.messages
    assert letter["Subject"].startswith("anomaly: 6 findings (3 critical, 3 medium)")
    assert sorted(lines(mail_text(letter))) == sorted(sent)
    assert "notified json://" in first.stderr

    second = scan("--notify", f"json://{web.url}/hook", "--notify", f"alertmanager://{web.url}",
                  "--notify", mail.url())
    assert second.exit_code == 0 and second.stdout == ""
    assert "6 suppressed" in second.stderr
    assert len(web.accepted) == 2 and len(mail.messages) == 1  # nothing new: nothing sent


def test_a_receiver_that_fails_twice_gets_the_message_once(scan, web: HttpReceiver) -> None:
    web.fail = 2
    run = scan("--notify", f"json://{web.url}/hook")
    assert run.exit_code == 1, run.stderr
    assert web.attempts == 3 and len(web.bodies("/hook")) == 1
    assert len(lines(web.bodies()[0]["message"])) == 6


def test_a_receiver_that_keeps_failing_exits_3_and_the_next_run_tells_again(scan, web: HttpReceiver) -> None:
    web.down = True
    secret_url = f"json://notifier:s3cr3t-pass@{web.url}/hook?token=t0ken-xyz"
    failed = scan("--notify", secret_url, "--notify", f"alertmanager://am-user:am-pass@{web.url}")
    assert failed.exit_code == 3
    [line] = failed.stderr.splitlines()  # one line, no traceback
    assert "failed after 4 attempts" in line and "and 1 other destination" in line
    for secret in ("s3cr3t-pass", "t0ken-xyz", "am-pass", "notifier"):
        assert secret not in failed.stderr
    assert web.attempts == 8 and web.accepted == []

    web.down = False
    again = scan("--notify", secret_url)
    assert again.exit_code == 1 and len(again.stdout.splitlines()) == 6
    [hook] = web.bodies("/hook")
    assert len(lines(hook["message"])) == 6


def test_severity_routing_and_the_line_limit(scan, web: HttpReceiver, mail: SmtpReceiver, tmp_path: Path) -> None:
    config = tmp_path / "anomaly.toml"
    config.write_text(f"""
[notify]
critical = ["pager", "mail"]
medium = ["chat"]
limit = 2

[notify.destinations]
pager = "alertmanager://{web.url}"
chat = "json://{web.url}/chat"
mail = "{mail.url()}"
""")
    run = scan("--config", str(config))
    assert run.exit_code == 1, run.stderr
    [alerts] = web.bodies("/api/v2/alerts")
    assert len(alerts) == 3 and {a["labels"]["severity"] for a in alerts} == {"critical"}  # every alert, no limit
    [chat] = web.bodies("/chat")
    assert chat["title"].startswith("anomaly: 3 findings (3 medium)")
    assert len(lines(chat["message"])) == 2 and chat["message"].endswith("and 1 more (1 medium)")
    [letter] = mail.messages
    body = mail_text(letter)
    assert all(line.startswith("[CRITICAL]") for line in lines(body)) and "and 1 more (1 critical)" in body
    assert "notified pager, chat, mail" in run.stderr or "notified " in run.stderr


def test_resolved_incidents_are_stored_and_sent_when_asked(scan, web: HttpReceiver) -> None:
    hook = f"json://{web.url}/hook"
    assert scan("--notify", hook).exit_code == 1
    # A later run over the same check no longer finds the 12 July incidents.
    later = scan("--since", "2025-07-13", "--notify", hook, "--notify", f"alertmanager://{web.url}",
                 "--notify-resolved")
    assert later.exit_code in (0, 1), later.stderr
    assert "resolved" in later.stderr
    messages = web.bodies("/hook")
    assert len(messages) == 2
    resolved_lines = [line for line in messages[1]["message"].splitlines() if line.startswith("RESOLVED ")]
    assert resolved_lines and "resolved" in messages[1]["title"]
    ends = [a for a in web.bodies("/api/v2/alerts")[0]
            if datetime.fromisoformat(a["endsAt"]) <= datetime.now(timezone.utc)]  # resolved: ended
    assert len(ends) == len(resolved_lines) and all(a["endsAt"].endswith("Z") for a in ends)
    # Resolved once: a third run announces nothing more about them.
    third = scan("--since", "2025-07-13", "--notify", hook, "--notify-resolved")
    assert third.exit_code == 0 and len(web.bodies("/hook")) == 2


def test_silences_suppress_and_are_counted(scan, cli, web: HttpReceiver, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    silenced = cli("alerts", "silence", "rates", "--for", "2h", "--reason", "maintenance", "--state", state)
    assert silenced.exit_code == 0, silenced.stderr
    listed = cli("alerts", "silences", "--state", state)
    assert "rates" in listed.stdout and "maintenance" in listed.stdout
    run = scan("--notify", f"json://{web.url}/hook")
    assert run.exit_code == 0 and run.stdout == "" and "6 suppressed" in run.stderr
    assert web.accepted == []
    silence_id = listed.stdout.split()[0] if listed.stdout.split()[0].isdigit() else "1"
    assert cli("alerts", "unsilence", silence_id, "--state", state).exit_code == 0
    assert len(scan("--notify", f"json://{web.url}/hook").stdout.splitlines()) == 6


def test_notify_configuration_errors_are_usage_errors(scan, tmp_path: Path, web: HttpReceiver) -> None:
    config = tmp_path / "anomaly.toml"
    config.write_text('[notify]\ncritical = ["pager"]\n')
    run = scan("--config", str(config))
    assert run.exit_code == 2 and "no destination" in run.stderr
    config.write_text('[notify]\nlimt = 3\n')
    run = scan("--config", str(config))
    assert run.exit_code == 2 and "notify.limit" in run.stderr
    run = scan("--notify", "nosuchscheme://x")
    assert run.exit_code == 2 and "notification URL" in run.stderr
    assert web.accepted == []


def test_redact_personal_replaces_names_in_the_lines() -> None:
    from anomaly_cli.model import Finding, Severity
    from anomaly_cli.notify.message import Digest, Redact

    finding = Finding("price", "price:1:1", Severity.HIGH, "Transaction 1 by Eva Green (eva@example.com) ...",
                      {"customer_name": "Eva Green"})
    plain, hidden = Digest(5), Digest(5, Redact.PERSONAL)
    plain.add(finding)
    hidden.add(finding)
    assert "Eva Green" in plain.message("db").body
    body = hidden.message("db").body
    assert "Eva Green" not in body and "eva@example.com" not in body and body.startswith("[HIGH] Transaction 1 by ")


def test_a_destination_from_the_environment_and_resolved_from_the_file(monitor: str, cli, web: HttpReceiver,
                                                                       tmp_path: Path) -> None:
    config = tmp_path / "anomaly.toml"
    config.write_text('[notify]\ncritical = ["pager"]\nresolved = true\n')
    env = {**FAST, "ANOMALY_NOTIFY_DESTINATIONS_PAGER": f"alertmanager://{web.url}"}
    # Without --new-only: every finding of the routed severity, each run; `resolved` from the
    # file needs no alert state here (it applies when there is one).
    for _ in range(2):
        run = cli("scan", "rates", "--db", monitor, "--format", "jsonl", "--config", str(config), env=env)
        assert run.exit_code == 1, run.stderr
    posts = web.bodies("/api/v2/alerts")
    assert len(posts) == 2 and all(len(p) == 3 for p in posts)
    given = cli("scan", "rates", "--db", monitor, "--notify-resolved", "--notify", f"json://{web.url}/x")
    assert given.exit_code == 2 and "--notify-resolved needs --new-only" in given.stderr
