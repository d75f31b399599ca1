"""GROUP BY keys for time buckets that spare SQLite per-row date arithmetic, and their reading.

sales and failed count rows per bucket (15 minutes, an hour, a day) in one pass that also counts
the rows whose date is missing or unusable. Placing each row by `epoch - epoch % size`, after
checking it is a real date (sqlfn.usable_date), cost SQLite about twice the GROUP BY itself.
Here a plain stored date ('2025-09-12 10:41:07', what every loader writes) is grouped by its
leading text, '2025-09-12 10' for an hour, and Python reads the few thousand keys: one that is no
date ('2025-02-30 10', hour 24, year 0) is a group of unusable rows. Only the other rows pay for
the full check, exactly as before: usable ones get the integer bucket start (for hours and days,
the hour's, which Python cuts to the bucket: one key for both, so one SQLite expression index,
key_index.index_key, serves both), the rest the key '!' (bad_date); a missing date gives NULL
(no_date). Engines with real timestamp types have no unusable dates: their key is the integer
bucket start.

The plain form is tested cheaply: LIKE for the shape, julianday() for a date SQLite reads whole
(minutes, seconds), from 1970 on (before it `epoch - epoch % size` truncates toward zero, which
only the full path reproduces). Python checks the day and the hour, which julianday() tolerates
(February 30, 24:00) but which make a date unusable. That spelling is key_index.index_key's,
which SQLite matches by its text; a pass that reads the table (key_of(..., indexed=False),
scan_key) tests `datetime(d) = +d` instead, for the same places: with the 1970 bound spelt
without the column's affinity, a third fewer instructions for the date checks (callgrind,
200k sales: 462 M -> 311 M).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

NO_DATE = "no_date"
BAD_DATE = "bad_date"
_BAD_KEY = "!"
HOUR = 3600
_EPOCH_DAY = date(1970, 1, 1).toordinal()


class bucket_key(FunctionElement):  # noqa: N801 - reads as a SQL function
    """bucket_key(column, size): a row's bucket as a group key (see the module)."""

    type = sa.types.NullType()
    inherit_cache = True


class scan_key(bucket_key):  # noqa: N801 - reads as a SQL function
    """bucket_key for a pass that no index serves: the same key for every row, by a cheaper test."""

    inherit_cache = True


def key_of(column: ColumnElement, size: int, *, indexed: bool = True) -> ColumnElement:
    """The group key of `column` in buckets of `size` seconds. The size is SQL text, not a bind:
    part of the statement's cache key, and PostgreSQL matches the GROUP BY with the select list.
    `indexed=False`: a pass that reads the table, which may spell the plain test for speed
    (scan_key); the default is the spelling of key_index.index_key, which SQLite matches by text."""
    return (bucket_key if indexed else scan_key)(column, sa.literal_column(str(int(size))))


def _parts(element: bucket_key, compiler: Any, **kw: Any) -> tuple[str, int]:
    column, size = element.clauses.clauses
    return compiler.process(column, **kw), int(size.name)


def _epoch_bucket(element: bucket_key, compiler: Any, size: int, **kw: Any) -> str:
    from anomaly_cli.db import epoch_seconds

    epoch = epoch_seconds(element.clauses.clauses[0])
    # epoch - epoch % size: integer arithmetic on every engine (MySQL's '/' divides as DECIMAL);
    # built as an expression so that '%' is escaped where the driver's parameters use it.
    return compiler.process(epoch - epoch % sa.literal_column(str(size)), **kw)


def _prefix(column: str, size: int) -> str | None:
    """The leading text that names a plain date's bucket, or None when no prefix does."""
    if size % 3600 == 0 and 86400 % size == 0:
        return f"substr({column}, 1, 13)"  # the hour: a day's key keeps it, to refuse hour 24
    if size < 3600 and size % 60 == 0 and 3600 % size == 0:
        # 'YYYY-MM-DD HH:' and the bucket's number within the hour ('07' / 15 is 0).
        return f"(substr({column}, 1, 14) || (substr({column}, 15, 2) / {size // 60}))"
    return None


@compiles(bucket_key, "sqlite")
def _bucket_key_sqlite(element: bucket_key, compiler: Any, **kw: Any) -> str:
    column, _ = _parts(element, compiler, **kw)
    # '1970-01-01' is no number, so the column's NUMERIC affinity leaves the comparison textual.
    return _sqlite_key(element, compiler, f"{column} LIKE '____-__-__ __:__:__' AND {column} >= '1970-01-01' "
                                          f"AND julianday({column}) IS NOT NULL", **kw)


@compiles(scan_key, "sqlite")
def _scan_key_sqlite(element: bucket_key, compiler: Any, **kw: Any) -> str:
    column, _ = _parts(element, compiler, **kw)
    # datetime() rewrites a date in exactly the plain spelling, so equality is the shape and the
    # date in one call (a quarter less than LIKE + julianday). February 30 and hour 24, which
    # datetime() carries over, take the full path to the same bad_date. The unary + keeps the
    # column's NUMERIC affinity out: with it SQLite tries to read each text as a number first.
    return _sqlite_key(element, compiler, f"+{column} >= '1970-01-01' AND datetime({column}) = +{column}", **kw)


@compiles(scan_key)
def _scan_key(element: bucket_key, compiler: Any, **kw: Any) -> str:
    return _bucket_key(element, compiler, **kw)


def _sqlite_key(element: bucket_key, compiler: Any, plain: str, **kw: Any) -> str:
    from anomaly_cli.sqlfn import usable_date

    column, size = _parts(element, compiler, **kw)
    usable = compiler.process(usable_date(element.clauses.clauses[0]), **kw)
    prefix = _prefix(column, size)
    # Where the hour is the prefix (hours, days), the full path gives the hour too and Python
    # cuts it to the bucket (place): one key for every such size, so one SQLite expression index
    # (index_key, declared by sales) serves sales by day and by hour and failed alike.
    full_size = HOUR if prefix is not None and size % HOUR == 0 else size
    # 'now' (any case) is no stored date, and SQLite refuses to read it in an index expression:
    # it is told apart before date() would see it, or no such row could be written once
    # index_key exists.
    full = (f"WHEN lower({column}) = 'now' THEN '{_BAD_KEY}' "
            f"WHEN {usable} THEN coalesce({_epoch_bucket(element, compiler, full_size, **kw)}, '{_BAD_KEY}') "
            f"WHEN {column} IS NOT NULL THEN '{_BAD_KEY}' END")
    if prefix is None:
        return f"(CASE {full})"
    return f"(CASE WHEN {plain} THEN {prefix} {full})"


@compiles(bucket_key)
def _bucket_key(element: bucket_key, compiler: Any, **kw: Any) -> str:
    _, size = _parts(element, compiler, **kw)
    return f"({_epoch_bucket(element, compiler, size, **kw)})"


def place(key: Any, size: int) -> int | str:
    """The bucket start (epoch seconds) a group key names, or why its rows are skipped
    (NO_DATE, BAD_DATE)."""
    if key is None:
        return NO_DATE
    if isinstance(key, int):
        # Cut to the bucket as the database's `epoch - epoch % size` does (toward zero: SQLite's
        # hour keys before 1970); a key that is already a bucket start stays as it is.
        cut = abs(key) % size
        return key - cut if key >= 0 else key + cut
    if not isinstance(key, str) or len(key) < 13:
        return BAD_DATE
    try:
        day = date.fromisoformat(key[:10])
    except ValueError:  # February 30, year 0 (the shape itself was checked by the database)
        return BAD_DATE
    hour = int(key[11:13])
    if hour > 23:
        return BAD_DATE
    seconds = (day.toordinal() - _EPOCH_DAY) * 86400 + hour * 3600
    if len(key) > 14:
        seconds += int(key[14:]) * (size // 60) * 60
    return seconds - seconds % size


def gather(rows: Iterable[tuple[Any, ...]], size: int) -> tuple[dict[int, list[int]], dict[str, list[int]]]:
    """Sum each (key, count, count, ...) row's counts by bucket start, and by skip reason.

    Several keys can name one bucket (the 24 hours of a day; a plain and an unusual spelling
    of the same hour), so the sums are Python's. NULL counts add nothing.
    """
    buckets: dict[int, list[int]] = {}
    skipped: dict[str, list[int]] = {}
    for key, *counts in rows:
        at = place(key, size)
        target = (skipped if isinstance(at, str) else buckets).setdefault(at, [0] * len(counts))  # type: ignore[arg-type]
        for i, n in enumerate(counts):
            if n:
                target[i] += int(n)
    return buckets, skipped


def outside(column: ColumnElement, bounds: list[ColumnElement]) -> ColumnElement:
    """Rows a pass bounded by `bounds` does not read: to count their unusable dates apart."""
    return sa.or_(column.is_(None), sa.not_(sa.and_(*bounds)))
