"""The alert lifecycle in the state store: incidents resolved when no longer found, unack,
prune, silences (`anomaly alerts silence`), the watermarks of `anomaly watch`, and the upgrade
of a store made by an earlier version. AlertStore inherits these methods (and runs them in its
transactions); the alerts table itself lives in anomaly_cli.state, imported when needed because
state imports this module."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from anomaly_cli.db import DATETIME
from anomaly_cli.errors import UsageError
from anomaly_cli.model import Severity

if TYPE_CHECKING:
    from anomaly_cli.state import AlertRecord


# Byte-for-byte comparison on MariaDB too (as the alerts' keys): matches are key prefixes.
_MATCH = sa.String(255).with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb")

METADATA = sa.MetaData()

# Findings whose check is `match`, or whose key starts with it, stay quiet until `expires_at`
# (they are still recorded, and counted as suppressed).
SILENCES = sa.Table(
    "anomaly_silences", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("match", _MATCH, nullable=False),
    sa.Column("created_at", DATETIME, nullable=False),
    sa.Column("expires_at", DATETIME, nullable=False, index=True),
    sa.Column("reason", sa.Text),
    mysql_charset="utf8mb4",
    mariadb_charset="utf8mb4",
)

# `anomaly watch`: the end of the last window it judged, per watch (its checks and database).
WATERMARKS = sa.Table(
    "anomaly_watermarks", METADATA,
    sa.Column("name", _MATCH, primary_key=True),
    sa.Column("judged_until", DATETIME, nullable=False),
    mysql_charset="utf8mb4",
    mariadb_charset="utf8mb4",
)


def _second(moment: datetime) -> datetime:
    """Whole seconds, naive UTC (the store's convention for instants)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


class Lifecycle:
    """The lifecycle's methods; mixed into AlertStore, which provides the transactions."""

    _transact: Callable[..., Any]
    _change: Callable[..., Any]
    _one: Callable[[str], list[Any]]
    _scope: str
    scope: str | None
    _silences: list[str]
    _resolved: dict[str, datetime]
    run_id: str

    def resolve(self, checks: Iterable[str], *, now: datetime) -> list[AlertRecord]:
        """Mark resolved the alerted incidents of `checks` that this run (at `now`) did not find.

        Call it after this store recorded the run's findings: an open, notified incident that
        this store (this run) did not record was not found. Each key is taken by one
        conditional update, so two runs at once resolve (and announce) an incident once.
        release() reopens them, so a resolution whose notification failed is announced again.
        """
        from dataclasses import replace

        from anomaly_cli.state import ALERTS, C, AlertRecord, _instant

        moment = _instant(now)
        names = sorted(set(checks))
        if not names:
            return []
        due = (C.scope == self._scope, C.check.in_(names), C.last_notified.isnot(None), C.resolved_at.is_(None),
               sa.or_(C.last_run.is_(None), C.last_run != self.run_id))

        def work(conn: Connection) -> list[AlertRecord]:
            won = []
            for row in conn.execute(sa.select(ALERTS).where(*due).order_by(C.key)).all():
                if conn.execute(sa.update(ALERTS).where(C.key == row.key, *due)
                                .values(resolved_at=moment)).rowcount == 1:
                    won.append(AlertRecord.from_row(row))
            return won

        resolved = self._transact(work, write=True)
        self._resolved.update({r.key: moment for r in resolved})
        return [replace(r, resolved_at=moment) for r in resolved]

    def unack(self, key: str) -> AlertRecord:
        """Undo an acknowledgement: --new-only tells of the alert again once its cooldown is over."""
        from anomaly_cli.state import ALERTS, C

        return self._change(key, sa.update(ALERTS).where(*self._one(key)).values(acked_at=None, acked_severity=None))

    def prune(self, *, older_than: timedelta, now: datetime) -> tuple[int, int]:
        """Forget alerts last seen before now - older_than, and silences expired by then."""
        from anomaly_cli.state import ALERTS, C, _instant

        cutoff = _instant(now) - older_than

        def work(conn: Connection) -> tuple[int, int]:
            stale = [C.last_seen < cutoff] + ([] if self.scope is None else [C.scope == self.scope])
            alerts = conn.execute(sa.delete(ALERTS).where(*stale)).rowcount
            silences = self._prune_silences(conn, cutoff)
            return alerts, silences

        return self._transact(work, write=True)

    def open_incidents(self, checks: Iterable[str] | None = None) -> dict[Severity, int]:
        """Notified incidents not resolved yet, counted by severity (the watch view)."""
        from anomaly_cli.state import C

        stmt = (sa.select(C.severity, sa.func.count()).where(C.last_notified.isnot(None), C.resolved_at.is_(None))
                .group_by(C.severity))
        if checks is not None:
            stmt = stmt.where(C.check.in_(sorted(set(checks))))
        if self.scope is not None:
            stmt = stmt.where(C.scope == self.scope)
        rows = self._transact(lambda conn: conn.execute(stmt).all(), write=False)
        return {Severity(sev): n for sev, n in rows}

    def silenced(self, finding: Any) -> bool:
        """Whether an active silence (loaded when new_only starts) matches the finding's check or key prefix."""
        return any(finding.check == match or finding.key.startswith(match) for match in self._silences)

    def silence(self, match: str, *, until: datetime, reason: str | None, now: datetime) -> int:
        """Keep findings whose check is `match`, or whose key starts with it, quiet until `until`."""
        if not match.strip():
            raise UsageError("a silence needs a check, a key or a key prefix to match")
        if _second(until) <= _second(now):
            raise UsageError("a silence must end in the future")
        stmt = sa.insert(SILENCES).values(match=match, created_at=_second(now), expires_at=_second(until),
                                          reason=reason)
        return int(self._transact(lambda conn: conn.execute(stmt).inserted_primary_key[0], write=True))

    def silences(self, *, now: datetime) -> list[sa.Row[Any]]:
        """The silences in force at `now`, the soonest to expire first."""
        stmt = sa.select(SILENCES).where(SILENCES.c.expires_at > _second(now)).order_by(SILENCES.c.expires_at)
        return self._transact(lambda conn: conn.execute(stmt).all(), write=False)  # type: ignore[no-any-return]

    def unsilence(self, silence_id: int) -> None:
        stmt = sa.delete(SILENCES).where(SILENCES.c.id == silence_id)
        if self._transact(lambda conn: conn.execute(stmt).rowcount, write=True) != 1:
            raise UsageError(f"no silence with id {silence_id}", hint="see 'anomaly alerts silences'")

    @staticmethod
    def _prune_silences(conn: Connection, cutoff: datetime) -> int:
        return int(conn.execute(sa.delete(SILENCES).where(SILENCES.c.expires_at < cutoff)).rowcount)

    def watermark(self, name: str) -> datetime | None:
        """The end of the last window `anomaly watch` judged under this name."""
        stmt = sa.select(WATERMARKS.c.judged_until).where(WATERMARKS.c.name == name)
        return self._transact(lambda conn: conn.execute(stmt).scalar(), write=False)  # type: ignore[no-any-return]

    def set_watermark(self, name: str, until: datetime) -> None:
        moment = until.replace(microsecond=0)  # the watch's clock: local, naive, like the audited data

        def work(conn: Connection) -> None:
            if not conn.execute(sa.update(WATERMARKS).where(WATERMARKS.c.name == name)
                                .values(judged_until=moment)).rowcount:
                conn.execute(sa.insert(WATERMARKS).values(name=name, judged_until=moment))

        self._transact(work, write=True)


def upgrade(conn: Connection) -> None:
    """Bring a store made by an earlier version up to date: the lifecycle's tables, and ADD
    COLUMN for each alerts column it lacks."""
    from anomaly_cli.state import ADDED_COLUMNS, C, TABLE

    METADATA.create_all(conn, checkfirst=True)
    inspector = sa.inspect(conn)
    if not inspector.has_table(TABLE):
        return  # a new store: created whole by state_migrate.create_or_migrate
    present = {c["name"] for c in inspector.get_columns(TABLE)}
    for name in ADDED_COLUMNS:
        if name not in present:
            column = C[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}"))


def duplicate_column(exc: DBAPIError) -> bool:
    """Two processes upgrading one store at once: the loser's ADD COLUMN finds it there."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "42701":  # PostgreSQL duplicate_column
        return True
    args = getattr(orig, "args", ())
    return (bool(args) and args[0] == 1060) or "duplicate column" in str(orig).lower()
