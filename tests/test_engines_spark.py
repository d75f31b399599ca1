"""Spark SQL through a Spark Thrift Server (PyHive's hive:// dialect): every check on the demo.

The demo is written as Parquet (what a data lake holds) and registered as Spark tables; the
findings must be byte-identical to the SQLite demo's. `.ci/run` starts a local Thrift server;
outside CI these tests are skipped when none answers on ANOMALY_TEST_SPARK_URL.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import UNDER_CI

SPARK_URL = os.environ.get("ANOMALY_TEST_SPARK_URL", "hive://127.0.0.1:10000/default")
NOW = datetime(2025, 9, 17, 9, 30)
pytestmark = pytest.mark.engines


def _problem() -> str | None:
    try:
        import pyhive  # noqa: F401
        import sqlalchemy as sa

        from anomaly_cli.db import connect, parse_url
    except ImportError as exc:
        return f"PyHive is not installed ({exc.name}): pip install 'anomaly-cli[spark]'"
    try:
        with connect(parse_url(SPARK_URL), connect_timeout=30, statement_timeout=120, read_only=False) as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure means: no server to test against
        return f"no Spark Thrift Server at {SPARK_URL}: {exc}"
    return None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(SQLite demo URL, Spark URL of the same demo as Parquet tables)."""
    problem = _problem()
    if problem:
        if UNDER_CI:
            pytest.fail(f"{problem} (under CI the Spark tests must run)")
        pytest.skip(problem)
    import sqlalchemy as sa

    from anomaly_cli.config import default_schema
    from anomaly_cli.db import connect, parse_url
    from anomaly_cli.demo import build_demo_database
    from anomaly_cli.duck import build_demo, export_parquet

    root = tmp_path_factory.mktemp("spark")
    build_demo_database(root / "demo.db", now=NOW)
    build_demo(root / "demo.duckdb", now=NOW, mapping=default_schema())
    tables = export_parquet(root / "demo.duckdb", root / "export")
    name = f"anomaly_test_{uuid.uuid4().hex[:10]}"
    url = parse_url(SPARK_URL)
    with connect(url, read_only=False) as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
        for table in tables:
            # One directory per table: Spark reads a table's location as a directory of files.
            folder = root / "lake" / table
            folder.mkdir(parents=True)
            (root / "export" / f"{table}.parquet").rename(folder / "part-0.parquet")
            conn.execute(sa.text(f"CREATE TABLE {name}.{table} USING parquet LOCATION '{folder}'"))
    try:
        yield f"sqlite:///{root / 'demo.db'}", url.set(database=name).render_as_string(hide_password=False)
    finally:
        with connect(url, read_only=False) as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} CASCADE"))


def _document(run) -> dict:  # type: ignore[no-untyped-def]
    doc = json.loads(run.stdout)
    doc.pop("generated_at", None)
    doc.pop("database", None)
    return doc


def test_every_check_on_spark_matches_sqlite(demo: tuple[str, str], cli) -> None:
    sqlite_url, spark_url = demo
    args = ("--format", "json", "--until", NOW.isoformat())
    expected = cli("scan", "all", "--db", sqlite_url, *args)
    started = time.monotonic()
    run = cli("scan", "all", "--db", spark_url, *args)
    elapsed = time.monotonic() - started
    assert run.exit_code == expected.exit_code == 1, run.stderr
    assert "skipped" not in run.stderr
    assert _document(run) == _document(expected)
    # Every check ran and found its planted anomalies there too.
    found = {c["check"]: c["summary"]["findings"] for c in _document(run)["checks"]}
    assert set(found) == {"freshness", "price", "sales", "spam", "failed", "rates", "checkout",
                          "behaviour"}, found
    assert all(found.values()), found
    assert json.dumps(_document(run), sort_keys=True) == json.dumps(_document(expected), sort_keys=True)
    # Read-only is the grants' job on Spark: the user is told so, on one line.
    assert "SELECT grants only" in run.stderr
    print(f"spark: scan all on the demo took {elapsed:.1f} s")


def test_a_behaviour_model_trained_on_spark_is_the_one_trained_on_sqlite(demo: tuple[str, str], cli,
                                                                         tmp_path: Path) -> None:
    # The other path of behaviour's SQL: `train behaviour`, then `scan behaviour --model` (no fit).
    sqlite_url, spark_url = demo
    since = (NOW - timedelta(days=3)).isoformat()
    models = {}
    for engine, url in (("sqlite", sqlite_url), ("spark", spark_url)):
        models[engine] = tmp_path / f"{engine}.model"
        run = cli("train", "behaviour", "--db", url, "--model", str(models[engine]), "--until", since)
        assert run.exit_code == 0, run.stderr
    meta = {e: json.loads(zipfile.ZipFile(m).read("meta.json")) for e, m in models.items()}
    for m in meta.values():
        m.pop("id")  # a digest of the skops file, which differs between any two saves
    assert meta["spark"] == meta["sqlite"] and meta["spark"]["training_rows"] > 0
    args = ("--format", "json", "--since", since, "--until", NOW.isoformat(), "--model", str(models["sqlite"]))
    expected = cli("scan", "behaviour", "--db", sqlite_url, *args)
    run = cli("scan", "behaviour", "--db", spark_url, *args)
    assert run.exit_code == expected.exit_code == 1, run.stderr
    assert _document(run) == _document(expected) and _document(run)["checks"][0]["findings"]


def test_spark_errors_are_one_line(demo: tuple[str, str], cli) -> None:
    _, spark_url = demo
    missing = cli("scan", "price", "--db", spark_url, "--config", _config_with_table("no_such_table"))
    assert missing.exit_code == 3 or missing.exit_code == 2
    assert "no_such_table" in missing.stderr and "Traceback" not in missing.stderr
    assert len([line for line in missing.stderr.splitlines() if "error" in line]) == 1


def _config_with_table(name: str) -> str:
    path = Path.cwd() / "anomaly.toml"
    path.write_text(f'[schema.transactions]\ntable = "{name}"\n')
    return str(path)


def test_a_spark_error_is_one_short_line(demo: tuple[str, str]) -> None:
    import sqlalchemy as sa

    from anomaly_cli.db import connect, parse_url
    from anomaly_cli.errors import DatabaseError

    _, spark_url = demo
    with pytest.raises(DatabaseError) as caught:
        with connect(parse_url(spark_url)) as conn:
            conn.execute(sa.text("SELECT no_such_column FROM transactions"))
    message = str(caught.value)
    assert "\n" not in message and len(message) < 700
    assert "no_such_column" in message and "TExecuteStatementResp" not in message


def test_a_stalled_spark_server_ends_in_exit_3(demo: tuple[str, str]) -> None:
    import subprocess
    import sys

    from sqlalchemy.engine import make_url

    from tests.netfaults import faulty_proxy

    _, spark_url = demo
    real = make_url(spark_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANOMALY_", "MYSQL_"))}
    with faulty_proxy(real.port or 10000, b"transaction_date", mode="stall") as port:
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "anomaly_cli", "scan", "price", "--db",
                              real.set(port=port).render_as_string(hide_password=False)],
                             capture_output=True, text=True, timeout=120,
                             env=env | {"ANOMALY_DB_STATEMENT_TIMEOUT": "3"})
    errors = [line for line in run.stderr.splitlines() if not line.startswith("anomaly: note:")]
    assert run.returncode == 3 and len(errors) == 1, run.stderr
    assert "db.statement_timeout (3 s)" in errors[0]
    assert time.monotonic() - started < 60
