"""bucket_keys: grouping SQLite dates by their leading text places every row where the full
per-row check and epoch arithmetic placed it, and counts the same rows as unusable."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import sqlalchemy as sa

from anomaly_cli.bucket_keys import BAD_DATE, NO_DATE, gather, key_of, place
from anomaly_cli.db import epoch_seconds
from anomaly_cli.sqlfn import usable_date

EDGES = [
    "2025-09-12 10:41:07", "2025-09-12 00:00:00", "2025-09-12 23:59:59", "2025-02-30 10:00:00",
    "2024-02-29 10:00:00", "2025-02-29 10:00:00", "2025-09-12 24:00:00", "2025-09-12 10:99:00",
    "0000-01-01 00:00:00", "0001-01-01 00:00:00", "1969-12-31 23:30:00", "1970-01-01 00:00:00",
    "2025-09-12T10:00:00", "2025-09-12 10:00:00 ", "2025-09-12 10:00:00Z", "2025-09-12 23:30:00-01:00",
    "2025-09-12 10:00:00+05:30", "2025-09-12\t10:00:00", "2025-09-12  10:00  ", "2025-09-12 10:00",
    "2025-09-12", "12/09/2025", "", "   ", "garbage", "now", "2025-09-12junk", "2460000.5",
    "2460000.50000000000", "9999-12-31 23:59:59", 1700000000, 2460000.5, b"2025-09-12 10:00:00", None,
]


def fuzzed(seed: int, n: int) -> list[str]:
    """Plain dates with a few characters replaced, inserted or deleted."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = list(f"{rng.randint(0, 9999):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d} "
                    f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}")
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            i, c = rng.randrange(len(text)), rng.choice("0123456789 -:+T.Z\t")
            op = rng.random()
            if op < 0.6:
                text[i] = c
            elif op < 0.8:
                text.insert(i, c)
            else:
                del text[i]
        out.append("".join(text))
    return out


@pytest.fixture(scope="module")
def dates() -> tuple[sa.Engine, sa.Table]:
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("d", sa.DateTime))
    table.create(engine)
    with engine.begin() as conn:  # the driver's own insert: SQLite keeps each value as given
        conn.exec_driver_sql("INSERT INTO t (d) VALUES (?)", [(v,) for v in EDGES + fuzzed(7, 20000)])
    return engine, table


@pytest.mark.parametrize("indexed", [True, False], ids=["index-key", "scan-key"])
@pytest.mark.parametrize("size", [900, 3600, 86400])
def test_every_row_lands_where_the_full_check_put_it(dates: tuple[sa.Engine, sa.Table], size: int,
                                                     indexed: bool) -> None:
    # Both spellings of the plain test (index_key's, and the cheaper one of a pass that reads
    # the table) must place every row where the full per-row check does.
    engine, t = dates
    d = t.c.d
    epoch = epoch_seconds(d)
    old = sa.case((usable_date(d), epoch - epoch % size), (d.is_(None), sa.literal_column("'none'")),
                  else_=sa.literal_column("'bad'"))
    key = key_of(d, size, indexed=indexed)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.type_coerce(old, sa.types.NullType()), key)).all()
        grouped = conn.execute(sa.select(key, sa.func.count()).group_by(key)).all()
    expected = Counter({"none": NO_DATE, "bad": BAD_DATE}.get(o, o) for o, _ in rows)  # type: ignore[arg-type]
    mismatched = [(o, k, place(k, size)) for o, k in rows
                  if {"none": NO_DATE, "bad": BAD_DATE}.get(o, o) != place(k, size)]  # type: ignore[arg-type]
    assert not mismatched, mismatched[:10]
    # Most rows took the cheap path, or this test would prove nothing about it.
    assert sum(isinstance(k, str) and len(k) > 1 for _, k in rows) > len(rows) // 5
    buckets, skipped = gather(grouped, size)
    assert {**{b: n[0] for b, n in buckets.items()}, **{r: n[0] for r, n in skipped.items()}} == dict(expected)
    assert skipped[NO_DATE] == [1] and skipped[BAD_DATE][0] > 1000


def test_engines_with_timestamp_types_keep_the_integer_bucket() -> None:
    from sqlalchemy.dialects import postgresql

    t = sa.Table("t", sa.MetaData(), sa.Column("d", sa.DateTime))
    sql = str(sa.select(key_of(t.c.d, 3600)).compile(dialect=postgresql.dialect()))
    assert "EXTRACT(EPOCH" in sql and "LIKE" not in sql
    assert place(7200, 3600) == 7200 and place(None, 3600) == NO_DATE


@pytest.mark.parametrize("size", [3600, 86400])
def test_an_index_on_the_key_groups_every_row_as_the_scan_does(size: int) -> None:
    # key_index.index_key: SQLite stores the hour key of every row (its date checks done when the
    # row is written); days and hours both read it in key order, without a sort.
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("d", sa.DateTime))
    table.create(engine)
    values = EDGES + fuzzed(11, 5000)
    grouped = sa.select(key_of(table.c.d, size), sa.func.count()).group_by(key_of(table.c.d, size))
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t (d) VALUES (?)", [(v,) for v in values])
        scanned, scanned_skipped = gather(conn.execute(grouped), size)
        sa.Index("ix_key", key_of(table.c.d, 3600)).create(conn)
        # 'now' is read by no date function in the key: SQLite would refuse to write such a row.
        conn.exec_driver_sql("INSERT INTO t (d) VALUES ('now'), ('NOW'), (?)", (values[0],))
        plan = " ".join(row[3] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + str(grouped.compile(engine, compile_kwargs={"literal_binds": True}))))
        buckets, skipped = gather(conn.execute(grouped), size)
    assert "ix_key" in plan and "TEMP B-TREE" not in plan, plan
    first = place(values[0][:13], size)  # a plain date: its key is its first 13 characters
    assert buckets == {**scanned, first: [scanned[first][0] + 1]}
    assert skipped == {**scanned_skipped, BAD_DATE: [scanned_skipped[BAD_DATE][0] + 2]}
    assert skipped[BAD_DATE][0] > 1000


@pytest.mark.parametrize("odd", EDGES + fuzzed(23, 40))
def test_price_proves_no_unusable_date_by_the_key_index_exactly_when_there_is_none(odd: object) -> None:
    # price's count of undated items is skipped when the key index shows every date usable: it
    # must agree with unusable_date (the full count) for every spelling, one odd row at a time.
    from anomaly_cli.bucket_keys import HOUR
    from anomaly_cli.key_index import has_key_index, index_key
    from anomaly_cli.checks.price import no_unusable_date
    from anomaly_cli.indexes import expression_index_name
    from anomaly_cli.sqlfn import unusable_date

    engine = sa.create_engine("sqlite://")
    t = sa.Table("transactions", sa.MetaData(), sa.Column("transaction_id", sa.Integer, primary_key=True),
                 sa.Column("transaction_date", sa.DateTime), sa.Column("status", sa.String),
                 sa.Column("total_amount", sa.Numeric))
    t.create(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO transactions (transaction_date, status, total_amount) VALUES (?, 'SUCCESS', 5)",
                             [("2025-09-12 10:41:07",), ("1999-01-01 00:00:00",), (odd,)])
        assert not no_unusable_date(conn, t)  # no index: nothing is proven
        name = expression_index_name(conn.dialect, t, ("bucket_key", "status", "total_amount", "cents"), index_key(t))
        sa.Index(name, *index_key(t)).create(conn)
        assert has_key_index(conn, t)
        unusable = conn.execute(sa.select(sa.func.count()).where(unusable_date(t.c.transaction_date))).scalar()
        assert no_unusable_date(conn, t) is (unusable == 0), (odd, unusable)
        plan = " ".join(row[3] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + str(sa.select(key_of(t.c.transaction_date, HOUR)).group_by(
                key_of(t.c.transaction_date, HOUR)).compile(engine, compile_kwargs={"literal_binds": True}))))
    assert name in plan and "TEMP B-TREE" not in plan, plan
