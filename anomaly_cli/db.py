"""Engines (read-only for scans), the mapped tables, schema checks and driver-error translation."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from anomaly_cli import engines, sessions
from anomaly_cli.errors import DatabaseError, SchemaError, UsageError

if TYPE_CHECKING:
    from anomaly_cli.config import SchemaMap, TableMap

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
    """A URL fit for messages and logs: the password and secret query values replaced by ***."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except (ArgumentError, ValueError):
            return engines.mask_text(url)
    return engines.mask(url)


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
    driver = engines.resolve_driver(url.drivername)
    if driver is None:
        raise UsageError(f"unsupported database driver {url.drivername!r}", hint=f"use {engines.supported()}")
    url = url.set(drivername=driver)
    engines.check_options(url)
    return url


def sqlite_path(url: URL) -> Path | None:
    """The file a SQLite or DuckDB URL names (resolved), or None for servers and memory databases."""
    if not engines.spec(url).file_based or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().resolve()


def same_database(a: URL, b: URL) -> bool:
    """True when two URLs reach the same database: the same file (device and inode, so hard
    links count), or the same server (resolved addresses, port, MySQL == MariaDB) and name."""
    return engines.same_database(a, b)


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


def create_engine(url: URL, *, connect_timeout: int = 10, read_only: bool = True,
                  statement_timeout: int = 0) -> Engine:
    """An engine that opens read-only sessions unless `read_only` is False (db init, load).

    `statement_timeout` (seconds, 0 for none) ends a statement that takes longer, on every engine.
    """
    engines.check_options(url)
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
            # mode=ro makes the read-only promise the database's, not ours.
            engine = sa.create_engine("sqlite://", creator=sessions.sqlite_reader(path), poolclass=NullPool)
        else:
            engine = sa.create_engine(url, poolclass=NullPool)
        if statement_timeout:
            sessions.Watchdog(statement_timeout).install(engine)
        return engine
    if backend == "duckdb" and read_only and not Path(url.database or "").is_file():
        raise DatabaseError(f"DuckDB database file {url.database or '(none)'} not found",
                            hint="check --db, or create one with 'anomaly db init' or 'anomaly db parquet'")
    args = sessions.connect_args(url, connect_timeout=connect_timeout, statement_timeout=statement_timeout,
                                read_only=read_only)
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=args)
    except NoSuchModuleError:
        raise UsageError(f"unsupported database driver {url.drivername!r}", hint=engines.driver_hint(url)) from None
    except ImportError as exc:
        raise UsageError(f"the driver for {url.drivername} is not installed ({exc.name})",
                         hint=engines.driver_hint(url)) from None
    sessions.install_hooks(engine, url, connect_timeout=connect_timeout, statement_timeout=statement_timeout,
                          read_only=read_only)
    return engine


@contextmanager
def connect(url: URL, *, connect_timeout: int = 10, read_only: bool = True,
            statement_timeout: int = 0) -> Iterator[Connection]:
    """One connection for the whole run; driver errors come out as DatabaseError (one line)."""
    engine = create_engine(url, connect_timeout=connect_timeout, read_only=read_only,
                           statement_timeout=statement_timeout)
    secrets = engines.secrets_of(url)
    note = engines.read_only_note(url) if read_only else None
    if note:
        print(f"anomaly: note: {note}", file=sys.stderr)
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot connect to {mask_url(url)}: {driver_message(exc, secrets)}",
                                hint="check the URL, the server and the credentials") from None
        except (TypeError, ValueError, AttributeError) as exc:
            # The driver refused an option of the URL's query string or a setting.
            raise UsageError(f"the driver refused the connection options of {mask_url(url)}: "
                             f"{engines.scrub(str(exc), secrets)}") from None
        try:
            yield conn
        except (DBAPIError, OSError, *sessions.transport_errors(url)) as exc:
            _silence_driver_cleanup()
            watchdog = getattr(engine, "anomaly_watchdog", None)
            fired = watchdog is not None and watchdog.fired
            raise DatabaseError(_query_failed(url, exc, statement_timeout, secrets, fired)) from None
        finally:
            _close_quietly(conn)
    finally:
        with _pool_silenced():
            engine.dispose()


def _query_failed(url: URL, exc: BaseException, statement_timeout: int, secrets: list[str], fired: bool) -> str:
    text = driver_message(exc, secrets)
    if statement_timeout and (fired or _is_timeout(text)):
        return (f"query on {mask_url(url)} did not finish within db.statement_timeout "
                f"({statement_timeout} s): {text}")
    return f"query failed on {mask_url(url)}: {text}"


def _is_timeout(text: str) -> bool:
    return bool(re.search(r"timed? ?out|interrupt|max_statement_time|max_execution_time|statement timeout",
                          text, re.IGNORECASE))


def _silence_driver_cleanup() -> None:
    """After a connection broke mid-result, drop the driver's cleanup failures.

    pymysql's streamed result tries to drain the rest of the answer when it is garbage
    collected; with the connection gone that fails, and Python would print each failure as
    'Exception ignored in ... Traceback' (28 lines after our one). Only the driver's own
    objects are silenced; anything else still reaches the previous hook.
    """
    previous = sys.unraisablehook

    def hook(unraisable) -> None:  # type: ignore[no-untyped-def]
        owner = getattr(unraisable.object, "__module__", "") or getattr(unraisable.object, "__qualname__", "")
        if str(owner).startswith(("pymysql", "psycopg", "pyhive", "thrift")) or \
                "pymysql" in repr(unraisable.object):
            return
        previous(unraisable)

    sys.unraisablehook = hook


def _close_quietly(conn: Connection) -> None:
    """Close a connection that may be broken (server gone mid-result, socket timed out) without noise.

    Closing a broken connection fails again (PyHive sends CloseSession down a dead socket); the
    pool would log that failure with its traceback on stderr, after our one line.
    """
    with _pool_silenced():
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - the run's own error is already on its way to the user
            try:
                conn.invalidate()
            except Exception:  # noqa: BLE001
                pass


@contextmanager
def _pool_silenced() -> Iterator[None]:
    import logging

    # A level, not `disabled`: the pool logs through child loggers (sqlalchemy.pool.impl.*),
    # which inherit their parent's level but not its disabled flag.
    logger = logging.getLogger("sqlalchemy.pool")
    before = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(before)


def driver_message(exc: BaseException, secrets: list[str] | None = None) -> str:
    """The driver's own words, on one line, without SQL text, parameters or secrets."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    if orig is None and not isinstance(exc, SQLAlchemyError):
        text = f"{type(exc).__name__}: {text}"  # a transport error: its class says what happened
    args = getattr(orig, "args", None)
    if args and len(args) >= 2 and isinstance(args[0], int):  # pymysql: (code, message)
        text = f"{args[1]} ({args[0]})"
    text = " ".join(text.split()).split(" [SQL:")[0]
    # Spark wraps its error in a dump of the Thrift response: keep the message it carries.
    found = re.search(r"errorMessage=['\"](.*?)['\"][,)]", text)
    if found:
        text = " ".join(found.group(1).replace("\\n", " ").split())
        text = re.sub(r"^Error running query: (\[[\w.]+\] )?(org\.apache\.[\w.$]+: )?", "", text)
    if len(text) > 300:  # Spark explains at length: its first sentence says what went wrong
        end = text.find(". ", 40)
        text = text[:end + 1] if 0 < end < 500 else text[:500] + " ..."
    return engines.scrub(text, secrets or [])


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
    for key, logical_columns in needs.items():
        mapping: TableMap = schema[key]
        present = engines.columns(conn, mapping.name, schema.db_schema)
        if present is None:
            raise SchemaError(f"table '{mapping.name}' not found",
                              hint=f"map it with config key {mapping.config_key()}")
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


@compiles(epoch_seconds)
def _epoch(element: epoch_seconds, compiler, **kw) -> str:  # type: ignore[no-untyped-def]
    return engines.epoch_sql(compiler.dialect, compiler.process(element.clauses, **kw))


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
