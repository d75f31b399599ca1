"""The LLM summariser against a real HTTP server: one correct line per finding, whatever the model does."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from anomaly_cli.demo_data import generate
from anomaly_cli.model import Finding, Severity
from anomaly_cli.summarize import Pseudonyms, allowed_numbers, parse_reply, valid_line
from tests.chat_server import ChatServer, Reply, findings_of
from tests.conftest import load_database

API_KEY = "sk-test-0123456789abcdefghij"


@pytest.fixture(scope="module")
def demo_rows() -> tuple[dict, list]:
    data = generate(datetime(2025, 9, 17, 9, 30))
    rows = {"customers": data.customers, "products": data.products, "transactions": data.transactions,
            "transaction_items": data.transaction_items}
    return rows, data.customers


@pytest.fixture
def shop(sqlite_url: str, demo_rows) -> str:
    load_database(sqlite_url, demo_rows[0])
    return sqlite_url


@pytest.fixture
def chat() -> Iterator[Callable[[Callable[[dict], Reply]], ChatServer]]:
    servers: list[ChatServer] = []

    def start(behaviour: Callable[[dict], Reply]) -> ChatServer:
        servers.append(ChatServer(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def lines_reply(make_line: Callable[[dict], str | None]) -> Callable[[dict], Reply]:
    """A model that answers each finding with make_line(entry) (None: leaves it out)."""
    def behaviour(request: dict) -> Reply:
        entries = findings_of(request)
        lines = [{"id": e["id"], "line": make_line(e)} for e in entries if make_line(e) is not None]
        return Reply(content=json.dumps({"lines": lines}))
    return behaviour


def sentences(stdout: str) -> list[str]:
    """The text lines without their severity tag and key: the sentence the template or model wrote."""
    return [re.sub(r"^\[[A-Z]+\] (.*) \(key [^ ]+\)$", r"\1", line) for line in stdout.splitlines()]


def scan(cli, shop: str, server: ChatServer | None, *extra: str, env: dict | None = None):
    environment = {"ANOMALY_LLM_API_KEY": API_KEY, "ANOMALY_LLM_MODEL": "test-model", **(env or {})}
    if server is not None:
        environment["ANOMALY_LLM_BASE_URL"] = server.base_url
    return cli("scan", "price", "--db", shop, "--format", "text", "--llm-timeout", "5", *extra, env=environment)


@pytest.fixture
def template_lines(cli, shop: str) -> list[str]:
    run = cli("scan", "price", "--db", shop, "--format", "text", "--summarize", "template")
    return sentences(run.stdout)


def test_good_answer_is_used_with_names_restored_locally(cli, shop, chat, template_lines) -> None:
    server = chat(lines_reply(lambda e: "Alert: " + e["draft"]))
    run = scan(cli, shop, server)
    assert run.exit_code == 1
    assert sentences(run.stdout) == ["Alert: " + line for line in template_lines]
    assert "Kevin Turner" in run.stdout  # put back on this machine
    assert "Person-" not in run.stdout
    assert server.headers[0]["authorization"] == f"Bearer {API_KEY}"


def test_no_personal_data_leaves_the_machine_by_default(cli, shop, chat, demo_rows) -> None:
    server = chat(lines_reply(lambda e: e["draft"]))
    scan(cli, shop, server, "--brief")
    sent = "\n".join(server.bodies)
    assert sent and "Person-A" in sent
    for customer in demo_rows[1]:
        for value in (customer["customer_name"], customer["email"], customer["mobile_number"]):
            assert value not in sent


def test_personal_data_is_sent_only_when_asked(cli, shop, chat) -> None:
    server = chat(lines_reply(lambda e: e["draft"]))
    scan(cli, shop, server, "--llm-send-personal-data")
    assert "Kevin Turner" in "\n".join(server.bodies)


@pytest.mark.parametrize(
    "make_line",
    [
        pytest.param(lambda e: None if e["id"] in ("F2", "F5") else e["draft"], id="lines-missing"),
        pytest.param(lambda e: e["draft"].replace(f"Transaction ID {e['fields']['transaction_id']}",
                                                  "Transaction ID 99999"), id="invented-transaction-id"),
        pytest.param(lambda e: e["draft"].replace(".00 but", ".50 but"), id="wrong-amount"),
        pytest.param(lambda e: e["draft"].replace(" on ", " on 3 "), id="invented-number"),
        pytest.param(lambda e: e["draft"] + "\nsecond line", id="two-lines"),
        pytest.param(lambda e: e["draft"].replace("Person-A", "Person-ZZ"), id="invented-person"),
        pytest.param(lambda e: 42, id="not-text"),
    ],
)
def test_bad_lines_are_replaced_by_the_template(cli, shop, chat, template_lines, make_line) -> None:
    server = chat(lines_reply(lambda e: (lambda line: line if line is None or not isinstance(line, str)
                                         else "Note: " + line)(make_line(e))))
    run = scan(cli, shop, server)
    lines = sentences(run.stdout)
    assert len(lines) == len(template_lines) == 10
    for ours, template in zip(lines, template_lines, strict=True):
        assert ours in (template, "Note: " + template)
    assert any(line in template_lines for line in lines)  # at least one line was refused


def test_reordered_lines_are_matched_by_id(cli, shop, chat, template_lines) -> None:
    def behaviour(request: dict) -> Reply:
        entries = list(reversed(findings_of(request)))
        return Reply(content=json.dumps({"lines": [{"id": e["id"], "line": "OK " + e["draft"]} for e in entries]}))

    run = scan(cli, shop, chat(behaviour))
    assert sentences(run.stdout) == ["OK " + line for line in template_lines]


def test_reordered_plain_lines_fail_the_check(cli, shop, chat, template_lines) -> None:
    def behaviour(request: dict) -> Reply:
        return Reply(content="\n".join("OK " + e["draft"] for e in reversed(findings_of(request))))

    run = scan(cli, shop, chat(behaviour))
    lines = sentences(run.stdout)
    assert len(lines) == 10
    for ours, template in zip(lines, template_lines, strict=True):
        assert ours in (template, "OK " + template)


@pytest.mark.parametrize(("status", "words"), [(401, "HTTP 401"), (429, "HTTP 429"), (500, "HTTP 500"),
                                               (404, "HTTP 404")])
def test_http_errors_fall_back_with_one_line_on_stderr(cli, shop, chat, template_lines, status, words) -> None:
    server = chat(lambda request: Reply(status=status, raw=json.dumps({"error": {"message": f"nope {API_KEY}"}})))
    run = scan(cli, shop, server)
    assert sentences(run.stdout) == template_lines
    assert run.exit_code == 1
    notes = [line for line in run.stderr.splitlines() if "llm:" in line]
    assert len(notes) == 1 and words in notes[0]
    assert API_KEY not in run.stderr
    # 429 and 500 are retried (a bounded number of times); 401 and 404 are not.
    attempts = len(server.requests)
    assert attempts == (3 if status in (429, 500) else 1)


def test_rate_limit_then_success_uses_the_model(cli, shop, chat, template_lines) -> None:
    calls = []

    def behaviour(request: dict) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            return Reply(status=429, raw='{"error": {"message": "slow down"}}')
        return lines_reply(lambda e: "Retried: " + e["draft"])(request)

    run = scan(cli, shop, chat(behaviour))
    assert sentences(run.stdout) == ["Retried: " + line for line in template_lines]


def test_malformed_reply_falls_back(cli, shop, chat, template_lines) -> None:
    run = scan(cli, shop, chat(lambda request: Reply(raw="{not json")))
    assert sentences(run.stdout) == template_lines
    assert "llm:" in run.stderr


def test_garbage_content_falls_back(cli, shop, chat, template_lines) -> None:
    run = scan(cli, shop, chat(lambda request: Reply(content="I am sorry, I cannot help with that.")))
    assert sentences(run.stdout) == template_lines


def test_server_that_never_answers_ends_within_the_timeout(cli, shop, chat, template_lines) -> None:
    server = chat(lambda request: Reply(content="late", delay=30))
    started = time.monotonic()
    run = cli("scan", "price", "--db", shop, "--format", "text", "--llm-timeout", "1.5",
              env={"ANOMALY_LLM_API_KEY": API_KEY, "ANOMALY_LLM_BASE_URL": server.base_url})
    elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 2.0
    assert sentences(run.stdout) == template_lines
    assert run.exit_code == cli("scan", "price", "--db", shop, "--format", "text").exit_code
    assert "no answer within 1.5 s" in run.stderr
    assert len(server.requests) == 1  # a timeout ends the model's part of the run


def test_unreachable_endpoint_falls_back(cli, shop, template_lines) -> None:
    run = cli("scan", "price", "--db", shop, "--format", "text", "--llm-timeout", "3",
              env={"ANOMALY_LLM_API_KEY": API_KEY, "ANOMALY_LLM_BASE_URL": "http://127.0.0.1:9/v1"})
    assert sentences(run.stdout) == template_lines
    assert "llm: cannot reach" in run.stderr


def test_machine_formats_never_call_the_model(cli, shop, chat) -> None:
    server = chat(lines_reply(lambda e: "X " + e["draft"]))
    with_llm = scan(cli, shop, server, "--format", "json")
    without = cli("scan", "price", "--db", shop, "--format", "json")
    assert server.requests == []
    strip = lambda text: [c["findings"] for c in json.loads(text)["checks"]]  # noqa: E731
    assert strip(with_llm.stdout) == strip(without.stdout)


def test_findings_go_in_bounded_chunks_and_max_findings_caps_them(cli, shop, chat, template_lines) -> None:
    server = chat(lines_reply(lambda e: "M " + e["draft"]))
    run = scan(cli, shop, server, "--llm-max-findings", "7", env={"ANOMALY_LLM_CHUNK_SIZE": "3"})
    assert [len(findings_of(r)) for r in server.requests] == [3, 3, 1]
    lines = sentences(run.stdout)
    assert lines[:7] == ["M " + line for line in template_lines[:7]]
    assert lines[7:] == template_lines[7:]


def test_table_gets_a_message_column_from_the_model(cli, shop, chat) -> None:
    server = chat(lines_reply(lambda e: "Tbl " + e["draft"]))
    run = scan(cli, shop, server, "--format", "table")
    assert "Message" in run.stdout and "Tbl" in run.stdout


def test_brief_from_the_model_is_checked(cli, shop, chat) -> None:
    def behaviour(request: dict) -> Reply:
        if "executive summary" in request["messages"][-1]["content"]:
            return Reply(content=json.dumps({"lines": [{"id": "brief", "line":
                         "10 mispriced items, Person-A among them; check the coupon rules first."}]}))
        return lines_reply(lambda e: e["draft"])(request)

    run = scan(cli, shop, chat(behaviour), "--brief")
    summary = run.stdout.splitlines()[-1]
    assert summary.startswith("Summary (price): 10 mispriced items, ")
    assert "Person-A" not in summary


def test_brief_with_invented_numbers_falls_back_to_the_template(cli, shop, chat) -> None:
    def behaviour(request: dict) -> Reply:
        if "executive summary" in request["messages"][-1]["content"]:
            return Reply(content=json.dumps({"lines": [{"id": "brief", "line": "A loss of 7777777 rupees."}]}))
        return lines_reply(lambda e: e["draft"])(request)

    run = scan(cli, shop, chat(behaviour), "--brief")
    assert run.stdout.splitlines()[-1].startswith("Summary (price): price: 10 findings (4 critical, 4 high")


def test_summarize_llm_without_a_model_is_a_usage_error(cli, shop) -> None:
    run = cli("scan", "price", "--db", shop, "--summarize", "llm")
    assert run.exit_code == 2 and "ANOMALY_LLM_API_KEY" in run.stderr


def test_seed_and_openai_key_names_configure_the_model(cli, shop, chat) -> None:
    for name in ("AI_API_KEY", "OPENAI_API_KEY"):
        server = chat(lines_reply(lambda e: "K " + e["draft"]))
        run = cli("scan", "price", "--db", shop, "--format", "text",
                  env={name: "sk-seed-key", "ANOMALY_LLM_BASE_URL": server.base_url})
        assert sentences(run.stdout)[0].startswith("K ") and server.headers[0]["authorization"] == "Bearer sk-seed-key"


# --- the rules, without a server ------------------------------------------------------------

FINDING = Finding(
    check="price", key="price:904:1", severity=Severity.CRITICAL,
    message="Transaction ID 904: Customer Eva Green (ID: 5) purchased Mouse on September 12, 2025. The product "
            "has an actual catalog price of ₹500.00 but was sold for ₹68.00, resulting in a 86.4% discount.",
    fields={"transaction_id": 904, "customer_id": 5, "customer_name": "Eva Green", "catalog_price": Decimal("500.00"),
            "sold_price": Decimal("68.00"), "deviation_pct": Decimal("-86.40"),
            "transaction_date": datetime(2025, 9, 12, 10, 31)},
)


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("Txn 904: Person-A bought a Mouse for ₹68.00 instead of ₹500.00 (86.4% off) on Sep 12, 2025.", True),
        ("Txn 904: Person-A bought a Mouse for ₹68 instead of ₹500 (86% off).", True),
        ("Txn 905: Person-A bought a Mouse for ₹68.00.", False),  # wrong anchor
        ("Txn 904: Person-A bought a Mouse for ₹67.00.", False),  # wrong amount
        ("Txn 904: Person-B bought a Mouse.", False),  # someone else
        ("Txn 904: sold at 13.6% of catalog.", False),  # a figure the finding does not hold
        ("", False),
    ],
)
def test_line_validation(line: str, ok: bool) -> None:
    assert valid_line(line, FINDING, {"Person-A"}) is ok


def test_allowed_numbers_cover_fields_and_dates() -> None:
    numbers = allowed_numbers(FINDING)
    assert {Decimal(904), Decimal("86.40"), Decimal(2025), Decimal(31)} <= numbers


def test_pseudonyms_scrub_emails_and_phones_and_restore() -> None:
    masks = Pseudonyms()
    text = masks.scrub("note", "mail eva.green@example.com or call +91 98765 43210")
    assert "example.com" not in text and "98765" not in text
    assert masks.restore(text) == "mail eva.green@example.com or call +91 98765 43210"
    assert masks.scrub("customer_name", "Eva Green") == "Person-A"
    assert masks.scrub("customer_name", "Bob Smith") == "Person-B"
    assert masks.scrub("customer_name", "Eva Green") == "Person-A"


def test_reply_parsing_accepts_fenced_json_and_plain_lines() -> None:
    assert parse_reply('```json\n{"lines": [{"id": "F1", "line": "x"}]}\n```') == {"F1": "x"}
    assert parse_reply("one\n\ntwo\n") == ["one", "two"]
