"""The CSV loaders: parsing rules and rejected rows without a database, then loads on three engines."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from anomaly_cli.config import default_schema
from anomaly_cli.errors import DataError, UsageError
from anomaly_cli.loaders import (
    CountsFile, LoadReport, Rejected, load_checkout, load_counts, parse_checkout, parse_counts,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cloudwalk"
DAY = date(2025, 7, 12)


def write(tmp_path: Path, text: str, name: str = "counts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- per-minute counts ------------------------------------------------------------------------

def test_the_shared_files_parse_as_they_are() -> None:
    one = parse_counts(FIXTURES / "transactions_1.csv", day=DAY)  # count column f0_
    two = parse_counts(FIXTURES / "transactions_2.csv", day=date(2025, 7, 13))  # count column count
    assert (one.read, len(one.rows), one.rejected) == (4234, 4234, [])
    assert (two.read, len(two.rows), two.rejected) == (3944, 3944, [])
    assert one.rows[0] == (datetime(2025, 7, 12, 0, 0), "approved", 9)
    assert sum(n for _, status, n in one.rows if status == "reversed") == 16096
    assert {status for _, status, _ in two.rows} == {
        "approved", "denied", "reversed", "backend_reversed", "refunded", "failed", "processing"}
    assert one.rows == sorted(one.rows)


def test_minute_times_need_a_day(tmp_path: Path) -> None:
    path = write(tmp_path, "time,status,count\n00h 00,approved,9\n")
    with pytest.raises(UsageError, match="--date is needed for HHh MM times"):
        parse_counts(path, day=None)


def test_timestamps_need_no_day_and_seconds_merge_into_their_minute(tmp_path: Path) -> None:
    path = write(tmp_path, "ts,status,count\n2025-07-12 14:33:00,Failed,2\n2025-07-12T14:33:40,failed,3\n"
                           "2025-07-12 14:34,FAILED,1\n")
    parsed = parse_counts(path, day=None)
    assert parsed.read == 3
    assert parsed.rows == [(datetime(2025, 7, 12, 14, 33), "failed", 5), (datetime(2025, 7, 12, 14, 34), "failed", 1)]


def test_duplicates_are_summed_and_statuses_lower_cased(tmp_path: Path) -> None:
    path = write(tmp_path, "time,status,f0_\n14h 33,Approved,10\n14h 33,approved,5\n14h 33, denied ,2\n\n")
    parsed = parse_counts(path, day=DAY)
    assert parsed.read == 3  # the blank line is not a row
    assert parsed.rows == [(datetime(2025, 7, 12, 14, 33), "approved", 15), (datetime(2025, 7, 12, 14, 33), "denied", 2)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("14h 33,approved,x", "count 'x' is not a whole number"),
        ("14h 33,approved,1.5", "count '1.5' is not a whole number"),
        ("14h 33,approved,-3", "count '-3' is negative"),
        ("14h 33,approved,", "count '' is not a whole number"),
        ("14h 33,,4", "status is empty"),
        ("24h 00,approved,4", "time '24h 00' is not a time of day"),
        ("12h 60,approved,4", "time '12h 60' is not a time of day"),
        ("noon,approved,4", "time 'noon' is neither 'HHh MM' nor an ISO timestamp"),
        ("2025-07-12T14:33:00+02:00,approved,4", "has a time zone"),
        ("14h 33,approved", "expected 3 fields, got 2"),
        ("14h 33,approved,4,extra", "expected 3 fields, got 4"),
    ],
)
def test_malformed_rows_are_rejected_with_their_line(tmp_path: Path, row: str, reason: str) -> None:
    path = write(tmp_path, f"time,status,count\n14h 32,approved,7\n{row}\n14h 34,approved,8\n")
    parsed = parse_counts(path, day=DAY)
    assert parsed.read == 3
    assert len(parsed.rows) == 2
    assert [r.line for r in parsed.rejected] == [3]
    assert reason in parsed.rejected[0].reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("minute,status,count\n", "does not name the columns time,status,count"),
        ("time,status\n", "does not name the columns"),
        ("time,status,count,f0_\n", "does not name the columns"),  # two count columns: ambiguous
    ],
)
def test_unusable_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_counts(write(tmp_path, text), day=DAY)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        parse_counts(tmp_path / "nowhere.csv", day=DAY)
    with pytest.raises(UsageError, match="is a directory"):
        parse_checkout(tmp_path, day=DAY)


# --- hourly checkouts -------------------------------------------------------------------------

def test_the_shared_checkout_files_parse() -> None:
    parsed = parse_checkout(FIXTURES / "checkout_2.csv", day=date(2025, 7, 13))
    assert (parsed.read, len(parsed.rows), parsed.rejected) == (24, 24, [])
    assert parsed.rows[15] == (datetime(2025, 7, 13, 15), 0.0, 51.0, 42.0, 22.427, 27.78)


def test_hour_times_need_a_day(tmp_path: Path) -> None:
    path = write(tmp_path, "time,today,yesterday,same_day_last_week,avg_last_week,avg_last_month\n00h,9,12,11,6.42,4.85\n")
    with pytest.raises(UsageError, match="--date is needed for HHh times"):
        parse_checkout(path, day=None)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("01h,x,1,1,1,1", "today 'x' is not a number"),
        ("01h,1,-1,1,1,1", "yesterday '-1' is negative"),
        ("01h,1,1,1,nan,1", "avg_last_week 'nan' is not a number"),
        ("00h,1,1,1,1,1", "time '00h' already given on line 2"),
        ("24h,1,1,1,1,1", "time '24h' is not a time of day"),
        ("01h,1,1,1,1", "expected 6 fields, got 5"),
    ],
)
def test_malformed_checkout_rows(tmp_path: Path, row: str, reason: str) -> None:
    header = "time,today,yesterday,same_day_last_week,avg_last_week,avg_last_month"
    parsed = parse_checkout(write(tmp_path, f"{header}\n00h,9,12,11,6.42,4.85\n{row}\n"), day=DAY)
    assert [(r.line, reason in r.reason) for r in parsed.rejected] == [(3, True)]
    assert len(parsed.rows) == 1


# --- loading, on three engines ----------------------------------------------------------------

def run_load(url: str, load, parsed) -> LoadReport:  # type: ignore[no-untyped-def]
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            return load(conn, default_schema(), parsed)
    finally:
        engine.dispose()


def select_all(url: str, key: str) -> list[tuple]:
    from anomaly_cli.db import table

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = table(default_schema(), key)
            return [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns or t.c))]
    finally:
        engine.dispose()


def counts_rows(url: str) -> list[tuple]:
    from anomaly_cli.db import table

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = table(default_schema(), "status_counts")
            return [tuple(r) for r in conn.execute(sa.select(t.c.ts, t.c.status, t.c.count)
                                                   .order_by(t.c.ts, t.c.status))]
    finally:
        engine.dispose()


@pytest.mark.engines
def test_load_counts_creates_the_table_and_reloads_idempotently(engine_url: str) -> None:
    parsed = parse_counts(FIXTURES / "transactions_1.csv", day=DAY)
    first = run_load(engine_url, load_counts, parsed)
    assert first == LoadReport(read=4234, loaded=4234, rejected=0, replaced=0)
    stored = counts_rows(engine_url)
    assert stored == parsed.rows
    again = run_load(engine_url, load_counts, parsed)
    assert again == LoadReport(read=4234, loaded=4234, rejected=0, replaced=4234)
    assert counts_rows(engine_url) == stored


@pytest.mark.engines
def test_a_reload_replaces_only_its_minutes_and_statuses(engine_url: str, tmp_path: Path) -> None:
    run_load(engine_url, load_counts, parse_counts(
        write(tmp_path, "time,status,count\n10h 00,approved,5\n10h 00,failed,1\n10h 01,approved,6\n"
                        "10h 02,approved,7\n", "a.csv"), day=DAY))
    report = run_load(engine_url, load_counts, parse_counts(
        write(tmp_path, "time,status,count\n10h 01,approved,60\n10h 01,approved,1\n", "b.csv"), day=DAY))
    assert report == LoadReport(read=2, loaded=1, rejected=0, replaced=1)
    at = lambda m: datetime(2025, 7, 12, 10, m)  # noqa: E731
    assert counts_rows(engine_url) == [(at(0), "approved", 5), (at(0), "failed", 1), (at(1), "approved", 61),
                                       (at(2), "approved", 7)]


@pytest.mark.engines
def test_a_file_with_a_bad_row_loads_nothing(engine_url: str, tmp_path: Path) -> None:
    run_load(engine_url, load_counts, parse_counts(write(tmp_path, "time,status,count\n10h 00,approved,5\n", "a.csv"),
                                                   day=DAY))
    lines = ["time,status,count"] + [f"10h {m:02d},approved,9" for m in range(15)] + ["10h 15,approved,x",
                                                                                      "10h 16,denied,-1"]
    bad = parse_counts(write(tmp_path, "\n".join(lines) + "\n", "bad.csv"), day=DAY)
    with pytest.raises(DataError) as caught:
        run_load(engine_url, load_counts, bad)
    assert "bad.csv:17: count 'x' is not a whole number" in str(caught.value)
    assert "2 bad rows" in str(caught.value) and "nothing was loaded" in str(caught.value)
    assert counts_rows(engine_url) == [(datetime(2025, 7, 12, 10, 0), "approved", 5)]


def test_refusal_happens_before_the_database_is_touched() -> None:
    parsed = CountsFile(Path("x.csv"), 1, [], [Rejected(2, "status is empty")])
    with pytest.raises(DataError, match=r"x.csv:2: status is empty"):
        load_counts(None, default_schema(), parsed)  # type: ignore[arg-type]


@pytest.mark.engines
def test_load_checkout_and_reload(engine_url: str) -> None:
    parsed = parse_checkout(FIXTURES / "checkout_1.csv", day=DAY)
    assert run_load(engine_url, load_checkout, parsed) == LoadReport(24, 24, 0, 0)
    assert run_load(engine_url, load_checkout, parsed) == LoadReport(24, 24, 0, 24)
    rows = select_all(engine_url, "checkout")
    assert len(rows) == 24
    assert rows[8] == (datetime(2025, 7, 12, 8), 0.0, 1.0, 18.0, 8.71, 10.42)
