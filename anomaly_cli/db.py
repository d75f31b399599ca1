"""Engines (read-only for scans), the mapped tables, schema checks and driver-error translation."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from anomaly_cli.errors import DatabaseError, SchemaError, UsageError

if TYPE_CHECKING:
    from anomaly_cli.config import SchemaMap, TableMap

# Dialect aliases users type -> the driver this tool ships with.
DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "mysql": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "mariadb+pymysql": "mariadb+pymysql",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg2",
}

# SQLite keeps datetimes as text; binding them as 'YYYY-MM-DD HH:MM:SS' (SQLite's own
# format, and what other tools write) keeps text comparisons right at the boundaries.
_SQLITE_DATETIME = SQLITE_DATETIME(
    storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
)


class LocalDateTime(sa.types.TypeDecorator):
    """A datetime read as the machine's naive local time, as every window and "now" are: a
    PostgreSQL timestamptz value comes back aware and is converted (`timestamp` columns are
    naive already and pass through)."""

    impl = sa.DateTime
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone().replace(tzinfo=None)
        return value


DATETIME = LocalDateTime().with_variant(_SQLITE_DATETIME, "sqlite")
MONEY = sa.Numeric(18, 2)

KIND_TYPES: dict[str, sa.types.TypeEngine] = {
    "id": sa.BigInteger(), "key": sa.String(), "text": sa.String(), "money": MONEY, "int": sa.Integer(),
    "float": sa.Float(), "datetime": DATETIME,
}


def mask_url(url: URL | str) -> str:
    """A URL fit for messages and logs: the password replaced by ***."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except (ArgumentError, ValueError):
            # Up to the last @: a password may hold an @ of its own.
            return re.sub(r"//([^:/@]*):.*@", r"//\1:***@", url)
    return url.render_as_string(hide_password=True)


def parse_url(text: str) -> URL:
    """Parse --db: a SQLAlchemy URL, or a bare path to a SQLite file."""
    if "://" not in text:
        return URL.create("sqlite", database=text)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise UsageError(f"cannot parse database URL {mask_url(text)!r}",
                         hint="expected e.g. sqlite:///shop.db, mysql+pymysql://user:pw@host/db, "
                              "postgresql+psycopg://user@host/db") from None
    driver = DRIVERS.get(url.drivername)
    if driver is None:
        raise UsageError(f"unsupported database driver {url.drivername!r}",
                         hint="use sqlite, mysql+pymysql, mariadb+pymysql or postgresql+psycopg")
    return url.set(drivername=driver)


def sqlite_path(url: URL) -> Path | None:
    """The file a SQLite URL names (resolved), or None for other engines and memory databases."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().resolve()


def same_database(a: URL, b: URL) -> bool:
    """True when two URLs reach the same database (the same file, or the same server and name)."""
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return sqlite_path(a) is not None and sqlite_path(a) == sqlite_path(b)
    host = lambda u: (u.host or "localhost").lower().replace("127.0.0.1", "localhost")  # noqa: E731
    return (host(a), a.port, a.database) == (host(b), b.port, b.database)


def identity(url: URL) -> str:
    """A stable text naming the database a URL reaches, whatever the spelling: the SQLite file's
    resolved path, or engine family, host, port and database name. The alert state scopes its
    keys by it, so two audited databases sharing one --state never silence each other."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(url)
        return f"sqlite:{path if path is not None else ':memory:'}"
    family = "mysql" if backend in ("mysql", "mariadb") else backend
    host = (url.host or "localhost").lower()
    host = "localhost" if host in ("127.0.0.1", "::1", "[::1]") else host
    port = url.port or {"mysql": 3306, "postgresql": 5432}.get(family)
    return f"{family}://{host}:{port}/{url.database or ''}"


def local_zone_name() -> str | None:
    """The machine's IANA time zone (TZ, or the /etc/localtime link), if it has one."""
    import os

    zone = os.environ.get("TZ", "").lstrip(":")
    if not zone:
        try:
            target = os.path.realpath("/etc/localtime")
        except OSError:
            return None
        zone = target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else ""
    return zone if re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", zone or "") else None


def create_engine(url: URL, *, connect_timeout: int = 10, read_only: bool = True) -> Engine:
    """An engine that opens read-only sessions unless `read_only` is False (db init, load)."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if read_only:
            if not database or database == ":memory:":
                raise UsageError("a scan needs a SQLite database file, not an in-memory database")
            path = Path(database)
            if not path.is_file():
                raise DatabaseError(f"SQLite database file {database} not found",
                                    hint="check --db, or create one with 'anomaly db init'")
            uri = f"file:{quote(str(path.resolve()))}?mode=ro"
            # mode=ro makes the read-only promise the database's, not ours.
            return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True),
                                    poolclass=NullPool)
        return sa.create_engine(url, poolclass=NullPool)

    connect_args: dict[str, object] = {"connect_timeout": connect_timeout}
    options = []
    if backend == "postgresql" and read_only:
        options.append("-c default_transaction_read_only=on")
    zone = local_zone_name()
    if backend == "postgresql" and zone:
        # timestamptz columns compare with our naive (local) bounds in the session's zone: make
        # it the machine's, so that a window means the same instants on every column type.
        options.append(f"-c TimeZone={zone}")
    if options:
        connect_args["options"] = " ".join(options)
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except NoSuchModuleError:
        raise UsageError(f"unsupported database driver {url.drivername!r}") from None
    except ImportError as exc:
        hint = "pip install 'anomaly-cli[postgres]'" if backend == "postgresql" else "install the driver"
        raise UsageError(f"the driver for {url.drivername} is not installed ({exc.name})", hint=hint) from None
    if backend in ("mysql", "mariadb") and read_only:
        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
    return engine


@contextmanager
def connect(url: URL, *, connect_timeout: int = 10, read_only: bool = True) -> Iterator[Connection]:
    """One connection for the whole run; driver errors come out as DatabaseError."""
    engine = create_engine(url, connect_timeout=connect_timeout, read_only=read_only)
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot connect to {mask_url(url)}: {driver_message(exc)}",
                                hint="check the URL, the server and the credentials") from None
        except (TypeError, ValueError, AttributeError) as exc:
            # The driver refused an option of the URL's query string or a setting.
            raise UsageError(f"the driver refused the connection options of {mask_url(url)}: {exc}") from None
        with conn:
            try:
                yield conn
            except DBAPIError as exc:
                raise DatabaseError(f"query failed on {mask_url(url)}: {driver_message(exc)}") from None
    finally:
        engine.dispose()


def driver_message(exc: SQLAlchemyError) -> str:
    """The driver's own words, on one line, without SQL text or parameters (they may be large)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    args = getattr(orig, "args", None)
    if args and len(args) >= 2 and isinstance(args[0], int):  # pymysql: (code, message)
        text = f"{args[1]} ({args[0]})"
    return " ".join(text.split()).split(" [SQL:")[0]


def table(schema: SchemaMap, key: str) -> Any:
    """The mapped table as SQLAlchemy Core: names from the config, quoted by SQLAlchemy.

    An optional table the database lacks (schema.absent) is an empty stand-in with the same
    columns, so that a check's LEFT JOIN to it simply finds nothing."""
    from anomaly_cli.seed_schema import TABLES

    mapping = schema[key]
    if key in schema.absent:
        empty = [sa.cast(sa.null(), KIND_TYPES[TABLES[key][logical]]).label(logical)
                 for logical in mapping.columns]
        return sa.select(*empty).where(sa.false()).subquery(mapping.name)
    columns = [
        sa.Column(actual, KIND_TYPES[TABLES[key][logical]], key=logical)
        for logical, actual in mapping.columns.items()
    ]
    return sa.Table(mapping.name, sa.MetaData(), *columns, schema=schema.db_schema)


def check_schema(conn: Connection, schema: SchemaMap, needs: Mapping[str, tuple[str, ...]]) -> None:
    """Raise SchemaError naming the first mapped table or column that does not exist."""
    inspector = sa.inspect(conn)
    for key, logical_columns in needs.items():
        mapping: TableMap = schema[key]
        try:
            present = [c["name"] for c in inspector.get_columns(mapping.name, schema=schema.db_schema)]
        except NoSuchTableError:
            raise SchemaError(f"table '{mapping.name}' not found",
                              hint=f"map it with config key {mapping.config_key()}") from None
        for logical in logical_columns:
            actual = mapping.columns[logical]
            if actual in present:
                continue
            near = [p for p in present if p.lower() == actual.lower()]
            hint = f"map it with config key {mapping.config_key(logical)}"
            if near:
                hint += f"; the table has '{near[0]}' (names are case-sensitive)"
            raise SchemaError(f"column '{actual}' not found in table '{mapping.name}'", hint=hint)


class epoch_seconds(FunctionElement):  # noqa: N801 - reads as a SQL function
    """Seconds since 1970-01-01 of a naive datetime, as an integer, on every engine.

    Bucketing by integer division of this value gives the same buckets everywhere,
    with no dependence on the server's time zone.
    """

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler, **kw) -> str:  # type: ignore[no-untyped-def]
    column = compiler.process(element.clauses, **kw)
    # unixepoch() (SQLite 3.38+) costs less than half of strftime('%s') per row.
    if getattr(compiler.dialect.dbapi, "sqlite_version_info", (0,)) >= (3, 38):
        return f"unixepoch({column})"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


@compiles(epoch_seconds, "mysql")
@compiles(epoch_seconds, "mariadb")
def _epoch_mysql(element: epoch_seconds, compiler, **kw) -> str:  # type: ignore[no-untyped-def]
    return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds, "postgresql")
@compiles(epoch_seconds)
def _epoch_postgresql(element: epoch_seconds, compiler, **kw) -> str:  # type: ignore[no-untyped-def]
    # FLOOR: a cast alone rounds fractional seconds, where SQLite and MariaDB truncate.
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


def window_bounds(column: ColumnElement, since: datetime | None, until: datetime | None) -> list[ColumnElement]:
    """since <= column < until, for the bounds that are given (an empty list: no bound)."""
    bounds = []
    if since is not None:
        bounds.append(column >= since)
    if until is not None:
        bounds.append(column < until)
    return bounds


def count_missing(conn: Connection, column: ColumnElement, *where: ColumnElement,
                  total: ColumnElement | None = None, source: Any = None) -> int:
    """How many rows of `source` (default: the column's table) have no value in `column`,
    or the sum of `total` over them.

    Checks count their undated rows with this instead of "column IS NULL OR <range>" in the
    main query: SQLite answers that OR by collecting every matching rowid in memory (292 MB
    at 10M rows), and with an index on the column this is one lookup.
    """
    measure = sa.func.coalesce(sa.func.sum(total), 0) if total is not None else sa.func.count()
    query = sa.select(measure).select_from(source if source is not None else column.table)
    query = query.where(column.is_(None), *where)
    return int(conn.execute(query).scalar() or 0)


def cents(value: ColumnElement) -> ColumnElement:
    """A money column as whole cents: exact integer arithmetic on every engine (SQLite has no DECIMAL)."""
    return sa.cast(sa.func.round(value * 100), sa.BigInteger)


def has_rows(conn: Connection, source: Any, *where: ColumnElement) -> bool:
    """Whether `source` holds a row matching `where`: one index probe, not a count."""
    return conn.execute(sa.select(sa.literal(1)).select_from(source).where(*where).limit(1)).first() is not None
