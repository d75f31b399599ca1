"""Connections under attack and failure (issue 10): secrets, timeouts, identity, refused options,
lost connections, read-only mounts. Real servers and real sockets on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from anomaly_cli.db import connect, mask_url, parse_url, same_database
from anomaly_cli.errors import DatabaseError, UsageError
from tests.conftest import _fresh_database
from tests.netfaults import faulty_proxy, silent_listener

ROOT = Path(__file__).resolve().parent.parent
CLOUDWALK = ROOT / "fixtures" / "cloudwalk"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI in its own process, so that a hang fails the test instead of hanging it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANOMALY_", "MYSQL_"))}
    return subprocess.run([sys.executable, "-m", "anomaly_cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=clean | (env or {}), cwd=os.getcwd())


def one_line(stderr: str) -> str:
    """The one error line (a note such as Spark's read-only one may precede it)."""
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("anomaly: note:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    return lines[0]


@pytest.fixture(params=("mariadb", "postgresql"))
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _fresh_database(request.param, tmp_path)


@pytest.fixture
def demo_sqlite(cli, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    assert cli("db", "init", "--db", url, "--demo-data").exit_code == 0
    return url


# -- 1. secrets anywhere in a URL ---------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "mysql://root@127.0.0.1:1/x?password=s3cret",
    "postgresql://postgres@127.0.0.1:1/x?password=s3cret",
    "postgresql://postgres:s3cret@127.0.0.1:1/x?sslpassword=s3cret",
    "mysql://root@127.0.0.1:1/x?passwd=s3cret&charset=utf8mb4",
])
def test_query_string_secrets_never_reach_the_output(url: str) -> None:
    run = run_cli("scan", "price", "--db", url, env={"ANOMALY_DB_CONNECT_TIMEOUT": "2"})
    assert run.returncode == 3
    assert "s3cret" not in run.stderr + run.stdout and "***" in one_line(run.stderr)


def test_masking_covers_query_strings_and_unparsable_urls() -> None:
    assert mask_url("mysql://u@h/db?password=s3cret&charset=utf8") == "mysql://u@h/db?charset=utf8&password=***"
    assert "s3cret" not in mask_url("mysql://u:pw@h:notaport/db?api_token=s3cret")
    assert "s3cret" not in mask_url("postgresql://u@h:x/db?sslpassword=s3cret")


# -- 2. connect and statement timeouts -----------------------------------------------------------

@pytest.mark.parametrize("scheme", ["mysql", "mariadb", "postgresql", "hive"])
def test_connect_timeout_holds_against_a_listener_that_never_answers(scheme: str) -> None:
    if scheme == "hive":
        pytest.importorskip("pyhive")
    with silent_listener() as port:
        started = time.monotonic()
        run = run_cli("scan", "price", "--db", f"{scheme}://root@127.0.0.1:{port}/x",
                      env={"ANOMALY_DB_CONNECT_TIMEOUT": "2"}, timeout=30)
        elapsed = time.monotonic() - started
    assert run.returncode == 3, run.stderr
    assert "cannot connect" in one_line(run.stderr)
    assert elapsed < 15


def test_state_connect_timeout_holds_too(demo_sqlite: str) -> None:
    with silent_listener() as port:
        started = time.monotonic()
        run = run_cli("scan", "price", "--db", demo_sqlite, "--new-only", "--state",
                      f"mysql://root@127.0.0.1:{port}/state", env={"ANOMALY_DB_CONNECT_TIMEOUT": "2"}, timeout=30)
    assert run.returncode == 3 and "alert state" in one_line(run.stderr)
    assert time.monotonic() - started < 15


def test_a_server_that_stalls_mid_query_ends_in_exit_3(server_url: str, cli) -> None:
    assert cli("db", "init", "--db", server_url, "--demo-data").exit_code == 0
    real = make_url(server_url)
    with faulty_proxy(real.port, b"transaction_date", mode="stall") as port:
        started = time.monotonic()
        run = run_cli("scan", "price", "--db", real.set(port=port).render_as_string(hide_password=False),
                      env={"ANOMALY_DB_STATEMENT_TIMEOUT": "2"}, timeout=60)
        elapsed = time.monotonic() - started
    assert run.returncode == 3, run.stderr
    assert "db.statement_timeout (2 s)" in one_line(run.stderr)
    assert elapsed < 20


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_a_slow_query_on_a_file_engine_is_interrupted(engine: str, tmp_path: Path) -> None:
    if engine == "duckdb":
        pytest.importorskip("duckdb_engine")
        import duckdb

        url, query = f"duckdb:///{tmp_path / 'x.duckdb'}", "SELECT count(*) FROM range(1000000000000) a"
        duckdb.connect(str(tmp_path / "x.duckdb")).close()
    else:
        url = f"sqlite:///{tmp_path / 'x.db'}"
        sqlite3.connect(tmp_path / "x.db").execute("CREATE TABLE t (x)").connection.close()
        query = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    started = time.monotonic()
    with pytest.raises(DatabaseError, match=r"db.statement_timeout \(1 s\)"):
        with connect(parse_url(url), statement_timeout=1) as conn:
            conn.exec_driver_sql(query).all()
    assert time.monotonic() - started < 15


def test_the_statement_timeout_is_a_setting(cli, demo_sqlite: str) -> None:
    assert cli("scan", "price", "--db", demo_sqlite, env={"ANOMALY_DB_STATEMENT_TIMEOUT": "-1"}).exit_code == 2
    assert cli("scan", "price", "--db", demo_sqlite, env={"ANOMALY_DB_STATEMENT_TIMEOUT": "0"}).exit_code == 1


# -- 3. the state is never the audited database, by identity --------------------------------------

@pytest.mark.parametrize("a, b", [
    ("mysql://root@127.0.0.1/shop", "mariadb://root@localhost:3306/shop"),
    ("mysql+pymysql://u:pw@127.0.0.1:3306/shop", "mysql://other@localhost/shop"),
    ("postgresql://postgres@127.0.0.1:5432/shop", "postgresql+psycopg://postgres@localhost/shop"),
])
def test_one_server_spelled_two_ways_is_the_same_database(a: str, b: str) -> None:
    assert same_database(parse_url(a), parse_url(b))
    assert not same_database(parse_url(a), parse_url(b).set(database="other"))
    assert not same_database(parse_url(a), parse_url(b).set(port=4406))


def test_a_hard_link_to_the_audited_file_is_refused(cli, demo_sqlite: str, tmp_path: Path) -> None:
    audited = tmp_path / "shop.db"
    os.link(audited, tmp_path / "link.db")
    before = audited.read_bytes()
    run = cli("scan", "price", "--db", demo_sqlite, "--new-only", "--state", f"sqlite:///{tmp_path / 'link.db'}")
    assert run.exit_code == 2 and "--state must not be the audited database" in run.stderr
    assert audited.read_bytes() == before
    assert not (tmp_path / "shop.db-wal").exists()


def test_mariadb_and_mysql_spellings_of_the_audited_server_are_refused(cli) -> None:
    run = cli("scan", "price", "--db", "mysql://root@127.0.0.1/shop", "--new-only",
              "--state", "mariadb://root@localhost:3306/shop")
    assert run.exit_code == 2 and "--state must not be the audited database" in run.stderr


# -- 4. options that run statements or weaken read-only --------------------------------------------

@pytest.mark.parametrize("url", [
    "mysql://root@127.0.0.1/shop?init_command=DELETE FROM customers",
    "mariadb://root@127.0.0.1/shop?read_default_file=/tmp/evil.cnf",
    "postgresql://postgres@127.0.0.1/shop?options=-c default_transaction_read_only=off",
    "postgresql://postgres@127.0.0.1/shop?options=-c%20transaction_read_only%3Doff",
    "postgresql://postgres@127.0.0.1/shop?service=writer",
    "duckdb:///shop.duckdb?access_mode=READ_WRITE",
])
def test_options_that_could_write_are_refused(url: str, cli, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        parse_url(url)
    assert cli("scan", "price", "--db", url).exit_code == 2
    assert cli("scan", "price", env={"ANOMALY_DB_URL": url}).exit_code == 2
    (Path.cwd() / "anomaly.toml").write_text(f"[db]\nurl = {url!r}\n")
    assert cli("scan", "price").exit_code == 2


def test_init_command_cannot_delete_from_the_audited_database(server_url: str, cli) -> None:
    if not server_url.startswith("mysql"):
        pytest.skip("init_command is a MySQL/MariaDB option")
    assert cli("db", "init", "--db", server_url, "--demo-data").exit_code == 0
    engine = sa.create_engine(server_url)
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT COUNT(*) FROM customers")).scalar()
    run = cli("scan", "price", "--db", server_url + "?init_command=DELETE FROM customers")
    assert run.exit_code == 2
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM customers")).scalar() == before > 0
    engine.dispose()


def test_the_session_is_read_only_from_its_first_statement(server_url: str) -> None:
    with connect(parse_url(server_url)) as conn:
        if conn.dialect.name == "postgresql":
            assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "on"
        else:
            assert conn.exec_driver_sql("SELECT @@session.tx_read_only").scalar() == 1


# -- 11. a connection lost mid-result ----------------------------------------------------------------

@pytest.fixture
def mariadb_url(tmp_path: Path) -> Iterator[str]:
    yield from _fresh_database("mariadb", tmp_path)


def test_a_connection_lost_mid_result_is_one_line(cli, mariadb_url: str) -> None:
    url = mariadb_url
    for name, day in (("transactions_1.csv", "2025-07-12"), ("transactions_2.csv", "2025-07-13")):
        assert cli("load", "counts", str(CLOUDWALK / name), "--date", day, "--db", url).exit_code == 0
    real = make_url(url)
    # The proxy passes 3 kB of the answers that follow the first statement naming the table, then
    # closes: the per-minute counts (8,000 rows) stop half-way through the streamed result.
    with faulty_proxy(real.port, b"status_counts", mode="cut", after=3000) as port:
        run = run_cli("scan", "rates", "--db", real.set(port=port).render_as_string(hide_password=False))
    assert run.returncode == 3
    assert "Lost connection" in one_line(run.stderr)


# -- 13. read-only mounts, alerts list, MYSQL_HOST ---------------------------------------------------

def test_a_wal_file_on_a_read_only_mount_is_scanned(tmp_path: Path, demo_sqlite: str) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount read-only")
    source, mount = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    mount.mkdir()
    shutil.copy(tmp_path / "shop.db", source / "shop.db")
    with sqlite3.connect(source / "shop.db") as conn:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    conn.close()
    script = (f"mount --bind {source} {mount} && mount -o remount,bind,ro {mount} && "
              f"{sys.executable} -m anomaly_cli scan price --db {mount / 'shop.db'} --format json")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {source} {mount}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount here: {probe.stderr.decode().strip()}")
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert run.returncode == 1, run.stderr  # findings, not "unable to open database file"
    assert '"check": "price"' in run.stdout


def test_alerts_list_creates_no_table(cli, state_engine_url: str) -> None:
    run = cli("alerts", "list", "--state", state_engine_url)
    assert run.exit_code == 0, run.stderr
    engine = sa.create_engine(state_engine_url)
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("anomaly_alerts")
    engine.dispose()


@pytest.mark.parametrize("host", ["127.0.0.1:abc", "127.0.0.1:99999", "127.0.0.1:"])
def test_a_bad_mysql_host_port_is_an_error(cli, host: str) -> None:
    run = cli("scan", "price", env={"MYSQL_HOST": host, "MYSQL_DB": "shop"})
    assert run.exit_code == 2 and "MYSQL_HOST" in run.stderr
