"""The alert state store: new-only filtering, cooldown, ack, labels, and concurrent runs on three engines."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from anomaly_cli.errors import DatabaseError, UsageError
from anomaly_cli.model import Finding, Severity
from anomaly_cli.state import AlertStore, UnknownAlertError, default_state_url

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2025, 9, 17, 9, 30)
HOUR = timedelta(hours=1)


def finding(key: str, severity: Severity = Severity.HIGH, check: str = "spam", message: str = "") -> Finding:
    return Finding(check=check, key=key, severity=severity, message=message or f"alert {key}", fields={})


def findings(n: int, severity: Severity = Severity.HIGH) -> list[Finding]:
    return [finding(f"spam:{i}:2025-09-16T16:31:05", severity) for i in range(n)]


def keys(found: Iterable[Finding]) -> list[str]:
    return [f.key for f in found]


# -- where the state lives ------------------------------------------------------------------

@pytest.mark.parametrize(("environ", "expected"), [
    ({"HOME": "/home/ann"}, "sqlite:////home/ann/.local/state/anomaly/state.db"),
    ({"HOME": "/home/ann", "XDG_STATE_HOME": "/var/state"}, "sqlite:////var/state/anomaly/state.db"),
    # A relative XDG_STATE_HOME is invalid by the spec and ignored.
    ({"HOME": "/home/ann", "XDG_STATE_HOME": "state"}, "sqlite:////home/ann/.local/state/anomaly/state.db"),
    ({"HOME": "/home/ann", "XDG_STATE_HOME": "/var/state", "ANOMALY_STATE": "postgresql+psycopg://u@h/s"},
     "postgresql+psycopg://u@h/s"),
    ({"HOME": "/home/ann", "ANOMALY_STATE": "  "}, "sqlite:////home/ann/.local/state/anomaly/state.db"),
])
def test_default_state_url(environ: dict[str, str], expected: str) -> None:
    assert default_state_url(environ) == expected


def test_default_state_is_a_wal_sqlite_file_in_the_state_directory(tmp_path: Path) -> None:
    url = default_state_url({"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "xdg")})
    with AlertStore(url) as store:
        assert keys(store.new_only(iter(findings(3)), now=T0)) == keys(findings(3))
    path = tmp_path / "xdg" / "anomaly" / "state.db"
    assert path.is_file() and not (tmp_path / "home").exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT COUNT(*) FROM anomaly_alerts").fetchone()[0] == 3


def test_a_bare_path_is_a_sqlite_state_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "alerts.db"
    with AlertStore(str(path)) as store:
        list(store.new_only(iter(findings(2)), now=T0))
    with AlertStore(f"sqlite:///{path}") as store:  # the same store, through its URL
        assert len(store.list()) == 2
        assert keys(store.new_only(iter(findings(2)), now=T0 + HOUR)) == []


def test_bad_urls_and_unreachable_servers_are_clean_errors() -> None:
    with pytest.raises(UsageError):
        AlertStore("oracle://scott:tiger@db/x")
    with pytest.raises(DatabaseError) as caught:
        with AlertStore("postgresql+psycopg://anomaly:s3cret@127.0.0.1:1/state", connect_timeout=2):
            pass
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


# -- the anti-spam rule, on every engine ----------------------------------------------------

@pytest.mark.engines
def test_cooldown_and_severity_rules(state_engine_url: str) -> None:
    batch = findings(5)
    with AlertStore(state_engine_url, batch_size=2) as store:
        assert keys(store.new_only(iter(batch), now=T0)) == keys(batch)  # first run: all, in order
        assert keys(store.new_only(iter(batch), now=T0 + HOUR)) == []  # within the cooldown: none
        # Exactly at the cooldown the alert is due again (a cron every 4 h must not skip a cycle).
        assert keys(store.new_only(iter(batch[:2]), now=T0 + 4 * HOUR)) == keys(batch[:2])
        rest = store.new_only(iter(batch), cooldown=timedelta(hours=8), now=T0 + 5 * HOUR)
        assert keys(rest) == []  # a longer cooldown, chosen by the caller, keeps all quiet
        worse = [finding(batch[2].key, Severity.CRITICAL), finding(batch[3].key, Severity.MEDIUM)]
        told = store.new_only(iter(worse), cooldown=timedelta(hours=8), now=T0 + 5 * HOUR)
        assert keys(told) == [batch[2].key]  # within the cooldown, up yields, down does not
        # Back to HIGH after being told CRITICAL is no news either.
        assert keys(store.new_only(iter([finding(batch[2].key)]), now=T0 + 6 * HOUR)) == []

        record = store.show(batch[2].key)
        assert record is not None
        assert (record.severity, record.notified_severity) == (Severity.HIGH, Severity.CRITICAL)
        assert (record.first_seen, record.last_seen, record.last_notified) == (T0, T0 + 6 * HOUR, T0 + 5 * HOUR)
        assert record.times_seen == 5
        assert store.show(batch[3].key).severity is Severity.MEDIUM  # type: ignore[union-attr]
        assert store.show("spam:nope") is None


@pytest.mark.engines
def test_ack_silences_until_the_severity_rises(state_engine_url: str) -> None:
    alert = finding("price:904:1", Severity.MEDIUM, check="price")
    with AlertStore(state_engine_url) as store:
        assert keys(store.new_only(iter([alert]), now=T0)) == [alert.key]
        acked = store.ack(alert.key, T0 + HOUR)
        assert (acked.acked_at, acked.acked_severity) == (T0 + HOUR, Severity.MEDIUM)
        assert keys(store.new_only(iter([alert]), now=T0 + 24 * HOUR)) == []  # long past the cooldown
        higher = finding(alert.key, Severity.HIGH, check="price")
        assert keys(store.new_only(iter([higher]), now=T0 + 25 * HOUR)) == [alert.key]
        record = store.show(alert.key)
        assert record is not None and record.acked_at is None  # the worse alert needs its own ack
        assert keys(store.new_only(iter([higher]), now=T0 + 30 * HOUR)) == [alert.key]  # reminders resume
        with pytest.raises(UnknownAlertError) as caught:
            store.ack("price:0:0", T0)
        assert isinstance(caught.value, KeyError) and isinstance(caught.value, UsageError)


@pytest.mark.engines
def test_labels_lists_and_counts(state_engine_url: str) -> None:
    spam = [finding(f"spam:{i}:x", check="spam") for i in range(3)]
    price = [finding(f"price:{i}:1", Severity.CRITICAL, check="price") for i in range(2)]
    with AlertStore(state_engine_url) as store:
        list(store.new_only(iter(spam), now=T0))
        list(store.new_only(iter(price), now=T0 + HOUR))
        assert store.label("spam:0:x", "fraud", T0 + 2 * HOUR).label == "fraud"
        store.label("spam:1:x", "false_positive", T0 + 2 * HOUR)
        store.label("price:0:1", "fraud", T0 + 2 * HOUR)
        assert store.label_counts() == {
            "price": {"fraud": 1, "false_positive": 0, "unlabelled": 1},
            "spam": {"fraud": 1, "false_positive": 1, "unlabelled": 1},
        }
        assert store.label_counts("price") == {"price": {"fraud": 1, "false_positive": 0, "unlabelled": 1}}
        assert keys(store.list()) == ["price:0:1", "price:1:1", "spam:0:x", "spam:1:x", "spam:2:x"]
        assert keys(store.list(check="spam", label="fraud")) == ["spam:0:x"]
        assert keys(store.list(label="unlabelled", limit=1)) == ["price:1:1"]
        cleared = store.label("spam:0:x", None, T0 + 3 * HOUR)
        assert (cleared.label, cleared.label_at) == (None, None)
        assert store.label_counts("spam")["spam"]["unlabelled"] == 2
        with pytest.raises(UsageError):
            store.label("spam:1:x", "maybe", T0)
        with pytest.raises(UnknownAlertError):
            store.label("spam:9:x", "fraud", T0)
        assert store.show("spam:1:x").label == "false_positive"  # type: ignore[union-attr]


@pytest.mark.engines
def test_record_keeps_everything_and_marks_nothing(state_engine_url: str) -> None:
    batch = findings(4, Severity.LOW)
    with AlertStore(state_engine_url) as store:
        assert keys(store.record(iter(batch), now=T0)) == keys(batch)
        assert keys(store.record(iter(batch), now=T0 + HOUR)) == keys(batch)
        assert all(r.times_seen == 2 and r.last_notified is None for r in store.list())
        assert keys(store.new_only(iter(batch), now=T0 + HOUR)) == keys(batch)  # never told yet


@pytest.mark.engines
def test_messages_keys_and_times_round_trip(state_engine_url: str) -> None:
    message = "Transaction ID 904: Eva Green bought Mouse for ₹68.00, a 86.4% discount."
    alerts = [finding("price:904:1", Severity.CRITICAL, "price", message), finding("PRICE:904:1", check="price")]
    aware = datetime(2025, 9, 17, 9, 30, 15, 999_999, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    with AlertStore(state_engine_url) as store:
        # Keys differing only in case are different alerts (MariaDB would fold them by default).
        assert keys(store.new_only(iter(alerts), now=aware)) == ["price:904:1", "PRICE:904:1"]
        record = store.show("price:904:1")
        assert record is not None
        assert record.message == message
        assert record.first_seen == datetime(2025, 9, 17, 4, 0, 15)  # UTC, whole seconds
        assert record.as_dict()["severity"] == "critical"
        assert record.as_dict()["last_notified"] == "2025-09-17T04:00:15"


@pytest.mark.engines
def test_a_key_repeated_in_one_run_is_told_once(state_engine_url: str) -> None:
    alert = finding("spam:1:x")
    with AlertStore(state_engine_url, batch_size=10) as store:
        assert keys(store.new_only(iter([alert, finding("spam:2:x"), alert]), now=T0)) == ["spam:1:x", "spam:2:x"]
        assert store.show("spam:1:x").times_seen == 2  # type: ignore[union-attr]


def test_new_only_streams(tmp_path: Path) -> None:
    def endless() -> Iterator[Finding]:
        for i in itertools.count():
            yield finding(f"spam:{i}:x")

    with AlertStore(str(tmp_path / "s.db"), batch_size=10) as store:
        first = list(itertools.islice(store.new_only(endless(), now=T0), 25))
        assert keys(first) == [f"spam:{i}:x" for i in range(25)]
        assert len(store.list()) == 30  # three batches committed, nothing more read


def test_negative_cooldown_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with AlertStore(str(tmp_path / "s.db")) as store:
        with pytest.raises(UsageError):
            store.new_only(iter(findings(1)), cooldown=-HOUR, now=T0)
        assert store.list() == []


# -- two cron runs at once ------------------------------------------------------------------

RUNNER = """
import json, sys, time
from datetime import datetime
from anomaly_cli.model import Finding, Severity
from anomaly_cli.state import AlertStore

url, start, backwards = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"

def findings():
    # One run walks the keys backwards: the runs then meet in the middle and contend for
    # the same keys in opposite lock orders, instead of one merely trailing the other.
    for i in (reversed(range(200)) if backwards else range(200)):
        time.sleep(0.001)  # a check streaming from its database: lets the two runs interleave
        yield Finding("spam", f"spam:{i}:2025-09-16T16:31:05", Severity.HIGH, f"alert {i}", {})

time.sleep(max(0.0, start - time.time()))  # both start together, table creation included
with AlertStore(url, batch_size=7) as store:
    told = [f.key for f in store.new_only(findings(), now=datetime(2025, 9, 17, 9, 30))]
print(json.dumps(told))
"""


@pytest.mark.engines
def test_two_concurrent_runs_tell_each_alert_once(state_engine_url: str) -> None:
    start = time.time() + 1.5
    runs = [subprocess.Popen([sys.executable, "-c", RUNNER, state_engine_url, str(start), backwards], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for backwards in "01"]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_out, err) in zip(runs, outputs):
        assert run.returncode == 0, err
    told = [json.loads(out) for out, _err in outputs]
    everything = [f"spam:{i}:2025-09-16T16:31:05" for i in range(200)]
    assert sorted(told[0] + told[1]) == sorted(everything)  # each key exactly once, in total
    assert not set(told[0]) & set(told[1])

    engine = sa.create_engine(state_engine_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT times_seen, notified_severity, last_notified FROM anomaly_alerts"))
        rows = rows.all()
    engine.dispose()
    assert len(rows) == 200
    assert {(r[0], r[1]) for r in rows} == {(2, int(Severity.HIGH))}  # both runs recorded every key
    assert all(r[2] is not None for r in rows)
