"""The database layer: read-only scans, `db init`, the demo, and the shipped DDL and fixtures."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from anomaly_cli.config import default_schema
from anomaly_cli.db import connect, mask_url, parse_url
from anomaly_cli.demo_data import generate, read_csv
from anomaly_cli.errors import DatabaseError
from anomaly_cli.schema import ddl_files
from tests.conftest import load_database

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_END = datetime(2025, 9, 17, 9, 30)


def test_shipped_ddl_matches_the_schema_definition() -> None:
    for name, text in ddl_files(default_schema()).items():
        assert (ROOT / "sql" / name).read_text() == text, f"regenerate sql/{name}: python -m anomaly_cli.schema sql/"


def test_shipped_fixtures_match_the_generator() -> None:
    shipped = read_csv(ROOT / "fixtures" / "demo")
    generated = generate(FIXTURE_END)
    assert shipped.transactions == generated.transactions
    assert shipped.transaction_items == generated.transaction_items
    assert shipped.planted == generated.planted


@pytest.mark.engines
def test_scans_cannot_write(engine_url: str) -> None:
    load_database(engine_url, {"customers": [{"customer_id": 1, "customer_name": "A"}]})
    with pytest.raises(DatabaseError):
        with connect(parse_url(engine_url)) as conn:
            conn.execute(sa.text("DELETE FROM customers"))
            conn.commit()
    engine = sa.create_engine(engine_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM customers")).scalar() == 1
    engine.dispose()


@pytest.mark.engines
def test_db_init_with_demo_data_then_scan(engine_url: str, cli) -> None:
    run = cli("db", "init", "--db", engine_url, "--demo-data")
    assert run.exit_code == 0, run.stderr
    assert "transactions" in run.stderr
    scan = cli("scan", "price", "--db", engine_url, "--format", "json")
    assert scan.exit_code == 1
    assert json.loads(scan.stdout)["checks"][0]["summary"]["findings"] == 10
    again = cli("db", "init", "--db", engine_url)  # not an empty database any more
    assert again.exit_code == 3 and again.stderr.count("\n") == 1 and "already initialised" in again.stderr


def test_db_init_needs_a_database(cli) -> None:
    assert cli("db", "init").exit_code == 2


def test_demo_creates_a_database_that_ends_now(cli, clean_environment: Path) -> None:
    run = cli("demo")
    assert run.exit_code == 0, run.stderr
    assert "Transaction ID" in run.stdout  # the price findings, as text when piped
    for check in ("price", "sales", "spam", "failed", "rates", "checkout"):
        assert f"anomaly: {check}: " in run.stderr  # every check ran
    assert "skipped" not in run.stderr
    database = clean_environment / "anomaly-demo.db"
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT MAX(transaction_date) FROM transactions")).scalar()
    engine.dispose()
    age = datetime.now() - datetime.fromisoformat(last)
    # The shop's nights are quiet: just after midnight its newest sale can be over an hour old.
    assert 0 <= age.total_seconds() < 4 * 3600
    assert cli("demo").exit_code == 0  # running it again replaces the file


def test_masking_hides_passwords() -> None:
    assert mask_url("postgresql+psycopg://u:s3cret@h/db") == "postgresql+psycopg://u:***@h/db"
    assert "s3cret" not in mask_url("mysql://u:s3cret@h:notaport/db")


def test_demo_never_replaces_a_file_it_did_not_make(cli, clean_environment: Path) -> None:
    precious = clean_environment / "shop.db"
    precious.write_bytes(b"SQLite format 3\x00 not really")
    run = cli("demo", "--path", str(precious))
    assert run.exit_code == 2 and "not an anomaly demo database" in run.stderr
    assert precious.read_bytes() == b"SQLite format 3\x00 not really"
