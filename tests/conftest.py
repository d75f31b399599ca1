"""Shared fixtures: a clean environment, throwaway databases on three engines, and a CLI runner."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from anomaly_cli.cli import app
from anomaly_cli.config import default_schema
from anomaly_cli.schema import create, load_rows

MYSQL_ADMIN = os.environ.get("ANOMALY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
PG_ADMIN = os.environ.get("ANOMALY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ENGINES = ("sqlite", "mariadb", "postgresql", "duckdb")
# Where the alert state may live (it writes: not an analytical engine).
STATE_ENGINES = ("sqlite", "mariadb", "postgresql")

# Variables that would leak the developer's own setup into a test.
LEAKY_PREFIXES = ("ANOMALY_", "MYSQL_")
LEAKY_NAMES = ("OPENAI_API_KEY", "AI_API_KEY", "OPENAI_BASE_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ANOMALY_*/MYSQL_*/LLM variables, and a fresh working directory (no anomaly.toml, no .env)."""
    for name in list(os.environ):
        if name.startswith(LEAKY_PREFIXES) or name in LEAKY_NAMES:
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


_availability: dict[str, str | None] = {}


def _server_problem(engine: str) -> str | None:
    """None if the engine's test server answers, else why not (checked once per session)."""
    if engine not in _availability:
        admin = MYSQL_ADMIN if engine == "mariadb" else PG_ADMIN
        try:
            probe = sa.create_engine(admin, connect_args={"connect_timeout": 3})
            with probe.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            probe.dispose()
            _availability[engine] = None
        except Exception as exc:  # any failure means: no server to test against
            _availability[engine] = f"{engine} test server at {make_url(admin).render_as_string()} " \
                                    f"does not answer: {type(exc).__name__}"
    return _availability[engine]


def _fresh_database(engine: str, tmp_path: Path) -> Iterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'audited.db'}"
        return
    if engine == "duckdb":
        if not UNDER_CI:
            pytest.importorskip("duckdb_engine", reason="the duckdb extra is not installed")
        yield f"duckdb:///{tmp_path / 'audited.duckdb'}"
        return
    problem = _server_problem(engine)
    if problem is not None:
        if UNDER_CI:
            pytest.fail(f"{problem} (under CI the database tests must run)")
        pytest.skip(problem)
    name = f"anomaly_test_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(MYSQL_ADMIN if engine == "mariadb" else PG_ADMIN)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if engine == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a new, empty database on each engine in turn; dropped afterwards."""
    yield from _fresh_database(request.param, tmp_path)


@pytest.fixture(params=STATE_ENGINES)
def state_engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like engine_url, on the engines that can hold the alert state."""
    yield from _fresh_database(request.param, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audited.db'}"


def load_database(url: str, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Create the seed schema at `url` and insert `rows` (logical table -> list of row dicts)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        schema = default_schema()
        create(conn, schema)
        load_rows(conn, schema, rows)
    engine.dispose()


def load_counts(url: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Create the per-minute status_counts table at `url` and insert `rows` (ts, status, count)."""
    from anomaly_cli.loaders import counts_table

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        table = counts_table(default_schema())
        table.create(conn)
        for i in range(0, len(rows), 5000):
            conn.execute(table.insert(), rows[i:i + 5000])
    engine.dispose()


def scan_json(cli: Any, check: str, url: str, *args: str) -> dict:
    """`anomaly scan <check> --format json` that must exit 0: that check's object of the document."""
    import json

    run = cli("scan", check, "--db", url, "--format", "json", "--fail-on", "never", *args)
    assert run.exit_code == 0, run.stderr
    (result,) = json.loads(run.stdout)["checks"]
    return result


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli() -> Any:
    """Invoke the app in-process: cli("scan", "price", "--db", url) -> Run."""
    runner = CliRunner()

    def invoke(*args: str, env: Mapping[str, str] | None = None) -> Run:
        result = runner.invoke(app, list(args), env=dict(env or {}), catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return invoke
