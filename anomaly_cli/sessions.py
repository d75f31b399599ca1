"""How a session starts and is bounded in time, per engine.

Read-only from the driver's first statement, connect timeouts that hold against a server
that accepts and never answers, and a statement timeout on every engine (the server's own
limit where it has one, and a watchdog that interrupts the engine or closes the socket).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from anomaly_cli.engines import spec


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
        # Where results still stream through a server-side cursor (libpq before 17, see
        # pg_stream.py), plan it for reading every row, as the checks do, not the first 10 %.
        settings.append("-c cursor_tuple_fraction=1")
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
    elif spec_.backend == "postgresql":
        from anomaly_cli import pg_stream

        if pg_stream.available():
            sa.event.listen(engine, "connect", _pg_session)
    elif spec_.backend == "hive":
        sa.event.listen(engine, "do_connect",
                        lambda _d, _rec, cargs, cparams: _hive_connect(cparams, connect_timeout, statement_timeout))
    return Watchdog(statement_timeout).install(engine) if statement_timeout else None


def _pg_session(dbapi_connection: Any, _record: Any) -> None:
    from anomaly_cli import pg_stream

    # SQLAlchemy's yield_per asks the connection for a named cursor: give it a plain streamed one.
    pg_stream.install(dbapi_connection)


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
        # One thread watches every armed statement (a timer thread per statement cost ~1.5 ms each,
        # a tenth of a tiny scan): statement -> (deadline, its DB-API connection).
        self._armed: dict[int, tuple[float, Any]] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def install(self, engine: sa.Engine) -> Watchdog:
        sa.event.listen(engine, "before_cursor_execute", self._arm)
        sa.event.listen(engine, "after_cursor_execute", self._disarm)
        sa.event.listen(engine, "handle_error", lambda ctx: self._disarm(ctx.connection))
        engine.anomaly_watchdog = self  # type: ignore[attr-defined]  # read by db.connect's error line
        return self

    def _arm(self, conn: Any, *_args: Any) -> None:
        # A little later than the server's own limit, so its clearer error wins when it can.
        deadline = time.monotonic() + self.seconds + 2
        with self._changed:
            self._armed[id(conn)] = (deadline, conn.connection.dbapi_connection)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="anomaly-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _disarm(self, conn: Any, *_args: Any) -> None:
        if conn is not None:
            with self._changed:
                self._armed.pop(id(conn), None)

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                late = [key for key, (deadline, _) in self._armed.items() if deadline <= now]
                for key in late:
                    self._abort(self._armed.pop(key)[1])
                nearest = min((deadline for deadline, _ in self._armed.values()), default=None)
                self._changed.wait(None if nearest is None else nearest - now)

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


def transport_errors(url: URL) -> tuple[type[BaseException], ...]:
    """Errors a driver raises outside the DB-API hierarchy (PyHive lets Thrift's through mid-query)."""
    if spec(url).backend == "hive":
        from thrift.Thrift import TException

        return (TException,)
    return ()


def sqlite_reader(path: Path):  # type: ignore[no-untyped-def]
    """A connection factory for reading a SQLite file without ever writing to it.

    A WAL-mode file needs its -shm index, which a reader creates; in a read-only directory
    (a read-only mount) it cannot, and SQLite says only "unable to open database file". Then
    the file is opened as immutable when no writer can be there either (no -wal file), and
    otherwise the error says exactly why.
    """
    import sqlite3
    from urllib.parse import quote

    resolved = path.resolve()
    uri = f"file:{quote(str(resolved))}?mode=ro"

    def connect() -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(uri, uri=True)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")
            return conn
        except sqlite3.OperationalError as exc:
            if not _wal_mode(resolved) or os.access(resolved.parent, os.W_OK):
                raise
            wal = resolved.with_name(resolved.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise sqlite3.OperationalError(
                    f"{resolved} is in WAL mode with unmerged changes in {wal.name}, and its directory is "
                    "read-only, so SQLite cannot create the shared-memory file it needs to read them "
                    f"({exc}); checkpoint it where it is writable, or copy the three files elsewhere") from None
            # No pending changes and nobody can write here: the file is all there is.
            return sqlite3.connect(f"{uri}&immutable=1", uri=True)

    return connect


def _wal_mode(path: Path) -> bool:
    """The file header says WAL (read and write versions 2 at offsets 18 and 19)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2 and header[19] == 2
