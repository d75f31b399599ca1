"""sales: the whole-table pass proves the data fresh (sparing last_data's max(), a scan of its own
without a date index) only when the newest date really is that recent, for every spelling."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from anomaly_cli.checks import CheckContext
from anomaly_cli.checks._rows import newest
from anomaly_cli.checks.sales import BucketSize
from anomaly_cli.checks.sales.sql import fresh, read
from anomaly_cli.db import table
from anomaly_cli.indexes import expression_index_name
from anomaly_cli.key_index import KEY_INDEX, index_key
from anomaly_cli.model import Window
from anomaly_cli.config import default_schema
from tests.conftest import load_database
from tests.test_bucket_keys import EDGES, fuzzed

PLAIN = ["2025-09-10 08:15:00", "2025-09-12 10:41:07", "2025-09-12 10:02:59"]
NOW = datetime(2025, 9, 13, 12)


def shop(url: str, odd: object, status: str, *, indexed: bool) -> tuple[sa.Engine, Any]:
    rows = [{"transaction_id": i + 1, "customer_id": 1, "transaction_date": None, "status": "SUCCESS",
             "total_amount": 5} for i in range(len(PLAIN) + 1)]
    load_database(url, {"customers": [{"customer_id": 1, "customer_name": "A", "mobile_number": "1"}],
                        "transactions": rows})
    engine = sa.create_engine(url)
    t = table(default_schema(), "transactions")
    with engine.begin() as conn:  # the driver's own update: SQLite keeps each value as given
        conn.exec_driver_sql("UPDATE transactions SET transaction_date = ? WHERE transaction_id = ?",
                             [(d, i + 1) for i, d in enumerate(PLAIN)])
        conn.exec_driver_sql("UPDATE transactions SET transaction_date = ?, status = ? WHERE transaction_id = ?",
                             (odd, status, len(PLAIN) + 1))
        if indexed:
            sa.Index(expression_index_name(conn.dialect, t, KEY_INDEX, index_key(t)), *index_key(t)).create(conn)
    return engine, t


def context(conn: sa.Connection) -> CheckContext:
    return CheckContext(conn=conn, schema=default_schema(), window=Window(), params={}, currency="$", now=NOW)


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "key-index"])
@pytest.mark.parametrize("status", ["SUCCESS", "FAILED"])
@pytest.mark.parametrize("odd", EDGES + fuzzed(31, 40))
def test_the_pass_proves_freshness_only_when_max_agrees(tmp_path, odd: object, status: str, indexed: bool) -> None:
    engine, t = shop(f"sqlite:///{tmp_path / 'shop.db'}", odd, status, indexed=indexed)
    with engine.connect() as conn:
        groups = read(context(conn), BucketSize.DAY, None, None)
        last = newest(conn, t.c.transaction_date)  # what last_data reads
    hours = {datetime(2025, 9, 12, 10) + timedelta(minutes=m) for m in (-61, -60, -1, 0, 1, 59, 60, 61)}
    if isinstance(last, datetime) and last.tzinfo is None:
        hours |= {last + timedelta(seconds=s) for s in (-3601, -1, 0, 1, 3601) if last.year < 9999 or s <= 0}
    for since in sorted(hours):
        if fresh(groups, since):
            assert last is None or last >= since, (odd, since, last)
    plain = odd is None or (isinstance(odd, str) and odd[:4] >= "1970" and _canonical(odd))
    # Not a vacuous proof: a table of plainly spelt dates proves it up to its newest hour.
    assert fresh(groups, datetime(2025, 9, 12, 10)) is plain, (odd, groups)


def _canonical(text: str) -> bool:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%d %H:%M:%S") == text
    except ValueError:
        return False


def test_a_fresh_scan_reads_no_max_and_a_stale_or_odd_one_does(tmp_path, cli) -> None:
    import json

    statements: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    now = datetime.now().replace(microsecond=0)
    recent = [now - timedelta(hours=h) for h in range(1, 60)]
    load_database(url, {"customers": [{"customer_id": 1, "customer_name": "A", "mobile_number": "1"}],
                        "transactions": [{"transaction_id": i + 1, "customer_id": 1, "transaction_date": d,
                                          "status": "SUCCESS", "total_amount": 5} for i, d in enumerate(recent)]})

    def scan() -> dict:
        statements.clear()
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", listener)
        try:
            result = cli("scan", "sales", "--db", url, "--format", "json")
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", listener)
        assert result.exit_code in (0, 1), result.stderr
        return json.loads(result.stdout)["checks"][0]["summary"]

    def reads_max() -> bool:
        return any("max(" in s.lower() for s in statements)

    summary = scan()
    assert not reads_max() and "data_ends" not in summary, statements
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # one date spelt otherwise: the pass proves nothing, max() is read
        conn.exec_driver_sql("UPDATE transactions SET transaction_date = replace(transaction_date, ' ', 'T') "
                             "WHERE transaction_id = 1")
    assert scan() == summary and reads_max()
    with engine.begin() as conn:  # all plain but 30 days old: stale, and the exact newest date is read
        conn.exec_driver_sql("UPDATE transactions SET transaction_date = "
                             "datetime(replace(transaction_date, 'T', ' '), '-30 days')")
    stale = scan()
    assert reads_max() and stale["data_ends"].startswith(f"{recent[0] - timedelta(days=30):%Y-%m-%d %H:%M}")
    engine.dispose()
