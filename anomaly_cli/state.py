"""The alert state store: what was already notified, acknowledged or labelled (never in the audited database)."""

from __future__ import annotations

import builtins
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from anomaly_cli.db import DATETIME, create_engine, driver_message, mask_url, parse_url
from anomaly_cli.errors import DatabaseError, UsageError
from anomaly_cli.lifecycle import Lifecycle, duplicate_column, upgrade
from anomaly_cli.model import Finding, Severity

TABLE = "anomaly_alerts"
LABELS = ("fraud", "false_positive")
UNLABELLED = "unlabelled"
DEFAULT_COOLDOWN = timedelta(hours=4)
BATCH_SIZE = 100
BUSY_TIMEOUT_MS = 30_000
RETRIES = 5  # deadlocks between concurrent runs are expected now and then; a batch is simply redone

T = TypeVar("T")

# Keys are compared byte for byte on every engine: MariaDB's default utf8mb4 collation would
# fold case and make two distinct keys collide on the primary key.
_KEY = sa.String(255).with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb")

SCOPE_LENGTH = 16
UNSCOPED = ""  # rows written before alerts were scoped by database (and library calls without one)

METADATA = sa.MetaData()
ALERTS = sa.Table(
    TABLE, METADATA,
    # Which audited database the alert came from (scope_of): the same key from two databases is
    # two alerts, so one --state can serve several databases.
    sa.Column("scope", sa.String(SCOPE_LENGTH), primary_key=True, server_default=UNSCOPED),
    sa.Column("key", _KEY, primary_key=True),
    sa.Column("check", sa.String(64), nullable=False, index=True),
    sa.Column("severity", sa.SmallInteger, nullable=False),  # Severity as its int: SQL can compare it
    sa.Column("first_seen", DATETIME, nullable=False),
    sa.Column("last_seen", DATETIME, nullable=False),
    sa.Column("last_notified", DATETIME),
    sa.Column("notified_severity", sa.SmallInteger),
    sa.Column("times_seen", sa.Integer, nullable=False),
    sa.Column("acked_at", DATETIME),
    # The severity that was acknowledged: only a worse one breaks the silence.
    sa.Column("acked_severity", sa.SmallInteger),
    sa.Column("label", sa.String(16)),
    sa.Column("label_at", DATETIME),
    sa.Column("message", sa.Text, nullable=False),
    # When an alerted incident stopped being found by a run of its check (None: open).
    sa.Column("resolved_at", DATETIME),
    # The run (one AlertStore) that last saw it: what that run did not see, it may resolve.
    sa.Column("last_run", sa.String(32)),
    sa.CheckConstraint("label IN ('fraud', 'false_positive')", name="ck_anomaly_alerts_label"),
    # Messages carry ₹ and customer names; a latin1 server default would reject them.
    mysql_charset="utf8mb4",
    mariadb_charset="utf8mb4",
)
C = ALERTS.c

# Columns added after the first release: an existing store gets them on open (ALTER TABLE ADD).
ADDED_COLUMNS = ("resolved_at", "last_run")

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


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One row of the store: what was seen, when it was last notified, and what a person said of it."""

    key: str
    check: str
    severity: Severity
    first_seen: datetime
    last_seen: datetime
    last_notified: datetime | None
    notified_severity: Severity | None
    times_seen: int
    acked_at: datetime | None
    acked_severity: Severity | None
    label: str | None
    label_at: datetime | None
    message: str
    scope: str = UNSCOPED
    resolved_at: datetime | None = None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> AlertRecord:
        def sev(value: int | None) -> Severity | None:
            return None if value is None else Severity(value)

        m = row._mapping
        return cls(key=m["key"], check=m["check"], severity=Severity(m["severity"]),
                   first_seen=m["first_seen"], last_seen=m["last_seen"], last_notified=m["last_notified"],
                   notified_severity=sev(m["notified_severity"]), times_seen=m["times_seen"],
                   acked_at=m["acked_at"], acked_severity=sev(m["acked_severity"]), label=m["label"],
                   label_at=m["label_at"], message=m["message"], scope=m["scope"], resolved_at=m.get("resolved_at"))

    def as_finding(self) -> Finding:
        """The remembered incident as a finding (its last line), e.g. to announce its resolution."""
        return Finding(self.check, self.key, self.severity, self.message,
                       {"first_seen": self.first_seen, "resolved_at": self.resolved_at})

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO datetimes, severity words."""
        out: dict[str, Any] = {}
        for name in (f.name for f in fields(self)):
            value = getattr(self, name)
            if isinstance(value, Severity):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            out[name] = value
        return out


class UnknownAlertError(UsageError, KeyError):
    """No alert with that key in the store (a UsageError for the CLI, a KeyError for callers)."""


class AlertStore(Lifecycle):
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

    # -- `anomaly alerts` API --------------------------------------------------------------

    def list(self, *, check: str | None = None, label: str | None = None,
             limit: int | None = None) -> builtins.list[AlertRecord]:  # `list` is this method here
        """Alerts, most recently seen first; `label` may also be 'unlabelled'."""
        stmt = sa.select(ALERTS).order_by(C.last_seen.desc(), C.key, C.scope)
        if self.scope is not None:
            stmt = stmt.where(C.scope == self.scope)
        if check is not None:
            stmt = stmt.where(C.check == check)
        if label == UNLABELLED:
            stmt = stmt.where(C.label.is_(None))
        elif label is not None:
            stmt = stmt.where(C.label == _valid_label(label))
        if limit is not None:
            stmt = stmt.limit(limit)
        if not self._readable():
            return []
        return self._transact(lambda conn: [AlertRecord.from_row(r) for r in conn.execute(stmt)], write=False)

    def show(self, key: str) -> AlertRecord | None:
        if not self._readable():
            return None
        rows = self._transact(lambda conn: conn.execute(sa.select(ALERTS).where(*self._one(key))).all(),
                              write=False)
        self._refuse_ambiguous(key, len(rows))
        return AlertRecord.from_row(rows[0]) if rows else None

    def ack(self, key: str, now: datetime) -> AlertRecord:
        """Silence an alert until its severity rises above the current one."""
        stmt = (sa.update(ALERTS).where(*self._one(key))
                .values(acked_at=_instant(now), acked_severity=C.severity))
        return self._change(key, stmt)

    def label(self, key: str, label: str | None, now: datetime) -> AlertRecord:
        """Say what an alert really was ('fraud' or 'false_positive'); None clears the label."""
        if label is not None:
            label = _valid_label(label)
        stmt = (sa.update(ALERTS).where(*self._one(key))
                .values(label=label, label_at=None if label is None else _instant(now)))
        return self._change(key, stmt)

    @property
    def _scope(self) -> str:
        return UNSCOPED if self.scope is None else self.scope

    def _one(self, key: str) -> list[Any]:
        """The WHERE of one alert by key: in this store's scope, or in any when none was given."""
        return [C.key == key] if self.scope is None else [C.key == key, C.scope == self.scope]

    def _refuse_ambiguous(self, key: str, count: int) -> None:
        if count > 1:
            raise UsageError(f"alert {key!r} was raised on {count} databases",
                             hint="give --db URL to say which database's alert")

    def _change(self, key: str, stmt: sa.Update) -> AlertRecord:
        if not self._readable():
            raise UnknownAlertError(f"no alert with key {key!r} in the alert state", hint="see 'anomaly alerts list'")
        def work(conn: Connection) -> sa.Row[Any] | None:
            matching = conn.execute(sa.select(sa.func.count()).select_from(ALERTS).where(*self._one(key))).scalar()
            self._refuse_ambiguous(key, int(matching or 0))
            if conn.execute(stmt).rowcount != 1:
                return None
            return conn.execute(sa.select(ALERTS).where(*self._one(key))).first()

        row = self._transact(work, write=True)
        if row is None:
            raise UnknownAlertError(f"no alert with key {key!r} in the alert state",
                                    hint="see 'anomaly alerts list'")
        return AlertRecord.from_row(row)

    def label_counts(self, check: str | None = None) -> dict[str, dict[str, int]]:
        """Per check: how many alerts were labelled fraud, false_positive, or not yet."""
        stmt = sa.select(C.check, C.label, sa.func.count()).group_by(C.check, C.label).order_by(C.check)
        if self.scope is not None:
            stmt = stmt.where(C.scope == self.scope)
        if check is not None:
            stmt = stmt.where(C.check == check)
        counts: dict[str, dict[str, int]] = {}
        if not self._readable():
            return counts
        for name, label, n in self._transact(lambda conn: conn.execute(stmt).all(), write=False):
            bucket = counts.setdefault(name, {"fraud": 0, "false_positive": 0, UNLABELLED: 0})
            bucket[label or UNLABELLED] += n
        return counts


# The claim: one statement, evaluated on the newest row version under its row lock, so only
# one of two concurrent runs can turn a due alert into a notified one.
_CLAIM = (
    sa.update(ALERTS)
    .where(C.scope == sa.bindparam("in_scope"), C.key == sa.bindparam("k"))
    .where(sa.or_(
        sa.and_(C.acked_at.is_(None),
                sa.or_(C.last_notified.is_(None),
                       C.last_notified <= sa.bindparam("cutoff", type_=DATETIME),
                       C.notified_severity < sa.bindparam("sev"))),
        C.acked_severity < sa.bindparam("sev"),
        C.resolved_at.isnot(None),  # a resolved incident found again is a new incident
    ))
    # A rise above the acknowledged severity is news: it is notified and needs a new ack.
    .values(last_notified=sa.bindparam("now", type_=DATETIME), notified_severity=sa.bindparam("sev"),
            acked_at=None, acked_severity=None, resolved_at=None)
)


# A literal, not a bound 1: pymysql's fast executemany cannot take parameters after VALUES (...).
_ONE = sa.literal_column("1", sa.Integer)


def _upsert_statement(dialect: str) -> sa.Insert:
    """INSERT a new alert, or refresh a known one (severity, message, last_seen, times_seen)."""
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(ALERTS)
        return stmt.on_duplicate_key_update({
            "check": stmt.inserted.check, "severity": stmt.inserted.severity,
            "last_seen": stmt.inserted.last_seen, "message": stmt.inserted.message,
            "times_seen": C.times_seen + _ONE, "last_run": stmt.inserted.last_run,
        })
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        raise UsageError(f"the alert state cannot live in a {dialect} database",
                         hint="use SQLite, MariaDB/MySQL or PostgreSQL")
    stmt = insert(ALERTS)
    return stmt.on_conflict_do_update(index_elements=[C.scope, C.key], set_={
        "check": stmt.excluded.check, "severity": stmt.excluded.severity,
        "last_seen": stmt.excluded.last_seen, "message": stmt.excluded.message,
        "times_seen": C.times_seen + _ONE, "last_run": stmt.excluded.last_run,
    })


def _batches(findings: Iterable[Finding], size: int) -> Iterator[list[Finding]]:
    """Lists of at most `size` findings with distinct keys (a repeated key starts a new batch).

    Distinct keys because one multi-row upsert may not touch a row twice on PostgreSQL,
    and a repeat must see the first occurrence's mark.
    """
    batch: list[Finding] = []
    keys: set[str] = set()
    for finding in findings:
        if len(batch) >= size or finding.key in keys:
            yield batch
            batch, keys = [], set()
        batch.append(finding)
        keys.add(finding.key)
    if batch:
        yield batch


def _instant(now: datetime) -> datetime:
    """Whole seconds (MariaDB and our SQLite format keep no fractions), naive (UTC if it was aware)."""
    if now.tzinfo is not None:
        now = now.astimezone(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=0)


def _valid_label(label: str) -> str:
    if label not in LABELS:
        raise UsageError(f"unknown label {label!r}", hint="use fraud or false_positive")
    return label


def _transient(exc: DBAPIError) -> bool:
    """A deadlock or lock timeout between concurrent runs: worth redoing the transaction."""
    if exc.connection_invalidated:
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)  # psycopg
    if sqlstate in ("40P01", "40001"):  # deadlock_detected, serialization_failure
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in (1205, 1213)  # pymysql: lock wait timeout, deadlock


def _already_exists(exc: DBAPIError) -> bool:
    """CREATE TABLE lost a race with another process (PostgreSQL: a pg_type duplicate; MariaDB: 1050)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in ("42P07", "23505"):
        return True
    args = getattr(orig, "args", ())
    return bool(args) and args[0] in (1050, 1061)
