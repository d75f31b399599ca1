"""SQL validity tests for values a check cannot judge, compiled per engine.

SQLite stores whatever it is given: a transaction_date of '12/09/2025', 1700000000 or a blob,
a price of 'abc' or 1e308, a name that is not UTF-8. The other engines' column types already
refuse most of that, so there the tests shrink to NULL and range checks. Checks put these
expressions in the SQL they run anyway, so bad rows are found and counted in the database,
never by a driver or a converter raising on them (which would end the whole check, with the
value in the error text).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

# Money beyond this is no amount a shop records (NUMERIC(18,2) ends near 1e16), and its cents
# would overflow a BIGINT: 1e30 must be counted as bad, not clamped to 92233720368547758.07.
MONEY_LIMIT = 1e15
# A quantity beyond this is a data error, and it keeps quantity x price within BIGINT cents.
QUANTITY_LIMIT = 1e9


class usable_date(FunctionElement):  # noqa: N801 - reads as a SQL function
    """True when a datetime column holds a date the checks can place in time; NULL or false otherwise.

    On SQLite: text whose first ten characters are the date SQLite itself reads from it, once
    normalised by a modifier (date('2025-02-30', '+0 days') is '2025-03-02', date('now') is
    today, date(1700000000) is NULL), from year 1 on (Python's first), so '12/09/2025', '',
    'garbage', '2025-02-30', numbers and blobs are all unusable.
    """

    type = sa.Boolean()
    inherit_cache = True


@compiles(usable_date, "sqlite")
def _usable_date_sqlite(element: usable_date, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    # substr, not a comparison with the column: its NUMERIC affinity would make '0001' the number 1.
    return f"(date({column}, '+0 days') = substr({column}, 1, 10) AND substr({column}, 1, 4) <> '0000')"


@compiles(usable_date)
def _usable_date(element: usable_date, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} IS NOT NULL)"


class unusable_date(FunctionElement):  # noqa: N801 - reads as a SQL function
    """True when a datetime column holds no usable date (NULL included): NOT usable_date, but
    `col IS NULL` where the column type guarantees the rest, so that an index can answer it."""

    type = sa.Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a predicate on every engine (0 or 1 on SQLite): no "= 1" after it


@compiles(unusable_date, "sqlite")
def _unusable_date_sqlite(element: unusable_date, compiler: Any, **kw: Any) -> str:
    # NOT usable_date, spelt for speed (a sixth less than coalesce(usable, 0) = 0 on every row):
    # once the date part is SQLite's own, the text starts 'YYYY-MM-DD', so its year is 0000
    # exactly when it sorts before '0001-01-01' (the + keeps the column's affinity out).
    column = compiler.process(element.clauses, **kw)
    return (f"({column} IS NULL OR date({column}, '+0 days') IS NOT substr({column}, 1, 10) "
            f"OR +{column} < '0001-01-01')")


@compiles(unusable_date)
def _unusable_date(element: unusable_date, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} IS NULL)"


class bad_number(FunctionElement):  # noqa: N801
    """True when a non-NULL numeric column holds something other than a number below the limit.

    bad_number(column, limit, integer): on SQLite also text, blobs and (with integer) fractions.
    NULL is not bad here: callers count it under its own reason first.
    """

    type = sa.Boolean()
    inherit_cache = True


def _number_parts(element: bad_number, compiler: Any, **kw: Any) -> tuple[str, float, bool]:
    column, limit, integer = element.clauses.clauses
    return compiler.process(column, **kw), float(limit.value), bool(integer.value)


@compiles(bad_number, "sqlite")
def _bad_number_sqlite(element: bad_number, compiler: Any, **kw: Any) -> str:
    column, limit, integer = _number_parts(element, compiler, **kw)
    if integer:  # 1.5 is bad, 2.0 (a REAL where the column's affinity is not INTEGER) is not
        return (f"(typeof({column}) NOT IN ('integer', 'real') OR abs({column}) >= {limit!r} "
                f"OR CAST({column} AS INTEGER) <> {column})")
    return f"(typeof({column}) NOT IN ('integer', 'real') OR abs({column}) >= {limit!r})"


@compiles(bad_number)
def _bad_number(element: bad_number, compiler: Any, **kw: Any) -> str:
    column, limit, _ = _number_parts(element, compiler, **kw)
    return f"(abs({column}) >= {limit!r})"


def is_bad_number(column: ColumnElement, limit: float, *, integer: bool = False) -> ColumnElement:
    return bad_number(column, sa.literal(limit, literal_execute=True), sa.literal(integer, literal_execute=True))


class bad_key(FunctionElement):  # noqa: N801
    """True when a non-NULL integer key (customer_id) holds something else: only possible on SQLite."""

    type = sa.Boolean()
    inherit_cache = True


@compiles(bad_key, "sqlite")
def _bad_key_sqlite(element: bad_key, compiler: Any, **kw: Any) -> str:
    return f"(typeof({compiler.process(element.clauses, **kw)}) NOT IN ('integer', 'null'))"


@compiles(bad_key)
def _bad_key(element: bad_key, compiler: Any, **kw: Any) -> str:
    return "(1 = 0)"


class no_key(FunctionElement):  # noqa: N801
    """True when an integer key (customer_id) is NULL or, on SQLite, anything but an integer:
    `col IS NULL OR bad_key(col)` in one test (a quarter of a counting pass's time on SQLite)."""

    type = sa.Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a predicate on every engine: no "= 1" after it


@compiles(no_key, "sqlite")
def _no_key_sqlite(element: no_key, compiler: Any, **kw: Any) -> str:
    return f"(typeof({compiler.process(element.clauses, **kw)}) <> 'integer')"


@compiles(no_key)
def _no_key(element: no_key, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} IS NULL)"


class _Utf8Text(sa.types.TypeDecorator):
    """Text decoded leniently: bytes that are not UTF-8 become U+FFFD instead of an exception."""

    impl = sa.types.String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8", errors="replace")
        return value


class lenient_text(FunctionElement):  # noqa: N801
    """A text column read so that a value that is not UTF-8 cannot end the query.

    SQLite's driver raises on such a value (naming it in the message); reading the bytes and
    decoding them here replaces the bad bytes instead. Other engines check encodings on write.
    """

    type = _Utf8Text()
    inherit_cache = True


@compiles(lenient_text, "sqlite")
def _lenient_text_sqlite(element: lenient_text, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS BLOB)"


@compiles(lenient_text)
def _lenient_text(element: lenient_text, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


def reason_counts(rows: Any) -> dict[str, int]:
    """{reason: count} from (reason, count) rows, NULL reasons (usable rows) left out."""
    return {str(reason): int(count) for reason, count in rows if reason is not None and count}


class sqlite_datetime_text(FunctionElement):  # noqa: N801
    """SQLite's own reading of a stored date as 'YYYY-MM-DD HH:MM:SS.SSS' (NULL elsewhere).

    Beside the stored text it lets Python read forms SQLite accepts and datetime.fromisoformat
    does not ('2025-09-12 10:00:00 ', '... 24:00:00', a zone suffix: SQLite gives UTC).
    """

    type = sa.String()
    inherit_cache = True


@compiles(sqlite_datetime_text, "sqlite")
def _sqlite_datetime_text(element: sqlite_datetime_text, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(element.clauses, **kw)})"


@compiles(sqlite_datetime_text)
def _no_datetime_text(element: sqlite_datetime_text, compiler: Any, **kw: Any) -> str:
    return "NULL"


def datetime_columns(column: ColumnElement) -> tuple[ColumnElement, ColumnElement]:
    """Two select columns for a stored datetime that `to_datetime` turns into one value."""
    return sa.type_coerce(column, _RawDatetime()), sqlite_datetime_text(column)


class _RawDatetime(sa.types.TypeDecorator):
    """A datetime column as the driver returns it: no converter that raises on odd text."""

    impl = sa.types.String
    cache_ok = True


def to_datetime(raw: Any, normalized: str | None) -> datetime | None:
    """The naive datetime of a stored value, or None when it is not one (counted as bad_date)."""
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=None) if raw.tzinfo is not None else raw
    if isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            value = None
        if value is not None and value.tzinfo is None:
            return value
    if normalized:
        try:
            return datetime.fromisoformat(normalized)
        except ValueError:
            return None
    return None


def stream(conn: Any, statement: Any, rows: int = 1000) -> Any:
    """Execute `statement` streaming its result (`yield_per`: server-side cursors on MariaDB and
    PostgreSQL), planned for reading every row.

    PostgreSQL plans a cursor for its first 10 % of rows (cursor_tuple_fraction): for price it
    then chose nested loops over every transaction in id order, 2.5x the time of the plain
    query. The checks read every row of their results, so they say so (a session setting,
    harmless in a read-only session).
    """
    if conn.dialect.name == "postgresql":
        # On the driver's own cursor: an earlier yield_per stays on the SQLAlchemy connection
        # and would wrap the SET in DECLARE ... CURSOR FOR.
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute("SET cursor_tuple_fraction = 1.0")
        finally:
            cursor.close()
    return conn.execution_options(yield_per=rows).execute(statement)


class int_div(FunctionElement):  # noqa: N801 - reads as a SQL function
    """a // b for integer expressions, an integer on every engine (epoch seconds into bins, cents
    into units).

    Spark's `/` always divides as doubles (7 / 2 is 3.5) and SQLAlchemy's `//` renders it there
    as `/`: a "bin of the day" then becomes a fraction, unique to each transaction, and a
    PARTITION BY on it finds no earlier transaction in the same bin. Spark spells integer
    division `div` (truncating, like SQLite's and PostgreSQL's `/` on integers); elsewhere this
    is the `//` the engines already run.
    """

    type = sa.BigInteger()
    inherit_cache = True


@compiles(int_div, "hive")
def _int_div_hive(element: int_div, compiler: Any, **kw: Any) -> str:
    left, right = element.clauses.clauses
    return f"(({compiler.process(left, **kw)}) div ({compiler.process(right, **kw)}))"


@compiles(int_div)
def _int_div(element: int_div, compiler: Any, **kw: Any) -> str:
    left, right = element.clauses.clauses
    return f"({compiler.process(left // right, **kw)})"


class bare(FunctionElement):  # noqa: N801
    """A number column without its SQLite affinity (unary +), for comparisons that must compare
    what is stored: text stays text and sorts after every number, even in a TEXT column.
    Elsewhere the column itself."""

    type = sa.Float()
    inherit_cache = True


@compiles(bare, "sqlite")
def _bare_sqlite(element: bare, compiler: Any, **kw: Any) -> str:
    return f"(+{compiler.process(element.clauses, **kw)})"


@compiles(bare)
def _bare(element: bare, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)
