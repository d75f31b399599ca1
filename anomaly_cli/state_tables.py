"""The alert store's table, its records, and the SQL helpers every part of the store shares
(the store itself is anomaly_cli.state; its `anomaly alerts` queries anomaly_cli.alert_queries)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DBAPIError

from anomaly_cli.db import DATETIME
from anomaly_cli.errors import UsageError
from anomaly_cli.model import Finding, Severity

TABLE = "anomaly_alerts"
LABELS = ("fraud", "false_positive")
UNLABELLED = "unlabelled"
DEFAULT_COOLDOWN = timedelta(hours=4)
BATCH_SIZE = 100
BUSY_TIMEOUT_MS = 30_000
RETRIES = 5  # deadlocks between concurrent runs are expected now and then; a batch is simply redone

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
