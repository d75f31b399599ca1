"""DuckDB beyond the shared engine tests: the demo as DuckDB, Parquet/CSV exports through views."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("duckdb_engine", reason="the duckdb extra is not installed")

import duckdb  # noqa: E402

from anomaly_cli.config import default_schema  # noqa: E402
from anomaly_cli.demo import build_demo_database  # noqa: E402
from anomaly_cli.duck import build_demo, export_parquet  # noqa: E402

NOW = datetime(2025, 9, 17, 9, 30)
ARGS = ("--format", "json", "--until", NOW.isoformat())


def _document(stdout: str) -> dict:
    doc = json.loads(stdout)
    doc.pop("generated_at")
    doc.pop("database", None)
    return doc


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("duck")
    build_demo_database(root / "demo.db", now=NOW)
    build_demo(root / "demo.duckdb", now=NOW, mapping=default_schema())
    export_parquet(root / "demo.duckdb", root / "export")
    return root, root / "export"


def test_the_demo_as_duckdb_and_as_parquet_views_gives_the_sqlite_findings(exported, cli, tmp_path: Path) -> None:
    root, export = exported
    expected = cli("scan", "all", "--db", str(root / "demo.db"), *ARGS)
    assert expected.exit_code == 1
    on_duckdb = cli("scan", "all", "--db", f"duckdb:///{root / 'demo.duckdb'}", *ARGS)
    views = tmp_path / "views.duckdb"
    made = cli("db", "parquet", str(export), "--out", str(views))
    assert made.exit_code == 0, made.stderr
    on_parquet = cli("scan", "all", "--db", f"duckdb:///{views}", *ARGS)
    assert on_duckdb.exit_code == on_parquet.exit_code == 1
    assert _document(on_duckdb.stdout) == _document(expected.stdout) == _document(on_parquet.stdout)
    assert views.stat().st_size < 2_000_000  # views, not a copy of the data


def test_csv_exports_work_too(exported, cli, tmp_path: Path) -> None:
    root, _ = exported
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    with duckdb.connect(str(root / "demo.duckdb"), read_only=True) as conn:
        for table in ("transactions", "transaction_items", "customers", "products"):
            conn.execute(f"COPY {table} TO '{csv_dir / (table + '.csv')}' (HEADER)")
    views = tmp_path / "csv.duckdb"
    assert cli("db", "parquet", str(csv_dir), "--out", str(views)).exit_code == 0
    price = cli("scan", "price", "--db", f"duckdb:///{views}", *ARGS)
    expected = cli("scan", "price", "--db", str(root / "demo.db"), *ARGS)
    assert _document(price.stdout) == _document(expected.stdout)


def test_db_parquet_refuses_what_it_did_not_make(exported, cli, tmp_path: Path) -> None:
    _, export = exported
    precious = tmp_path / "precious.duckdb"
    with duckdb.connect(str(precious)) as conn:
        conn.execute("CREATE TABLE ledger (x INTEGER)")
    assert cli("db", "parquet", str(export), "--out", str(precious)).exit_code == 2
    with duckdb.connect(str(precious), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'ledger'").fetchone()[0]
    assert cli("db", "parquet", str(tmp_path / "nowhere"), "--out", str(tmp_path / "v.duckdb")).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("db", "parquet", str(empty), "--out", str(tmp_path / "v.duckdb")).exit_code == 2


def test_a_scan_cannot_write_to_a_duckdb_file(exported, cli) -> None:
    root, _ = exported
    missing = cli("scan", "price", "--db", f"duckdb:///{root / 'absent.duckdb'}")
    assert missing.exit_code == 3 and not (root / "absent.duckdb").exists()
    refused = cli("scan", "price", "--db", f"duckdb:///{root / 'demo.duckdb'}?access_mode=READ_WRITE")
    assert refused.exit_code == 2


def test_db_indexes_has_nothing_to_do_on_duckdb(exported, cli) -> None:
    root, _ = exported
    run = cli("db", "indexes", "--db", f"duckdb:///{root / 'demo.duckdb'}")
    assert run.exit_code == 0 and run.stdout == "" and "no index" in run.stderr


def test_an_export_without_customers_is_scanned_without_names(exported, cli, tmp_path: Path) -> None:
    import shutil

    root, export = exported
    partial = tmp_path / "partial"
    shutil.copytree(export, partial)
    (partial / "customers.parquet").unlink()
    views = tmp_path / "partial.duckdb"
    assert cli("db", "parquet", str(partial), "--out", str(views)).exit_code == 0
    args = ("scan", "all", "-f", "jsonl", "--until", NOW.isoformat(), "--fail-on", "never")
    run = cli(*args, "--db", f"duckdb:///{views}")
    assert run.exit_code == 0, run.stderr
    assert "table 'customers' not found" in run.stderr
    full = cli(*args, "--db", str(root / "demo.db"))
    assert [json.loads(x)["key"] for x in run.stdout.splitlines()] == \
        [json.loads(x)["key"] for x in full.stdout.splitlines()]
