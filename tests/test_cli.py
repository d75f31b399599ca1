"""The command line as users meet it: formats, exit codes, configuration precedence, errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from anomaly_cli.exit_codes import ExitCode, FailOn, exit_code_for
from anomaly_cli.model import Severity
from tests.conftest import load_database

WHEN = datetime(2025, 9, 12, 10, 30)

CUSTOMERS = [{"customer_id": 5, "customer_name": "Eva Green", "mobile_number": "9876500005",
              "email": "eva@example.com", "city": "Pune", "state": "MH", "pincode": "411001",
              "country": "India"}]
PRODUCTS = [
    {"product_id": "prod1005", "product_name": "Mouse", "product_price": Decimal("500.00")},
    {"product_id": "prod1003", "product_name": "Headphones", "product_price": Decimal("2000.00")},
    {"product_id": "prod1004", "product_name": "Keyboard", "product_price": Decimal("1000.00")},
]


def small_shop(*items: tuple[str, str, int]) -> dict:
    """One transaction per (product_id, sold price, quantity)."""
    transactions, lines = [], []
    for n, (product, price, quantity) in enumerate(items, start=1):
        transactions.append({"transaction_id": 900 + n, "customer_id": 5, "transaction_date": WHEN,
                             "status": "SUCCESS", "total_amount": Decimal(price) * quantity})
        lines.append({"item_id": n, "transaction_id": 900 + n, "product_id": product,
                      "product_name": None, "product_price": Decimal(price), "quantity": quantity})
    return {"customers": CUSTOMERS, "products": PRODUCTS, "transactions": transactions,
            "transaction_items": lines}


@pytest.fixture
def shop(sqlite_url: str) -> str:
    """A SQLite shop with one critical discount (Mouse at 68), one high markup, one boundary item."""
    load_database(sqlite_url, small_shop(("prod1005", "68.00", 1), ("prod1003", "2500.00", 2),
                                         ("prod1004", "750.00", 1)))
    return sqlite_url


# --- exit codes -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("worst", "fail_on", "code"),
    [
        (None, FailOn.LOW, ExitCode.OK),
        (Severity.LOW, FailOn.LOW, ExitCode.FINDINGS),
        (Severity.HIGH, FailOn.CRITICAL, ExitCode.OK),
        (Severity.CRITICAL, FailOn.CRITICAL, ExitCode.FINDINGS),
        (Severity.MEDIUM, FailOn.MEDIUM, ExitCode.FINDINGS),
        (Severity.CRITICAL, FailOn.NEVER, ExitCode.OK),
    ],
)
def test_exit_code_mapping(worst, fail_on, code) -> None:
    assert exit_code_for(worst, fail_on) is code


@pytest.mark.parametrize(("fail_on", "code"), [("low", 1), ("high", 1), ("critical", 1), ("never", 0)])
def test_fail_on_decides_the_exit_code(shop: str, cli, fail_on: str, code: int) -> None:
    run = cli("scan", "price", "--db", shop, "--fail-on", fail_on, "--format", "json")
    assert run.exit_code == code


def test_clean_database_exits_zero(sqlite_url: str, cli) -> None:
    load_database(sqlite_url, small_shop(("prod1005", "500.00", 1)))
    run = cli("scan", "price", "--db", sqlite_url)
    assert run.exit_code == 0
    assert run.stdout == ""
    assert "price: 0 findings" in run.stderr


# --- formats ---------------------------------------------------------------------------

def test_json_document_follows_the_contract(shop: str, cli) -> None:
    run = cli("scan", "price", "--db", shop, "--format", "json", "--since", "2025-09-01", "--until", "2025-10-01")
    doc = json.loads(run.stdout)
    assert doc["tool"] == "anomaly" and doc["version"]
    assert doc["generated_at"].endswith("Z")
    assert doc["window"] == {"since": "2025-09-01T00:00:00", "until": "2025-10-01T00:00:00"}
    (check,) = doc["checks"]
    assert check["check"] == "price"
    assert check["params"] == {"below": 0.75, "above": 1.05}
    assert check["summary"]["findings"] == 2
    assert check["summary"]["by_severity"] == {"critical": 1, "high": 1}
    mouse = next(f for f in check["findings"] if f["product_id"] == "prod1005")
    assert list(mouse)[:4] == ["check", "key", "severity", "message"]
    assert mouse["deviation_pct"] == -86.4 and mouse["direction"] == "discount"
    assert mouse["product_name"] == "Mouse"  # from the catalog when the item has none
    # Money is written with two decimals, exactly.
    assert '"catalog_price": 500.00' in run.stdout and '"revenue_impact": -1000.00' in run.stdout


def test_jsonl_is_one_finding_per_line(shop: str, cli) -> None:
    run = cli("scan", "price", "--db", shop, "--format", "jsonl")
    lines = run.stdout.splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["severity"] for line in lines] == ["critical", "high"]


def test_csv_has_a_header_and_stable_columns(shop: str, cli) -> None:
    run = cli("scan", "price", "--db", shop, "--format", "csv")
    rows = list(csv.reader(io.StringIO(run.stdout)))
    assert rows[0][:6] == ["check", "key", "severity", "message", "transaction_id", "item_id"]
    assert rows[0][-1] == "revenue_impact"
    assert len(rows) == 3
    assert rows[1][rows[0].index("sold_price")] == "68.00"


def test_text_is_the_seed_sentence_and_no_colour_when_piped(shop: str, cli) -> None:
    run = cli("scan", "price", "--db", shop)  # stdout is not a terminal here: text by default
    # The seed's sentence, led by the severity and followed by the key to paste into `alerts ack`.
    assert run.stdout.splitlines()[0] == (
        "[CRITICAL] Transaction ID 901: Customer Eva Green (ID: 5) purchased Mouse on September 12, 2025. "
        "The product has an actual catalog price of ₹500.00 but was sold for ₹68.00, resulting in a "
        "86.4% discount. This represents a CRITICAL price anomaly - significant revenue loss. (key price:901:1)"
    )
    assert "\x1b[" not in run.stdout + run.stderr


def test_table_shows_counts_and_revenue_impact(shop: str, cli) -> None:
    run = cli("scan", "price", "--db", shop, "--format", "table")
    assert "\x1b[" not in run.stdout
    assert "Eva Green" in run.stdout and "critical" in run.stdout
    assert "2 findings (1 critical, 1 high)" in run.stdout
    assert "total revenue impact ₹-568.00" in run.stdout  # 432 loss - 1000 overcharge


def test_limit_caps_the_findings_shown_but_not_counted(shop: str, cli) -> None:
    run = cli("scan", "price", "--db", shop, "--format", "json", "--limit", "1")
    check = json.loads(run.stdout)["checks"][0]
    assert len(check["findings"]) == 1
    assert check["summary"]["findings"] == 2 and check["summary"]["shown"] == 1
    assert run.exit_code == 1


def test_window_bounds_the_transaction_date(shop: str, cli) -> None:
    inside = cli("scan", "price", "--db", shop, "--format", "jsonl", "--since", "2025-09-12T10:30")
    outside = cli("scan", "price", "--db", shop, "--format", "jsonl", "--until", "2025-09-12T10:30")
    assert len(inside.stdout.splitlines()) == 2  # since is inclusive
    # until is exclusive: no finding, and the window holds no transaction, which JSONL says
    assert outside.exit_code == 0 and [json.loads(line) for line in outside.stdout.splitlines()] == [
        {"record": "summary", "check": "price", "status": "not_evaluated", "reason": "no transactions in the window",
         "findings": 0, "by_severity": {}, "revenue_impact": 0, "skipped": {}}]


# --- output files -------------------------------------------------------------------------

def test_output_is_written_atomically_with_format_from_suffix(shop: str, cli, tmp_path: Path) -> None:
    target = tmp_path / "nightly.json"
    run = cli("scan", "price", "--db", shop, "--output", str(target))
    assert run.stdout == ""
    assert json.loads(target.read_text())["checks"][0]["summary"]["findings"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".nightly")] == []


def test_failed_scan_leaves_previous_output_untouched(tmp_path: Path, cli) -> None:
    target = tmp_path / "nightly.json"
    target.write_text("yesterday's report")
    run = cli("scan", "price", "--db", str(tmp_path / "missing.db"), "--output", str(target))
    assert run.exit_code == 3
    assert target.read_text() == "yesterday's report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "nightly.json"]


def test_unwritable_output_exits_3_with_one_line(shop: str, cli, tmp_path: Path) -> None:
    run = cli("scan", "price", "--db", shop, "--output", str(tmp_path / "no-such-dir" / "out.json"))
    assert run.exit_code == 3
    assert run.stderr.count("\n") == 1 and "cannot write" in run.stderr


# --- configuration precedence: flag > environment > file > default ---------------------------

def test_precedence_flag_over_env_over_file_over_default(shop: str, cli, clean_environment: Path) -> None:
    def findings(*extra: str, env: dict | None = None) -> int:
        run = cli("scan", "price", "--db", shop, "--format", "json", *extra, env=env)
        return json.loads(run.stdout)["checks"][0]["params"]["below"]

    assert findings() == 0.75
    (clean_environment / "anomaly.toml").write_text("[price]\nbelow = 0.5\n")
    assert findings() == 0.5
    assert findings(env={"ANOMALY_PRICE_BELOW": "0.6"}) == 0.6
    assert findings("--below", "0.7", env={"ANOMALY_PRICE_BELOW": "0.6"}) == 0.7


def test_database_url_from_config_file_and_env(shop: str, cli, clean_environment: Path) -> None:
    (clean_environment / "anomaly.toml").write_text(f'[db]\nurl = "{shop}"\n')
    assert cli("scan", "price", "--format", "jsonl").exit_code == 1
    run = cli("scan", "price", env={"ANOMALY_DB_URL": "sqlite:///nowhere.db"})
    assert run.exit_code == 3 and "nowhere.db" in run.stderr


def test_dotenv_file_supplies_the_environment(shop: str, cli, clean_environment: Path) -> None:
    (clean_environment / ".env").write_text(f"ANOMALY_DB_URL={shop}\nANOMALY_FAIL_ON=never\n")
    run = cli("scan", "price", "--format", "jsonl")
    assert run.exit_code == 0 and len(run.stdout.splitlines()) == 2


def test_explicit_config_file(shop: str, cli, tmp_path: Path) -> None:
    config = tmp_path / "audit.toml"
    config.write_text('fail_on = "never"\n[price]\nabove = 3.0\n')
    run = cli("scan", "price", "--db", shop, "--config", str(config), "--format", "jsonl")
    assert run.exit_code == 0 and len(run.stdout.splitlines()) == 1  # the markup is no longer flagged


def test_table_and_column_mapping(sqlite_url: str, cli, clean_environment: Path) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER, buyer INTEGER, placed_at TEXT, state TEXT, "
                             "total_amount NUMERIC)"))
        conn.execute(sa.text("CREATE TABLE lines (item_id INTEGER, transaction_id INTEGER, product_id TEXT, "
                             "product_name TEXT, product_price NUMERIC, quantity INTEGER)"))
        conn.execute(sa.text("CREATE TABLE products (product_id TEXT, product_name TEXT, product_price NUMERIC)"))
        conn.execute(sa.text("CREATE TABLE customers (customer_id INTEGER, customer_name TEXT)"))
        conn.execute(sa.text("INSERT INTO orders VALUES (1, 7, '2025-09-12 10:00:00', 'ok', 68)"))
        conn.execute(sa.text("INSERT INTO lines VALUES (1, 1, 'p', 'Mouse', 68, 1)"))
        conn.execute(sa.text("INSERT INTO products VALUES ('p', 'Mouse', 500)"))
    engine.dispose()
    (clean_environment / "anomaly.toml").write_text(
        "[schema.transactions]\ntable = 'orders'\ntransaction_id = 'id'\ncustomer_id = 'buyer'\n"
        "transaction_date = 'placed_at'\nstatus = 'state'\n"
        "[schema.transaction_items]\ntable = 'lines'\n"
    )
    run = cli("scan", "price", "--db", sqlite_url, "--format", "jsonl")
    finding = json.loads(run.stdout)
    assert finding["transaction_id"] == 1 and finding["customer_id"] == 7 and finding["status"] == "ok"


def test_seed_mysql_variables_build_the_url(tmp_path: Path) -> None:
    from anomaly_cli.config import load_settings

    settings = load_settings(flags={}, check_params={}, cwd=tmp_path, environ={
        "MYSQL_HOST": "db.internal:3307", "MYSQL_USER": "shop", "MYSQL_PASSWORD": "p@ss:word",
        "MYSQL_DB": "anology_superteams"})
    url = sa.engine.make_url(settings["db.url"])
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == (
        "mysql+pymysql", "db.internal", 3307, "shop", "p@ss:word", "anology_superteams")


# --- bad input: one line on stderr, the right code, no traceback -------------------------------

@pytest.mark.parametrize(
    ("args", "env", "code", "words"),
    [
        (["--db", "notadriver://x"], {}, 2, "unsupported database driver"),
        (["--db", "mysql+pymysql://u:p@[::1"], {}, 2, "cannot parse database URL"),
        (["--since", "2025-09-10", "--until", "2025-09-01"], {}, 2, "is not before --until"),
        (["--since", "last tuesday"], {}, 2, "is not a date"),
        (["--format", "xml"], {}, 2, "--format"),
        (["--below", "-0.5"], {}, 2, "price.below"),
        (["--above", "0.9"], {}, 2, "--above"),
        (["--limit", "0"], {}, 2, "--limit"),
        (["--no-such-option"], {}, 2, "No such option"),
        ([], {"ANOMALY_FAIL_ON": "sometimes"}, 2, "fail_on"),
        ([], {"ANOMALY_SCHEMA_TRANSACTIONS_TABLE": "orders; DROP TABLE x"}, 2, "schema.transactions.table"),
        ([], {"ANOMALY_SCHEMA_TRANSACTIONS_TABLE": "orders"}, 3, "schema.transactions.table"),
        ([], {"ANOMALY_SCHEMA_TRANSACTION_ITEMS_PRODUCT_PRICE": "price"}, 3,
         "schema.transaction_items.product_price"),
    ],
)
def test_bad_input_gets_one_line_and_the_right_code(shop: str, cli, args, env, code, words) -> None:
    run = cli("scan", "price", "--db", shop, *args, env=env)
    assert run.exit_code == code, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert words in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_bad_config_file_exits_2(shop: str, cli, clean_environment: Path) -> None:
    (clean_environment / "anomaly.toml").write_text("[price\nbelow=")
    run = cli("scan", "price", "--db", shop)
    assert run.exit_code == 2 and "not valid TOML" in run.stderr
    (clean_environment / "anomaly.toml").write_text("[price]\nbelwo = 0.5\n")
    run = cli("scan", "price", "--db", shop)
    assert run.exit_code == 2 and "price.belwo" in run.stderr


def test_no_database_configured_exits_2(cli) -> None:
    run = cli("scan", "price")
    assert run.exit_code == 2 and "no database given" in run.stderr


@pytest.mark.parametrize(
    "url",
    ["mysql+pymysql://root:hunter2@127.0.0.1:1/shop", "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/shop"],
)
def test_unreachable_server_exits_3_without_leaking_the_password(cli, url: str) -> None:
    run = cli("scan", "price", "--db", url)
    assert run.exit_code == 3
    assert "hunter2" not in run.stderr and "***" in run.stderr
    assert run.stderr.count("\n") == 1


def test_debug_shows_the_traceback_and_keeps_the_exit_code(cli) -> None:
    run = cli("--debug", "scan", "price", "--db", "missing.db")
    assert run.exit_code == 3
    assert "Traceback" in run.stderr and run.stderr.rstrip().endswith("(check --db, or create one with 'anomaly db init')")
    assert cli("scan", "price", "--db", "missing.db", "--since", "x", "--debug").exit_code == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--since", ""], "--since ''"),
        (["--until", "  "], "--until"),
        (["--since", "100000000000h"], "is not a date"),
        (["--since", "0001-01-01T00:00+01:00"], "out of range"),
        (["--below", "0.7500000000000000001"], "6 decimal places"),
    ],
)
def test_edge_values_are_usage_errors(shop: str, cli, args, words) -> None:
    run = cli("scan", "price", "--db", shop, *args)
    assert run.exit_code == 2 and words in run.stderr and run.stderr.count("\n") == 1


def test_output_never_replaces_the_audited_database(shop: str, cli) -> None:
    path = shop.removeprefix("sqlite:///")
    before = Path(path).read_bytes()
    for target in (path, path + "-wal"):
        run = cli("scan", "price", "--db", shop, "--format", "json", "--output", target)
        assert run.exit_code == 2 and "is the audited database" in run.stderr
    assert Path(path).read_bytes() == before


def test_output_through_a_symlink_replaces_its_target(shop: str, cli, tmp_path: Path) -> None:
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    link.symlink_to(real)
    assert cli("scan", "price", "--db", shop, "--output", str(link)).exit_code == 1
    assert link.is_symlink() and json.loads(real.read_text())["checks"][0]["summary"]["findings"] == 2


def test_output_to_a_directory_is_a_usage_error(shop: str, cli, tmp_path: Path) -> None:
    run = cli("scan", "price", "--db", shop, "--output", str(tmp_path))
    assert run.exit_code == 2 and "is a directory" in run.stderr


def test_no_arguments_prints_the_help(cli) -> None:
    run = cli()
    assert run.exit_code == 2 and "Usage: anomaly" in run.stderr and "anomaly: error" not in run.stderr


def test_help_is_fast_and_lists_every_check() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMALY_")}
    out = subprocess.run([sys.executable, "-m", "anomaly_cli", "scan", "--help"], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert "price" in out and "all" in out
    # --help must not import the heavy libraries (timings live in the benchmark).
    probe = ("import sys, anomaly_cli.cli as c; "
             "print(sorted(m for m in ('sqlalchemy','pandas','openai') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
