"""Values that parse but cannot be used (issue 10 item 9): one line naming the option (a usage
error, exit 2) or the file and line (a data error, exit 3, as every bad row of a file to load),
before anything runs. Each of these once ended in an OverflowError or an engine error."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from anomaly_cli.params import DEFAULT_MAXIMUM, Param
from anomaly_cli.schema import create
from anomaly_cli.config import default_schema
from tests.conftest import load_database

import sqlalchemy as sa


@pytest.fixture
def empty_shop(sqlite_url: str) -> str:
    load_database(sqlite_url, {})
    return sqlite_url


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["spam", "--since", "0001-01-01"], "--since 0001-01-01 is out of range"),
        (["sales", "--since", "0001-01-01"], "--since 0001-01-01 is out of range"),
        (["failed", "--since", "0001-01-01"], "--since 0001-01-01 is out of range"),
        (["price", "--until", "9999-12-31"], "--until 9999-12-31 is out of range"),
        (["spam", "--since", "999999d"], "--since 999999d is out of range"),
        (["price", "--above", "1e308"], "price.above"),
        (["spam", "--small-amount", "1e308"], "spam.small_amount"),
        (["spam", "--min-count", "99999999999999999999"], "spam.min_count"),
        (["spam", "--window", "1" + "0" * 5000], "spam.window"),
        (["sales", "--history", "100000", "--since", "2025-01-01"], "sales.history"),
        (["failed", "--history", "100000", "--since", "2025-01-01"], "failed.history"),
    ],
)
def test_out_of_range_values_are_usage_errors(empty_shop: str, cli, args: list[str], words: str) -> None:
    run = cli("scan", *args, "--db", empty_shop)
    assert run.exit_code == 2, run.stderr
    assert words in run.stderr and run.stderr.count("\n") == 1
    assert "Overflow" not in run.stderr and len(run.stderr) < 300  # the 5,000 digits are cut


def test_the_bounds_themselves_are_accepted(empty_shop: str, cli) -> None:
    for args in (["spam", "--since", "1900-01-01"], ["sales", "--since", "1900-01-01", "--history", "520"],
                 ["failed", "--since", "1900-01-01", "--history", "3650"], ["price", "--until", "8999-12-31"],
                 ["spam", "--min-count", str(DEFAULT_MAXIMUM), "--window", str(DEFAULT_MAXIMUM)]):
        run = cli("scan", *args, "--db", empty_shop)
        assert run.exit_code == 0, (args, run.stderr)


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        (int, "99999999999999999999", "must be at most"),
        (int, "-99999999999999999999", "must be at least"),
        (Decimal, "1e308", "must be at most"),
        (float, "1e308", "must be at most"),
        (float, "1e309", "is not a number"),  # inf
        (int, 1e300, "must be at most"),  # a TOML float that is a whole number
        (int, float("inf"), "is not a whole number"),
    ],
)
def test_params_bound_numbers_without_a_declared_maximum(kind: type, raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Param("x", kind(1), "a number", kind=kind).parse(raw)


def test_a_declared_maximum_wins() -> None:
    assert Param("x", 1, "n", kind=int, maximum=5 * DEFAULT_MAXIMUM).parse(str(2 * DEFAULT_MAXIMUM)) == 2 * DEFAULT_MAXIMUM


@pytest.mark.parametrize(
    ("kind", "header", "row", "words"),
    [
        ("counts", "time,status,count", "10h 00,approved," + "1" + "0" * 26, "count 100000000000000000000000000 is larger"),
        ("counts", "time,status,count", "10h 00,approved,2147483648", "is larger than 2147483647"),
        ("checkout", "time,today,yesterday,same_day_last_week,avg_last_week,avg_last_month",
         "10h,1e308,1,1,1,1", "today 1e308 is larger"),
    ],
)
def test_load_refuses_values_the_table_cannot_hold(tmp_path: Path, cli, kind: str, header: str, row: str,
                                                   words: str) -> None:
    path = tmp_path / f"{kind}.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'load.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        create(conn, default_schema())
    engine.dispose()
    run = cli("load", kind, str(path), "--date", "2025-09-12", "--db", url)
    # A bad row of a file is a data error (exit 3, as every bad row of a load), named by file:line.
    assert run.exit_code == 3, run.stderr
    assert f"{path}:2: " in run.stderr and words in run.stderr and run.stderr.count("\n") == 1
    # Nothing was written: no table was created for the file.
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("status_counts" if kind == "counts" else "checkout")
    engine.dispose()


def test_load_takes_the_largest_count_the_table_holds(tmp_path: Path, cli) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("time,status,count\n10h 00,approved,2147483647\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'load.db'}"
    run = cli("load", "counts", str(path), "--date", "2025-09-12", "--db", url)
    assert run.exit_code == 0, run.stderr
