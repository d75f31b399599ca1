"""What differs between database engines, in one place.

Drivers and their aliases, the options a URL may carry, secrets in URLs, how two URLs are
compared for identity, and the SQL that is spelled differently per dialect (how a session
starts read-only and bounded in time is in sessions.py). The rest of the tool asks these
modules instead of testing `dialect.name` itself.
"""

from __future__ import annotations

import re
import socket
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
