"""What differs between database engines, in one place.

Drivers and their aliases, the options a URL may carry, how a session is made read-only,
how connects and statements are bounded in time, how two URLs are compared for identity,
and the SQL that is spelled differently per dialect. The rest of the tool asks this module
instead of testing `dialect.name` itself.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from anomaly_cli.errors import UsageError


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """One engine family as this tool uses it."""

    backend: str                 # SQLAlchemy backend name
    driver: str                  # the drivername the tool connects with
    label: str                   # for messages
    family: str                  # engines that are one server kind share it (mysql == mariadb)
    default_port: int | None = None
    extra: str | None = None     # the pip extra that installs the driver
    connect_timeout: bool = False  # the driver takes connect_timeout itself
    read_only: str = "session"   # session | file | grants: who enforces that a scan cannot write
    file_based: bool = False
    # URL query options refused (they run statements or undo read-only); None: allow-list below.
    refused: frozenset[str] = frozenset()
    allowed: frozenset[str] | None = None


SPECS: dict[str, EngineSpec] = {s.backend: s for s in (
    EngineSpec("sqlite", "sqlite", "SQLite", "sqlite", read_only="file", file_based=True),
    EngineSpec("mysql", "mysql+pymysql", "MySQL", "mysql", 3306, connect_timeout=True,
               refused=frozenset({"init_command", "read_default_file", "read_default_group",
                                  "local_infile", "client_flag", "autocommit"})),
    EngineSpec("mariadb", "mariadb+pymysql", "MariaDB", "mysql", 3306, connect_timeout=True,
               refused=frozenset({"init_command", "read_default_file", "read_default_group",
                                  "local_infile", "client_flag", "autocommit"})),
    EngineSpec("postgresql", "postgresql+psycopg", "PostgreSQL", "postgresql", 5432, "postgres",
               connect_timeout=True, refused=frozenset({"service"})),
    # DuckDB options become database settings; only these cannot touch read-only.
    EngineSpec("duckdb", "duckdb", "DuckDB", "duckdb", extra="duckdb", read_only="file", file_based=True,
               allowed=frozenset({"threads", "memory_limit", "max_memory", "temp_directory"})),
    EngineSpec("hive", "hive", "Spark SQL (Hive Thrift)", "hive", 10000, extra="spark", read_only="grants",
               allowed=frozenset({"auth", "kerberos_service_name"})),
)}

# Dialect names users type -> the backend above.
ALIASES = {
    "sqlite": "sqlite", "sqlite+pysqlite": "sqlite",
    "mysql": "mysql", "mysql+pymysql": "mysql",
    "mariadb": "mariadb", "mariadb+pymysql": "mariadb",
    "postgres": "postgresql", "postgresql": "postgresql", "postgresql+psycopg": "postgresql",
    "postgresql+psycopg2": "postgresql",
    "duckdb": "duckdb",
    "hive": "hive", "hive+thrift": "hive", "spark": "hive", "sparksql": "hive",
}

# Query keys whose values are secrets wherever they appear in a URL.
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.IGNORECASE)
_SAFE_KEYS = frozenset({"auth", "kerberos_service_name", "sslkey"})  # names and paths, not secrets
# PostgreSQL settings a scan's session must not receive from a URL.
_PG_REFUSED_SETTING = re.compile(r"read_only|default_transaction|session_replication_role|"
                                 r"session_authorization|role", re.IGNORECASE)


def spec(url: URL) -> EngineSpec:
    return SPECS[url.get_backend_name()]


def resolve_driver(drivername: str) -> str | None:
    """The drivername this tool uses for what the user typed, or None if unsupported."""
    backend = ALIASES.get(drivername)
    return None if backend is None else SPECS[backend].driver


def supported() -> str:
    return ", ".join(s.driver for s in SPECS.values())


# -- secrets ---------------------------------------------------------------------------------

def is_secret_key(key: str) -> bool:
    return key.lower() not in _SAFE_KEYS and bool(_SECRET_KEY.search(key))


def mask(url: URL) -> str:
    """The URL with its password and every secret-looking query value replaced by ***."""
    token = "MASKEDxSECRET"  # rendered URLs percent-encode '*', so the stars go in afterwards
    query = {k: (token if is_secret_key(k) else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True).replace(token, "***")


def mask_text(text: str) -> str:
    """Mask a URL that did not parse: userinfo password and secret query values."""
    text = re.sub(r"//([^:/@]*):.*@", r"//\1:***@", text)  # up to the last @: a password may hold one
    return re.sub(r"([?&;][^=&]*(?:pass|pwd|secret|token|key|credential)[^=&]*=)[^&]*", r"\1***", text,
                  flags=re.IGNORECASE)


def secrets_of(url: URL) -> list[str]:
    """The secret values a URL holds, to scrub them from driver messages."""
    values = [url.password] if url.password else []
    for key, value in url.query.items():
        if is_secret_key(key):
            values.extend([value] if isinstance(value, str) else list(value))
    return [str(v) for v in values if v]


# -- options -----------------------------------------------------------------------------------

def check_options(url: URL) -> None:
    """Refuse URL options that would run statements or weaken the read-only session (exit 2)."""
    engine = spec(url)
    for key, value in url.query.items():
        refused = key.lower() in engine.refused
        if engine.allowed is not None and key not in engine.allowed:
            refused = True
        if engine.backend == "postgresql" and key == "options" and _PG_REFUSED_SETTING.search(str(value)):
            refused = True
        if refused:
            hint = f"allowed options: {', '.join(sorted(engine.allowed))}" if engine.allowed else \
                "remove it from the URL (ANOMALY_DB_URL, .env, anomaly.toml or --db)"
            raise UsageError(f"the {engine.label} URL option {key!r} is not accepted: it could run "
                             "statements or make the session writable", hint=hint)


def connect_args(url: URL, *, connect_timeout: int, statement_timeout: int, read_only: bool) -> dict[str, Any]:
    """Driver arguments: timeouts the driver understands, and read-only from the first statement."""
    engine = spec(url)
    args: dict[str, Any] = {}
    if engine.connect_timeout:
        args["connect_timeout"] = connect_timeout
    if engine.family == "mysql":
        # pymysql's connect_timeout covers only the TCP connect: a listener that accepts and
        # never answers would hold the handshake forever. read_timeout bounds it; it is raised
        # to the statement timeout once the session is up (see _mysql_session).
        args["read_timeout"] = connect_timeout
        args["write_timeout"] = connect_timeout
        if read_only:
            # pymysql runs init_command inside connect(): no statement of ours comes before it.
            args["init_command"] = "SET SESSION TRANSACTION READ ONLY"
    elif engine.backend == "postgresql":
        settings = [str(url.query.get("options", "")).strip()]
        if read_only:
            settings.append("-c default_transaction_read_only=on")
        if statement_timeout:
            settings.append(f"-c statement_timeout={statement_timeout * 1000}")
        from anomaly_cli.db import local_zone_name

        zone = local_zone_name()
        if zone:
            # timestamptz columns compare with our naive (local) bounds in the session's zone: make
            # it the machine's, so that a window means the same instants on every column type.
            settings.append(f"-c TimeZone={zone}")
        # Given explicitly, this also overrides a PGOPTIONS from the environment.
        args["options"] = " ".join(s for s in settings if s)
    elif engine.backend == "duckdb":
        args["read_only"] = read_only
    return args


def install_hooks(engine: sa.Engine, url: URL, *, connect_timeout: int, statement_timeout: int,
                  read_only: bool) -> Watchdog | None:
    """Per-engine session set-up, and the watchdog that ends a statement over the time limit."""
    spec_ = spec(url)
    if spec_.family == "mysql":
        sa.event.listen(engine, "connect", lambda dbapi, _rec: _mysql_session(dbapi, statement_timeout))
    elif spec_.backend == "hive":
        sa.event.listen(engine, "do_connect",
                        lambda _d, _rec, cargs, cparams: _hive_connect(cparams, connect_timeout, statement_timeout))
    return Watchdog(statement_timeout).install(engine) if statement_timeout else None


def _mysql_session(dbapi_connection: Any, statement_timeout: int) -> None:
    # From now on a read waits up to the statement timeout (0: for ever): a server or proxy that
    # stalls mid-result ends the scan. pymysql re-reads _read_timeout before every packet.
    dbapi_connection._read_timeout = statement_timeout or None
    dbapi_connection._write_timeout = statement_timeout or None
    if not statement_timeout:
        return
    with dbapi_connection.cursor() as cursor:
        if "mariadb" in dbapi_connection.get_server_info().lower():
            cursor.execute(f"SET SESSION max_statement_time = {int(statement_timeout)}")
        else:
            cursor.execute(f"SET SESSION max_execution_time = {int(statement_timeout) * 1000}")


def _hive_connect(cparams: dict[str, Any], connect_timeout: int, statement_timeout: int) -> Any:
    """A PyHive connection whose socket has timeouts (PyHive itself would wait for ever)."""
    import getpass

    import thrift.transport.TSocket as tsocket
    import thrift.transport.TTransport as ttransport
    from pyhive import hive

    auth = (cparams.get("auth") or "NONE").upper()
    if auth not in ("NONE", "NOSASL", "LDAP", "CUSTOM"):
        return None  # Kerberos: PyHive's own transport (no connect timeout)
    host, port = cparams.get("host") or "localhost", int(cparams.get("port") or 10000)
    username = cparams.get("username") or getpass.getuser()
    password = cparams.get("password") or "x"  # PLAIN needs one even when the server ignores it
    sock = tsocket.TSocket(host, port)
    sock.setTimeout(connect_timeout * 1000)
    if auth == "NOSASL":
        transport = ttransport.TBufferedTransport(sock)
    else:
        import thrift_sasl

        transport = thrift_sasl.TSaslClientTransport(
            lambda: hive.get_installed_sasl(host=host, sasl_auth="PLAIN", username=username, password=password),
            "PLAIN", sock)
    from thrift.Thrift import TException

    try:
        conn = hive.connect(thrift_transport=transport, username=username,
                            database=cparams.get("database") or "default")
    except (TException, OSError) as exc:
        # As the DB-API error SQLAlchemy knows how to report (Thrift's own are not).
        raise hive.OperationalError(f"{type(exc).__name__}: {exc}") from None
    sock.setTimeout(statement_timeout * 1000 if statement_timeout else None)
    # Buckets are computed from naive datetimes: the session's time zone must not shift them.
    with conn.cursor() as cursor:
        cursor.execute("SET spark.sql.session.timeZone=UTC")
    return conn


class Watchdog:
    """Ends a statement that runs longer than the limit, whatever the engine is waiting for.

    Server-side limits (max_statement_time, statement_timeout) stop slow queries; this also
    stops a server or proxy that stops answering, by interrupting the local engine or
    shutting the connection's socket so the driver's blocked read returns an error.
    """

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.fired = False
        self._timers: dict[int, threading.Timer] = {}

    def install(self, engine: sa.Engine) -> Watchdog:
        sa.event.listen(engine, "before_cursor_execute", self._arm)
        sa.event.listen(engine, "after_cursor_execute", self._disarm)
        sa.event.listen(engine, "handle_error", lambda ctx: self._disarm(ctx.connection))
        engine.anomaly_watchdog = self  # type: ignore[attr-defined]  # read by db.connect's error line
        return self

    def _arm(self, conn: Any, *_args: Any) -> None:
        dbapi = conn.connection.dbapi_connection
        # A little later than the server's own limit, so its clearer error wins when it can.
        timer = threading.Timer(self.seconds + 2, self._abort, (dbapi,))
        timer.daemon = True
        self._timers[id(conn)] = timer
        timer.start()

    def _disarm(self, conn: Any, *_args: Any) -> None:
        timer = self._timers.pop(id(conn), None) if conn is not None else None
        if timer is not None:
            timer.cancel()

    def _abort(self, dbapi: Any) -> None:
        self.fired = True
        interrupt = getattr(dbapi, "interrupt", None)  # sqlite3, duckdb
        if callable(interrupt):
            interrupt()
            return
        sock = _socket_of(dbapi)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _socket_of(dbapi: Any) -> socket.socket | None:
    sock = getattr(dbapi, "_sock", None)  # pymysql
    if isinstance(sock, socket.socket):
        return sock
    transport = getattr(dbapi, "_transport", None)  # pyhive: sasl transport -> TSocket -> socket
    inner = getattr(getattr(transport, "_trans", transport), "handle", None)
    if isinstance(inner, socket.socket):
        return inner
    fileno = getattr(dbapi, "fileno", None)  # psycopg
    if callable(fileno):
        try:
            # A duplicate descriptor of the same socket: shutting it down ends the driver's wait.
            return socket.socket(fileno=os.dup(fileno()))
        except OSError:
            return None
    return None


# -- identity ----------------------------------------------------------------------------------

def identity(url: URL) -> tuple[Any, ...]:
    """What a URL reaches, comparable across spellings: a file's device and inode, or a server's
    resolved addresses, port and database name."""
    engine = spec(url)
    if engine.file_based:
        database = url.database or ""
        if not database or database == ":memory:":
            return ("memory", id(url))
        path = Path(database).expanduser()
        try:
            st = path.stat()
            return ("file", st.st_dev, st.st_ino)
        except OSError:
            return ("file", str(path.resolve()))
    port = url.port or engine.default_port
    return (engine.family, frozenset(_addresses(url.host or "localhost", port)), port,
            url.database or "")


def _addresses(host: str, port: int | None) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return {host.lower()}
    out = set()
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        # 127.0.0.1, ::1 and "localhost" are one machine's loopback.
        out.add("loopback" if address.startswith("127.") or address == "::1" else address)
    return out


def same_database(a: URL, b: URL) -> bool:
    ia, ib = identity(a), identity(b)
    if ia[0] != ib[0]:
        return False
    if ia[0] in ("file", "memory"):
        return ia == ib
    return bool(ia[1] & ib[1]) and ia[2:] == ib[2:]


# -- SQL -----------------------------------------------------------------------------------------

def read_only_note(url: URL) -> str | None:
    """What to tell a user about read-only when the engine cannot enforce it for a session."""
    if spec(url).read_only == "grants":
        return (f"{spec(url).label} has no read-only sessions: scans only read, and the account "
                "should have SELECT grants only")
    return None


def columns(conn: sa.Connection, table: str, schema: str | None) -> list[str] | None:
    """A table's column names, or None if it does not exist.

    Through the dialect's inspector where it works; duckdb-engine's fails with SQLAlchemy 2.1
    and PyHive's DESCRIBE error text varies by server, so those read information_schema or
    DESCRIBE themselves.
    """
    name = conn.dialect.name
    if name == "duckdb":
        query = sa.text("SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                        "AND table_schema = COALESCE(:s, current_schema()) ORDER BY ordinal_position")
        found = [r[0] for r in conn.execute(query, {"t": table, "s": schema})]
        return found or None
    if name == "hive":
        return _hive_columns(conn, table, schema)
    from sqlalchemy.exc import NoSuchTableError

    try:
        return [c["name"] for c in sa.inspect(conn).get_columns(table, schema=schema)]
    except NoSuchTableError:
        return None


def _hive_columns(conn: sa.Connection, table: str, schema: str | None) -> list[str] | None:
    preparer = conn.dialect.identifier_preparer
    target = preparer.quote(table) if schema is None else f"{preparer.quote(schema)}.{preparer.quote(table)}"
    listing = sa.text(f"SHOW TABLES IN {preparer.quote(schema)}" if schema else "SHOW TABLES")
    if table not in {row[1] for row in conn.execute(listing)}:
        return None
    names = []
    for row in conn.execute(sa.text(f"DESCRIBE {target}")):
        col = (row[0] or "").strip()
        if not col or col.startswith("#"):
            break  # partition information follows
        names.append(col)
    return names


def epoch_sql(dialect: sa.engine.Dialect, column: str) -> str:
    """Whole seconds since 1970-01-01 of a naive datetime expression, as integer SQL."""
    name = dialect.name
    if name == "sqlite":
        # unixepoch() (SQLite 3.38+) costs less than half of strftime('%s') per row.
        if getattr(dialect.dbapi, "sqlite_version_info", (0,)) >= (3, 38):
            return f"unixepoch({column})"
        return f"CAST(strftime('%s', {column}) AS INTEGER)"
    if name in ("mysql", "mariadb"):
        return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column})"
    if name == "hive":
        # Spark has no EXTRACT(EPOCH ...); the session runs in UTC (see _hive_connect).
        return f"timestampdiff(SECOND, TIMESTAMP '1970-01-01 00:00:00', {column})"
    # FLOOR: a cast alone rounds fractional seconds, where SQLite and MariaDB truncate.
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"


def uses_indexes(dialect_name: str) -> bool:
    """Column stores (DuckDB) and Spark scan whole columns: the checks declare no index there."""
    return dialect_name not in ("duckdb", "hive")


def transport_errors(url: URL) -> tuple[type[BaseException], ...]:
    """Errors a driver raises outside the DB-API hierarchy (PyHive lets Thrift's through mid-query)."""
    if spec(url).backend == "hive":
        from thrift.Thrift import TException

        return (TException,)
    return ()


def driver_hint(url: URL) -> str:
    extra = spec(url).extra
    return f"pip install 'anomaly-cli[{extra}]'" if extra else "install the driver"


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _register_duckdb_ddl() -> None:
    """DuckDB has no SERIAL types, which duckdb-engine inherits from PostgreSQL's DDL: an
    auto-increment key becomes a plain integer there (rows come with their ids)."""
    from sqlalchemy.ext.compiler import compiles
    from sqlalchemy.schema import CreateColumn

    # FLOAT is 4 bytes in DuckDB but 8 in PostgreSQL, whose DDL this is: keep the 8.
    plain = {"BIGSERIAL": "BIGINT", "SMALLSERIAL": "SMALLINT", "SERIAL": "INTEGER", "FLOAT": "DOUBLE"}

    @compiles(CreateColumn, "duckdb")
    def _column(element, compiler, **kw):  # type: ignore[no-untyped-def]
        text = compiler.visit_create_column(element, **kw)
        name = compiler.preparer.format_column(element.element)
        head, _, rest = text.partition(name + " ")
        kind, _, tail = rest.partition(" ")
        return f"{head}{name} {plain.get(kind, kind)} {tail}".rstrip() if kind in plain else text


_register_duckdb_ddl()
