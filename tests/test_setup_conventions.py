"""Issue 15, items 8-12: config discovery, setup commands, loading files, money and schemas."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import tomllib
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from anomaly_cli.demo_data import generate
from anomaly_cli.wording import grouped
from tests.conftest import load_database

END = datetime(2025, 9, 17, 9, 30)
UNTIL = ("--until", "2025-09-17T09:30")
CLOUDWALK = Path(__file__).resolve().parent.parent / "fixtures" / "cloudwalk"
ANOMALY = str(Path(sys.executable).with_name("anomaly"))


def demo_rows() -> dict:
    data = generate(END)
    return {"customers": data.customers, "products": data.products, "transactions": data.transactions,
            "transaction_items": data.transaction_items}


# --- 8. config discovery --------------------------------------------------------------------------

def _origin(cli, key: str, env: dict | None = None) -> tuple:
    shown = json.loads(cli("config", "show", "--json", env=env).stdout)
    return shown[key]["value"], shown[key]["from"]


def test_config_discovery_order(cli, clean_environment: Path, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    env = {"XDG_CONFIG_HOME": str(xdg)}
    assert _origin(cli, "price.below", env) == (0.75, "default")
    (xdg / "anomaly").mkdir(parents=True)
    (xdg / "anomaly" / "anomaly.toml").write_text("[price]\nbelow = 0.6\n")
    assert _origin(cli, "price.below", env) == (0.6, str(xdg / "anomaly" / "anomaly.toml"))
    (clean_environment / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # not ours: skipped
    assert _origin(cli, "price.below", env)[0] == 0.6
    (clean_environment / "pyproject.toml").write_text("[tool.anomaly.price]\nbelow = 0.5\n")
    assert _origin(cli, "price.below", env) == (0.5, str(clean_environment / "pyproject.toml"))
    (clean_environment / "anomaly.toml").write_text("[price]\nbelow = 0.4\n")
    assert _origin(cli, "price.below", env) == (0.4, str(clean_environment / "anomaly.toml"))
    assert _origin(cli, "price.below", {**env, "ANOMALY_PRICE_BELOW": "0.3"}) == (0.3, "ANOMALY_PRICE_BELOW")


def test_config_show_masks_secrets(cli) -> None:
    env = {"ANOMALY_LLM_API_KEY": "sk-very-secret", "ANOMALY_DB_URL": "postgresql://auditor:hunter2@db/shop"}
    run = cli("config", "show", env=env)
    assert run.exit_code == 0
    assert "sk-very-secret" not in run.stdout and "hunter2" not in run.stdout
    assert re.search(r"^llm\.api_key\s+= \"\*\*\*\"  # ANOMALY_LLM_API_KEY$", run.stdout, re.M)
    assert "postgresql://auditor:***@db/shop" in run.stdout


def test_config_init_writes_a_commented_starter(cli, clean_environment: Path) -> None:
    assert cli("config", "init").exit_code == 0
    text = (clean_environment / "anomaly.toml").read_text()
    assert all(v == {} for v in tomllib.loads(text).values())  # everything commented out: defaults hold
    assert cli("config", "init").exit_code == 2  # never replaces a file without --force
    # Uncommented, every line is a valid setting at its default.
    (clean_environment / "anomaly.toml").write_text(re.sub(r"^# (\w+ = .*  # .*)$", r"\1", text, flags=re.M))
    shown = json.loads(cli("config", "show", "--json").stdout)
    assert shown["price.below"] == {"value": 0.75, "from": str(clean_environment / "anomaly.toml")}
    assert shown["cooldown"]["value"] == "4h"


# --- 9. setup commands ------------------------------------------------------------------------------

@pytest.mark.engines
def test_db_init_twice_and_monitoring_tables(engine_url: str, cli) -> None:
    first = cli("db", "init", "--db", engine_url)
    assert first.exit_code == 0, first.stderr
    again = cli("db", "init", "--db", engine_url)
    assert again.exit_code == 3 and "already initialised" in again.stderr and "--if-not-exists" in again.stderr
    tolerant = cli("db", "init", "--db", engine_url, "--if-not-exists")
    assert tolerant.exit_code == 0 and "already initialised" in tolerant.stderr
    monitoring = cli("db", "init", "--db", engine_url, "--if-not-exists", "--monitoring")
    assert monitoring.exit_code == 0 and "created status_counts, checkout" in monitoring.stderr
    engine = sa.create_engine(engine_url)
    assert {"status_counts", "checkout"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


@pytest.mark.engines
def test_db_indexes_shows_present_and_missing(engine_url: str, cli) -> None:
    if engine_url.startswith("duckdb"):
        pytest.skip("DuckDB: no index is declared (tests/test_engines_duckdb.py)")
    assert cli("db", "init", "--db", engine_url).exit_code == 0
    before = cli("db", "indexes", "--db", engine_url)
    assert before.exit_code == 0
    missing = [line for line in before.stdout.splitlines() if line.startswith("CREATE INDEX")]
    present = [line for line in before.stdout.splitlines() if line.startswith("-- present:")]
    assert missing and present  # the seed schema's own transaction_id index serves one
    assert f"{len(present)} present, {len(missing)} missing" in before.stderr
    assert cli("db", "indexes", "--db", engine_url, "--apply").exit_code == 0
    after = cli("db", "indexes", "--db", engine_url)
    assert not [line for line in after.stdout.splitlines() if line.startswith("CREATE INDEX")]
    assert f"{len(present) + len(missing)} present, 0 missing" in after.stderr


# --- 10. load ------------------------------------------------------------------------------------------

def _counts(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT COUNT(*) FROM status_counts")).scalar()
    engine.dispose()
    return int(total or 0)


@pytest.mark.engines
def test_load_from_stdin_and_gzip(engine_url: str, tmp_path: Path) -> None:
    source = CLOUDWALK / "transactions_1.csv"
    packed = tmp_path / "t.csv.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    args = ["load", "counts", "--date", "2025-07-12", "--db", engine_url]
    run = subprocess.run([ANOMALY, *args[:2], str(packed), *args[2:]], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    loaded = _counts(engine_url)
    assert loaded > 4000
    for data in (source.read_bytes(), packed.read_bytes()):  # stdin, plain and gzipped
        run = subprocess.run([ANOMALY, *args[:2], "-", *args[2:]], input=data, capture_output=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert f"replaced {loaded})".encode() in run.stderr and _counts(engine_url) == loaded


def test_load_maps_columns_and_bad_rows_are_data_errors(sqlite_url: str, cli, tmp_path: Path) -> None:
    lines = (CLOUDWALK / "transactions_1.csv").read_text().splitlines()
    lines[0] = "minute,status,n"
    lines[4] = lines[4].rsplit(",", 1)[0] + ",x"
    lines[9] = lines[9].rsplit(",", 1)[0] + ",-3"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    base = ("load", "counts", str(bad), "--date", "2025-07-12", "--db", sqlite_url)
    unmapped = cli(*base)
    assert unmapped.exit_code == 2 and "--columns" in unmapped.stderr
    refused = cli(*base, "--columns", "time=minute,count=n")
    assert refused.exit_code == 3 and f"{bad}:5: count 'x' is not a whole number" in refused.stderr
    assert "2 bad rows" in refused.stderr and len(refused.stderr.splitlines()) == 1
    skipped = cli(*base, "--columns", "time=minute,count=n", "--skip-bad-rows")
    assert skipped.exit_code == 0
    assert f"{bad}:5: skipped" in skipped.stderr and f"{bad}:10: skipped" in skipped.stderr
    assert f"read {len(lines) - 1} rows, loaded {len(lines) - 3} " in skipped.stderr
    assert "bad rows skipped 2" in skipped.stderr  # 'rejected' said 0 for a load that refused rows
    assert _counts(sqlite_url) == len(lines) - 3
    assert cli(*base, "--columns", "tme=minute").exit_code == 2


# --- 11. money and schemas ----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "currency", "text"), [
    ("386343.75", "₹", "3,86,343.75"),
    ("-12345678.5", "₹", "-1,23,45,678.50"),
    ("999", "₹", "999.00"),
    ("386343.75", "$", "386,343.75"),
])
def test_amounts_are_grouped_for_the_currency(value: str, currency: str, text: str) -> None:
    assert grouped(Decimal(value), currency) == text


def test_grouping_follows_the_locale_for_other_currencies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    assert grouped(Decimal("386343.75"), "€") == "386.343,75"


def test_table_totals_in_rupees_are_grouped_the_indian_way(sqlite_url: str, cli) -> None:
    load_database(sqlite_url, demo_rows())
    run = cli("scan", "sales", "--db", sqlite_url, "-f", "table", *UNTIL, env={"COLUMNS": "200"})
    assert re.search(r"\b\d{1,2},\d{2},\d{3}\.\d{2}\b", run.stdout), run.stdout  # e.g. 3,86,343.75
    dollars = cli("scan", "sales", "--db", sqlite_url, "-f", "table", *UNTIL, "--set", "currency=$",
                  env={"COLUMNS": "200", "LC_ALL": "en_US.UTF-8"})
    assert not re.search(r"\b\d{1,2},\d{2},\d{3}\.\d{2}\b", dollars.stdout)


@pytest.mark.engines
def test_checks_work_without_a_customers_table(engine_url: str, cli, tmp_path: Path) -> None:
    if engine_url.startswith("duckdb"):
        pytest.skip("DuckDB cannot drop a table that others reference (Parquet views without it: test_engines_duckdb)")
    load_database(engine_url, demo_rows())
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    load_database(reference, demo_rows())
    engine = sa.create_engine(engine_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("PRAGMA foreign_keys = OFF"))
            conn.execute(sa.text("DROP TABLE customers"))
        else:
            conn.execute(sa.text("DROP TABLE customers CASCADE" if engine.dialect.name == "postgresql"
                                 else "SET FOREIGN_KEY_CHECKS = 0"))
            if engine.dialect.name != "postgresql":
                conn.execute(sa.text("DROP TABLE customers"))
    engine.dispose()
    args = ("scan", "all", "-f", "jsonl", *UNTIL, "--fail-on", "never")
    run = cli(*args, "--db", engine_url)
    assert run.exit_code == 0, run.stderr
    assert "table 'customers' not found: customers data left out" in run.stderr
    ours = [json.loads(line) for line in run.stdout.splitlines()]
    theirs = [json.loads(line) for line in cli(*args, "--db", reference).stdout.splitlines()]
    assert [f["key"] for f in ours] == [f["key"] for f in theirs]
    assert all(f.get("customer_name") is None for f in ours)
    assert any("Customer unknown (ID:" in f["message"] for f in ours)


def test_timestamptz_on_postgresql(cli, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from tests.conftest import _fresh_database

    databases = _fresh_database("postgresql", tmp_path)
    url = next(databases)
    request.addfinalizer(lambda: next(databases, None))
    load_database(url, demo_rows())
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    load_database(reference, demo_rows())
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE transactions ALTER COLUMN transaction_date TYPE timestamptz"))
    engine.dispose()
    args = ("scan", "all", "-f", "jsonl", *UNTIL, "--fail-on", "never")
    run = cli(*args, "--db", url)
    assert run.exit_code == 0, run.stderr
    assert run.stdout == cli(*args, "--db", reference).stdout


# --- 12. pandas ---------------------------------------------------------------------------------------

def test_pandas_is_not_a_dependency() -> None:
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert not [d for d in project["project"]["dependencies"] if d.startswith("pandas")]
    assert not subprocess.run(["grep", "-rl", "import pandas", str(Path(__file__).resolve().parent.parent
                                                                       / "anomaly_cli")],
                              capture_output=True).stdout
