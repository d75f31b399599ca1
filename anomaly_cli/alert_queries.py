"""The `anomaly alerts` queries of the alert store (list, show, ack, label, label counts), mixed
into AlertStore, which runs them in its transactions."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from anomaly_cli.errors import UsageError
from anomaly_cli.state_tables import (
    ALERTS, UNLABELLED, UNSCOPED, AlertRecord, C, UnknownAlertError, _instant, _valid_label,
)


class AlertQueries:
    """What a person asks of the store; needs `scope`, `_readable()` and `_transact()` of AlertStore."""

    scope: str | None

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
