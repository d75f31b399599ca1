"""PostgreSQL results streamed in chunks (pg_stream.py) behave as the server-side cursor did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from anomaly_cli.db import connect, parse_url
from tests.conftest import _fresh_database

pg_stream = pytest.importorskip("anomaly_cli.pg_stream")
if not pg_stream.available():
    pytest.skip("libpq < 17: results stream through a server-side cursor", allow_module_level=True)

ROWS = pg_stream.CHUNK * 3 + 7  # several chunks and a partial one


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sa.Connection]:
    # A scan's session: read-only, as the checks see it.
    for url in _fresh_database("postgresql", tmp_path):
        with connect(parse_url(url), statement_timeout=30) as connection:
            yield connection


def streamed(conn: sa.Connection, sql: str) -> sa.CursorResult:
    return conn.execution_options(yield_per=100).execute(sa.text(sql))


def test_a_streamed_result_opens_no_server_side_cursor(conn: sa.Connection) -> None:
    result = streamed(conn, f"SELECT g FROM generate_series(1, {ROWS}) AS g")
    first = next(iter(result))
    # DECLARE would show in pg_cursors (and forbid a parallel plan); a chunked stream does not.
    assert conn.execute(sa.text("SELECT count(*) FROM pg_cursors WHERE name <> ''")).scalar() == 0
    assert [first[0], *(r[0] for r in result)] == list(range(1, ROWS + 1))


def test_an_empty_streamed_result_still_has_its_columns(conn: sa.Connection) -> None:
    result = streamed(conn, "SELECT g AS a, g * 2 AS b FROM generate_series(1, 5) AS g WHERE g > 9")
    assert list(result.keys()) == ["a", "b"]
    assert result.fetchall() == []


def test_statements_run_while_a_stream_is_open_and_the_stream_loses_no_row(conn: sa.Connection) -> None:
    outer = iter(streamed(conn, f"SELECT g FROM generate_series(1, {ROWS}) AS g"))
    seen = [next(outer)[0] for _ in range(3)]
    assert conn.execute(sa.text("SELECT 41 + 1")).scalar() == 42
    assert [r[0] for r in streamed(conn, "SELECT g FROM generate_series(1, 4) AS g")] == [1, 2, 3, 4]
    seen += [r[0] for r in outer]
    assert seen == list(range(1, ROWS + 1))


def test_a_result_closed_early_leaves_the_session_usable(conn: sa.Connection) -> None:
    result = streamed(conn, "SELECT g FROM generate_series(1, 10000000) AS g")
    assert next(iter(result))[0] == 1
    result.close()  # cancels the rest of the query
    assert conn.execute(sa.text("SELECT 7")).scalar() == 7


def test_a_failing_streamed_query_raises_its_own_error(conn: sa.Connection) -> None:
    with pytest.raises(sa.exc.DBAPIError, match="division by zero"):
        streamed(conn, "SELECT 1 / (g - 3) FROM generate_series(1, 5) AS g").fetchall()
