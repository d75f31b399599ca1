"""Rows SQLite keeps though they are no dates or numbers: skipped and counted by reason, never a crash."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

START = datetime(2025, 6, 2)


@pytest.fixture
def messy_db(sqlite_url: str, cli) -> str:
    path = sqlite_url.removeprefix("sqlite:///")
    assert cli("db", "init", "--db", path).exit_code == 0
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO customers(customer_id, customer_name) VALUES (1, 'Eva Green')")
    rows, i = [], 1
    for d in range(28):
        for k in range(40):
            when = START + timedelta(days=d, minutes=15 * k + 1)
            rows.append((i, 1, f"{when:%Y-%m-%d %H:%M:%S}", "SUCCESS" if k % 10 else "FAILED", "12.50"))
            i += 1
    # Dates that are no dates ('12/06/2025' sorts inside the window, 'yesterday' after every date).
    for bad in ("2025-06-10 garbage", "12/06/2025 10:00", "yesterday"):
        rows.append((i, 1, bad, "SUCCESS", "5.00"))
        i += 1
    for amount in ("abc", "1,234.50", ""):  # amounts that are no numbers
        rows.append((i, 1, "2025-06-20 10:00:00", "SUCCESS", amount))
        i += 1
    conn.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("CREATE TABLE status_counts(ts DATETIME, status VARCHAR(40), count INTEGER)")
    conn.executemany("INSERT INTO status_counts VALUES (?, 'approved', 120)",
                     [(f"{START + timedelta(minutes=m):%Y-%m-%d %H:%M:%S}",) for m in range(3000)])
    conn.execute("INSERT INTO status_counts VALUES ('01/06/2025 10:00', 'approved', 5)")
    conn.execute("INSERT INTO status_counts VALUES ('2025-06-02 10:00:30', 'approved', 'many')")
    conn.execute("CREATE TABLE checkout(ts DATETIME, today FLOAT, yesterday FLOAT, same_day_last_week FLOAT, "
                 "avg_last_week FLOAT, avg_last_month FLOAT)")
    conn.execute("INSERT INTO checkout VALUES ('2025-06-02 10:00:00', 10, 11, 12, 10, 10)")
    conn.execute("INSERT INTO checkout VALUES ('2025-06-02 11:00:00', 'ten', 11, 12, 10, 10)")
    conn.execute("INSERT INTO checkout VALUES ('02/06/2025 12:00', 1, 11, 12, 10, 10)")
    conn.commit()
    conn.close()
    return sqlite_url


def summaries(cli, url: str, check: str, *args: str) -> dict[str, dict]:
    run = cli("scan", check, "--db", url, "--format", "json", "--fail-on", "never", *args)
    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stderr and "garbage" not in run.stderr and "abc" not in run.stderr
    return {c["check"]: c["summary"] for c in json.loads(run.stdout)["checks"]}


def test_every_volume_check_counts_what_it_cannot_read(messy_db: str, cli) -> None:
    out = summaries(cli, messy_db, "all", "--until", "2025-06-30")
    # Every date that is no date, anywhere (as price and spam count them): 'yesterday', though it
    # sorts after the window, is one too.
    assert out["sales"]["skipped"]["bad_date"] == 3
    assert out["sales"]["skipped"]["bad_amount"] == 3
    assert out["failed"]["skipped"]["bad_date"] == 3
    assert out["rates"]["skipped"]["bad_count"] == 1 and out["rates"]["skipped"]["bad_time"] == 5
    assert out["checkout"]["skipped"] == {"bad_value": 1, "bad_time": 1}
    assert out["freshness"]["status"] in {"ok", "findings", "not_evaluated"}
    # With --since the pass is bounded by the dates: the unusable ones outside it are still counted.
    out = summaries(cli, messy_db, "all", "--since", "2025-06-20", "--until", "2025-06-30")
    assert out["sales"]["skipped"]["bad_date"] == 3 and out["failed"]["skipped"]["bad_date"] == 3
    assert out["sales"]["skipped"]["bad_amount"] == 3
    # Without --until the newest transaction is text ('yesterday'): the newest readable one counts.
    out = summaries(cli, messy_db, "sales")
    assert out["sales"]["data_ends"].startswith("2025-06-29")
    out = summaries(cli, messy_db, "failed", "--list", "--until", "2025-06-30")
    assert out["failed"]["findings"] > 0


def test_a_table_of_unreadable_dates_is_not_evaluated_and_says_why(sqlite_url: str, cli) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    assert cli("db", "init", "--db", path).exit_code == 0
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO customers(customer_id, customer_name) VALUES (1, 'Eva Green')")
    conn.executemany("INSERT INTO transactions VALUES (?, 1, ?, 'SUCCESS', 10)",
                     [(i, f"06/{i:02d}/2025") for i in range(1, 29)] + [(29, None)])
    conn.commit()
    conn.close()
    out = summaries(cli, sqlite_url, "sales")
    assert out["sales"]["status"] == "not_evaluated"
    assert out["sales"]["reason"] == "all rows unusable (no date: 1, bad date: 28)"


def test_the_declared_indexes_change_no_count(messy_db: str, cli) -> None:
    # SQLite's expression index (key_index.index_key) precomputes the bucket key, its date checks
    # and the cents: the passes that read it must count and judge exactly as the plain scans do.
    runs = [("all", "--until", "2025-06-30"), ("all", "--since", "2025-06-20", "--until", "2025-06-30"),
            ("sales", "--bucket", "hour", "--until", "2025-06-30"), ("sales",)]
    before = [summaries(cli, messy_db, *run) for run in runs]
    applied = cli("db", "indexes", "--db", messy_db, "--apply")
    assert applied.exit_code == 0 and "ix_anomaly_transactions_bucket_key" in applied.stdout, applied.stderr
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        statements.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        assert [summaries(cli, messy_db, *run) for run in runs] == before
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
    # ... and the whole-history passes of sales and failed do read it, in key order (no sort).
    conn = sqlite3.connect(messy_db.removeprefix("sqlite:///"))
    plans = ["\n".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params or ()))
             for sql, params in statements if "LIKE '____-__-__" in sql and "transaction_date >= ?" not in sql]
    assert len(plans) >= 4
    assert all("USING INDEX ix_anomaly_transactions_bucket_key" in p and "TEMP B-TREE" not in p for p in plans), plans
