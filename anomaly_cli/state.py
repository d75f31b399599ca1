"""The alert state store: what was already notified, acknowledged or labelled (never in the audited database)."""

from __future__ import annotations

import builtins
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from anomaly_cli.alert_queries import AlertQueries
from anomaly_cli.db import create_engine, driver_message, mask_url, parse_url
from anomaly_cli.errors import DatabaseError, UsageError
from anomaly_cli.lifecycle import Lifecycle, duplicate_column, upgrade
from anomaly_cli.model import Finding

# The table, its records and the shared SQL live in state_tables; callers import them from here too.
from anomaly_cli.state_tables import (  # noqa: F401 - re-exported
    _CLAIM,
    ADDED_COLUMNS,
    ALERTS,
    BATCH_SIZE,
    BUSY_TIMEOUT_MS,
    DEFAULT_COOLDOWN,
    LABELS,
    METADATA,
    RETRIES,
    SCOPE_LENGTH,
    TABLE,
    UNLABELLED,
    UNSCOPED,
    AlertRecord,
    C,
    UnknownAlertError,
    _already_exists,
    _batches,
    _instant,
    _transient,
    _upsert_statement,
)

T = TypeVar("T")


def scope_of(audited: URL) -> str:
    """The scope of an audited database's alerts: a short stable hash of its identity
    (host, port and database, or the SQLite file's path), which stays out of sight in the store."""
    import hashlib

    from anomaly_cli.db import identity

    return hashlib.sha256(identity(audited).encode()).hexdigest()[:SCOPE_LENGTH]


def default_state_url(environ: Mapping[str, str] | None = None) -> str:
    """ANOMALY_STATE if set, else a SQLite file in the XDG state directory."""
    env = os.environ if environ is None else environ
    explicit = env.get("ANOMALY_STATE", "").strip()
    if explicit:
        return explicit
    xdg = env.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        root = Path(xdg)
    else:
        root = Path(env.get("HOME") or Path.home()) / ".local" / "state"
    return URL.create("sqlite", database=str(root / "anomaly" / "state.db")).render_as_string()


class AlertStore(Lifecycle, AlertQueries):
    """The alert state on one connection: `with AlertStore(url) as store: ...`.

    The table is created on first use. Every write is a short transaction of at most
    `batch_size` findings, taken so that concurrent runs against the same store see each
    other's marks: on SQLite BEGIN IMMEDIATE (one writer at a time, others wait up to 30 s);
    on MariaDB and PostgreSQL row locks from the upsert plus a conditional UPDATE whose
    row count says which process won a key.
    """

    def __init__(self, url: str | URL, *, connect_timeout: int = 10, batch_size: int = BATCH_SIZE,
                 scope: str | None = None) -> None:
        self.url = parse_url(url) if isinstance(url, str) else url
        # Scans write and claim in their database's scope (UNSCOPED if none is given); the
        # `alerts` commands read every scope unless one is given.
        self.scope = scope
        self.connect_timeout = connect_timeout
        self.batch_size = max(1, batch_size)
        # What each key won by this run looked like before, so that release() can undo the
        # marks of a run whose report never got out.
        self._claims: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self.run_id = uuid.uuid4().hex
        self._resolved: dict[str, datetime] = {}  # keys this run resolved, undone by release() too
        self._silences: builtins.list[str] = []  # the active silences' matches during new_only
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._writing = False  # read by the SQLite begin hook: IMMEDIATE only when we mean to write
        self._table_ready = False  # tables are created by the first transaction, not by open()
        self._probing = False  # _readable's existence check: the one transaction that creates nothing

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> AlertStore:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open(self) -> None:
        backend = self.url.get_backend_name()
        if backend not in ("sqlite", "mysql", "mariadb", "postgresql"):
            raise UsageError(f"the alert state cannot live in a {backend} database",
                             hint="use SQLite, MariaDB/MySQL or PostgreSQL for --state")
        if backend == "sqlite":
            database = self.url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                # The default lives in ~/.local/state/anomaly, which may not exist yet.
                folder = Path(database).expanduser().parent
                try:
                    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                except OSError as exc:
                    raise DatabaseError(f"cannot create the alert state folder {folder}: {exc.strerror or exc}",
                                        hint="give --state URL or set ANOMALY_STATE to a writable place") from None
        self._engine = create_engine(self.url, connect_timeout=self.connect_timeout, read_only=False)
        if backend == "sqlite":
            self._sqlite_hooks(self._engine)
        try:
            try:
                self._conn = self._engine.connect()
            except SQLAlchemyError as exc:
                raise DatabaseError(f"cannot open the alert state at {mask_url(self.url)}: {driver_message(exc)}",
                                    hint="check --state or ANOMALY_STATE") from None
            if backend != "sqlite":
                # READ COMMITTED: MariaDB's default REPEATABLE READ adds gap locks that make
                # concurrent upserts deadlock far more often, and buys us nothing here.
                self._conn.execution_options(isolation_level="READ COMMITTED")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _sqlite_hooks(self, engine: Engine) -> None:
        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # pysqlite would BEGIN DEFERRED, and only before DML; we emit BEGIN ourselves.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # WAL: `alerts list` and other readers never block a cron run's writes, nor the reverse.
            # Two first runs switching a new file at once deadlock on the lock upgrade, and SQLite
            # then answers "locked" without waiting: so we wait and retry (it sticks once done).
            deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    cursor.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(random.uniform(0.01, 0.05))
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # IMMEDIATE takes the write lock up front, so check-and-mark is one atomic step
            # across processes and no transaction fails later upgrading a stale read lock.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self._writing else "BEGIN")

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("AlertStore is not open (use it as a context manager)")
        return self._conn

    # -- transactions and errors -----------------------------------------------------------

    def _transact(self, work: Callable[[Connection], T], *, write: bool,
                  retry_if: Callable[[DBAPIError], bool] | None = None) -> T:
        """Run `work` in one transaction; redo it on a deadlock; driver errors become DatabaseError."""
        retry_if = retry_if or _transient
        conn = self.conn
        if not self._table_ready and not self._probing:
            self._prepare()
        for attempt in range(RETRIES + 1):
            self._writing = write
            try:
                with conn.begin():
                    return work(conn)
            except DBAPIError as exc:
                if attempt < RETRIES and retry_if(exc):
                    # Nothing of a failed batch was yielded yet, so redoing it is safe.
                    time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
                    continue
                raise DatabaseError(f"alert state query failed on {mask_url(self.url)}: {driver_message(exc)}") \
                    from None
            except SQLAlchemyError as exc:
                raise DatabaseError(f"alert state query failed on {mask_url(self.url)}: {exc}") from None
            finally:
                self._writing = False
        raise AssertionError("unreachable")

    def _prepare(self) -> None:
        """Create or upgrade the tables, before the store's first transaction."""
        from anomaly_cli.state_migrate import create_or_migrate

        self._table_ready = True
        # Two first runs may race to create the table: the loser retries and checkfirst sees it.
        # The lifecycle's columns first: the scope migration copies every column on SQLite.
        self._transact(upgrade, write=True,
                       retry_if=lambda exc: _transient(exc) or _already_exists(exc) or duplicate_column(exc))
        self._transact(create_or_migrate, write=True,
                       retry_if=lambda exc: _transient(exc) or _already_exists(exc))

    def _readable(self) -> bool:
        """Whether the alerts table exists. `alerts list`/`show`/labels ask this first: reading a
        store nobody wrote yet finds nothing and creates nothing. Every other use creates (or
        upgrades) the tables on its first transaction."""
        if not self._table_ready:
            self._probing = True
            try:
                exists = self._transact(lambda conn: sa.inspect(conn).has_table(TABLE), write=False)
            finally:
                self._probing = False
            if not exists:
                return False
            self._prepare()
        return True

    # -- scan-time API ---------------------------------------------------------------------

    def new_only(self, findings: Iterable[Finding], *, cooldown: timedelta = DEFAULT_COOLDOWN,
                 now: datetime) -> Iterator[Finding]:
        """Yield the findings not notified within `cooldown`, or worse than when last notified.

        Every finding is recorded; the yielded ones are marked notified. Acknowledged alerts
        stay silent until their severity rises above the acknowledged one (which clears the
        ack). Marks are committed before the batch is yielded: a finding is notified at most
        once per cooldown even if the run dies afterwards, and it comes back after the cooldown.
        """
        if cooldown < timedelta(0):
            raise UsageError(f"the cooldown cannot be negative ({cooldown})")
        moment = _instant(now)
        cutoff = moment - cooldown
        self._silences = [s.match for s in self.silences(now=moment)]
        return self._stream(findings, lambda batch: self._transact(
            lambda conn: self._mark(conn, batch, moment, cutoff), write=True))

    def record(self, findings: Iterable[Finding], *, now: datetime) -> Iterator[Finding]:
        """Yield every finding, recording it as seen (not as notified: a later --new-only run still tells)."""
        moment = _instant(now)

        def save(batch: list[Finding]) -> set[str]:
            self._transact(lambda conn: self._upsert(conn, batch, moment), write=True)
            return {f.key for f in batch}

        return self._stream(findings, save)

    def _stream(self, findings: Iterable[Finding], flush: Callable[[list[Finding]], set[str]]) -> Iterator[Finding]:
        # Small batches: memory stays flat, and a run holds the store's locks only briefly
        # (never while the caller renders what we yield).
        for batch in _batches(findings, self.batch_size):
            keep = flush(batch)
            yield from (f for f in batch if f.key in keep)

    def _upsert(self, conn: Connection, batch: list[Finding], moment: datetime) -> None:
        rows = [{"scope": self._scope, "key": f.key, "check": f.check, "severity": int(f.severity), "first_seen": moment,
                 "last_seen": moment, "times_seen": 1, "message": f.message,
                 "last_run": self.run_id}
                for f in sorted(batch, key=lambda f: f.key)]  # one lock order for every process
        conn.execute(_upsert_statement(conn.dialect.name), rows)

    def _mark(self, conn: Connection, batch: list[Finding], moment: datetime, cutoff: datetime) -> set[str]:
        """Record the batch, then claim each key that is due; the row count says who won it.

        A silenced finding is recorded but never claimed; a resolved incident found again is
        reopened (and is news again, whatever its cooldown).
        """
        self._upsert(conn, batch, moment)
        keys = sorted({f.key for f in batch})
        before = {row.key: {"last_notified": row.last_notified, "notified_severity": row.notified_severity,
                            "acked_at": row.acked_at, "acked_severity": row.acked_severity,
                            "resolved_at": row.resolved_at}
                  for row in conn.execute(sa.select(C.key, C.last_notified, C.notified_severity, C.acked_at,
                                                    C.acked_severity, C.resolved_at)
                                          .where(C.scope == self._scope, C.key.in_(keys)))}
        won = set()
        for finding in sorted(batch, key=lambda f: f.key):
            if self.silenced(finding):
                continue
            result = conn.execute(_CLAIM, {"in_scope": self._scope, "k": finding.key, "sev": int(finding.severity),
                                           "cutoff": cutoff, "now": moment})
            if result.rowcount == 1:
                won.add(finding.key)
                self._claims[finding.key] = (moment, before[finding.key])
        reopened = [key for key in keys if before[key]["resolved_at"] is not None and key not in won]
        if reopened:  # found again, though not notified (silenced, acknowledged): no longer resolved
            conn.execute(sa.update(ALERTS).where(C.scope == self._scope, C.key.in_(reopened)).values(resolved_at=None))
        return won

    def release(self) -> int:
        """Undo this run's notification marks (its report was never delivered); returns how many.

        A key is restored only while the mark is still this run's own, so a later run's claim
        is never undone.
        """
        claims, self._claims = list(self._claims.items()), {}
        resolved, self._resolved = list(self._resolved.items()), {}
        restored = 0
        if resolved:
            def reopen(conn: Connection) -> None:
                for key, moment in resolved:
                    conn.execute(sa.update(ALERTS).where(C.scope == self._scope, C.key == key, C.resolved_at == moment)
                                 .values(resolved_at=None))

            self._transact(reopen, write=True)
        for start in range(0, len(claims), self.batch_size):
            chunk = claims[start:start + self.batch_size]

            def undo(conn: Connection, chunk: list = chunk) -> int:
                count = 0
                for key, (moment, previous) in chunk:
                    result = conn.execute(sa.update(ALERTS).where(C.scope == self._scope, C.key == key,
                                                                  C.last_notified == moment)
                                          .values(**previous))
                    count += result.rowcount
                return count

            restored += self._transact(undo, write=True)
        return restored
