"""The alert lifecycle in the state store: resolution, silences, unack, prune, watermarks, and
the upgrade of a store made before those columns existed (on every engine)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from anomaly_cli.model import Finding, Severity
from anomaly_cli.state import ADDED_COLUMNS, ALERTS, TABLE, AlertStore

NOW = datetime(2025, 7, 12, 12, 0)
HOUR = timedelta(hours=1)


def findings(*names: str, severity: Severity = Severity.HIGH) -> list[Finding]:
    return [Finding("rates", f"rates:{n}", severity, f"incident {n}", {}) for n in names]


def claimed(url: str, found: list[Finding], now: datetime, checks=("rates",)) -> tuple[list[str], list[str]]:
    """One run: the keys notified, the keys resolved."""
    with AlertStore(url) as store:
        new = [f.key for f in store.new_only(iter(found), cooldown=4 * HOUR, now=now)]
        return new, [r.key for r in store.resolve(checks, now=now)]


@pytest.mark.engines
def test_an_old_store_gets_the_new_columns_and_keeps_its_rows(state_engine_url: str) -> None:
    old = sa.MetaData()
    sa.Table(TABLE, old, *[sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                           for c in ALERTS.columns if c.name not in (*ADDED_COLUMNS, "scope")])
    engine = sa.create_engine(state_engine_url)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(old.tables[TABLE].insert().values(key="rates:a", check="rates", severity=3, first_seen=NOW,
                                                       last_seen=NOW, last_notified=NOW, notified_severity=3,
                                                       times_seen=1, message="incident a"))
    engine.dispose()
    # Opened twice: the second open finds the columns there.
    for _ in range(2):
        with AlertStore(state_engine_url) as store:
            assert store.show("rates:a").resolved_at is None
        engine = sa.create_engine(state_engine_url)
        assert set(ADDED_COLUMNS) <= {c["name"] for c in sa.inspect(engine).get_columns(TABLE)}
        engine.dispose()
    # The old row, notified and not found again, resolves; then it is news again when it returns.
    assert claimed(state_engine_url, findings("b"), NOW + HOUR) == (["rates:b"], ["rates:a"])
    assert claimed(state_engine_url, findings("a", "b"), NOW + 2 * HOUR) == (["rates:a"], [])


def test_resolution_once_and_a_failed_run_reopens(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    assert claimed(url, findings("a", "b"), NOW) == (["rates:a", "rates:b"], [])
    # Same second, next run: b is gone. (Runs are told apart by the store, not by the clock.)
    with AlertStore(url) as store:
        assert list(store.new_only(iter(findings("a")), cooldown=4 * HOUR, now=NOW)) == []
        assert [r.key for r in store.resolve(["rates"], now=NOW)] == ["rates:b"]
        store.release()  # its report never got out: the resolution is announced by the next run
    assert claimed(url, findings("a"), NOW + HOUR) == ([], ["rates:b"])
    assert claimed(url, findings("a"), NOW + 2 * HOUR) == ([], [])  # once
    # Another check's run resolves nothing of rates.
    assert claimed(url, [], NOW + 3 * HOUR, checks=("price",)) == ([], [])


def test_silences_by_check_key_and_prefix_expire(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with AlertStore(url) as store:
        store.silence("rates:fa", until=NOW + HOUR, reason="maintenance", now=NOW)
        assert [s.match for s in store.silences(now=NOW)] == ["rates:fa"]
    assert claimed(url, findings("failed", "approved"), NOW) == (["rates:approved"], [])
    # Expired: the silenced finding is told.
    assert claimed(url, findings("failed", "approved"), NOW + 2 * HOUR) == (["rates:failed"], [])
    with AlertStore(url) as store:
        with pytest.raises(Exception, match="future"):
            store.silence("rates", until=NOW, reason=None, now=NOW)


def test_unack_prune_and_watermarks(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    claimed(url, findings("a"), NOW)
    with AlertStore(url) as store:
        store.ack("rates:a", NOW)
        assert store.unack("rates:a").acked_at is None
        assert store.open_incidents() == {Severity.HIGH: 1}
        assert store.watermark("w") is None
        store.set_watermark("w", NOW)
        store.set_watermark("w", NOW + HOUR)
        assert store.watermark("w") == NOW + HOUR
        assert store.prune(older_than=timedelta(days=90), now=NOW + timedelta(days=89)) == (0, 0)
        assert store.prune(older_than=timedelta(days=90), now=NOW + timedelta(days=91)) == (1, 0)
        assert store.list() == []


def test_alerts_cli_unack_prune_and_errors(cli, tmp_path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    claimed(state, findings("a"), datetime.now(timezone.utc) - 2 * HOUR)
    assert cli("alerts", "ack", "rates:a", "--state", state).exit_code == 0
    run = cli("alerts", "unack", "rates:a", "--state", state)
    assert run.exit_code == 0 and "unacknowledged rates:a" in run.stderr
    run = cli("alerts", "prune", "--older-than", "90d", "--state", state)
    assert run.exit_code == 0 and "pruned 0 alerts" in run.stderr
    run = cli("alerts", "prune", "--older-than", "1h", "--state", state)
    assert run.exit_code == 0 and "pruned 1 alert " in run.stderr
    assert cli("alerts", "unack", "rates:a", "--state", state).exit_code == 2  # pruned: unknown now
    bad = cli("alerts", "silence", "rates", "--for", "soon", "--state", state)
    assert bad.exit_code == 2 and "--for" in bad.stderr
    assert cli("alerts", "unsilence", "42", "--state", state).exit_code == 2
