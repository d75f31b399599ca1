"""`anomaly watch` as a real process against a database the test appends to, notifying a real
HTTP receiver: a planted incident is told once, its resolution once; a database outage gives one
line when it starts and one when it ends, and no notification is lost or repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import load_database
from tests.receivers import HttpReceiver, http_receiver

CUSTOMER = {"customer_id": 1, "customer_name": "Alice Johnson", "mobile_number": "8260181590",
            "email": "alice@example.com", "city": "Jaipur", "state": "Rajasthan", "pincode": "302028",
            "country": "India"}
PRODUCT = {"product_id": "prod1005", "product_name": "Mouse", "product_price": Decimal("500.00")}


def sale(number: int, sold: str, when: datetime) -> dict[str, list[dict]]:
    return {
        "transactions": [{"transaction_id": number, "customer_id": 1, "transaction_date": when.replace(microsecond=0),
                          "status": "SUCCESS", "total_amount": Decimal(sold)}],
        "transaction_items": [{"item_id": number, "transaction_id": number, "product_id": "prod1005",
                               "product_name": "Mouse", "product_price": Decimal(sold), "quantity": 1}],
    }


def append(url: str, rows: dict[str, list[dict]]) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine, only=list(rows))
    with engine.begin() as conn:
        for table, values in rows.items():
            conn.execute(meta.tables[table].insert(), values)
    engine.dispose()


def reprice(url: str, item_id: int, price: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE transaction_items SET product_price = :p WHERE item_id = :i"),
                     {"p": price, "i": item_id})
    engine.dispose()


LOG: list[Callable[[], list[str]]] = []  # the running watcher's log, shown when a wait times out


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = "\n".join(LOG[-1]()[-8:]) if LOG else ""
            raise AssertionError(f"timed out waiting for {what}; the watch said:\n{tail}")
        time.sleep(0.1)


class Watcher:
    """`python -m anomaly_cli watch ...` with stderr in a file the test reads."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        env = {**os.environ, "ANOMALY_NOTIFY_BACKOFF": "0", "ANOMALY_NOTIFY_RETRIES": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "anomaly_cli", "watch", *args], env=env,
                                        stdout=subprocess.DEVNULL, stderr=log.open("w"))
        LOG.append(self.lines)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def count(self, words: str) -> int:
        return sum(words in line for line in self.lines())

    def cycles(self) -> int:
        return self.count(": cycle ")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def web() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


def hooks(web: HttpReceiver) -> list[dict]:
    return web.bodies("/hook")


class Outage:
    """SQLite: the file moves away and back. A server: a TCP proxy in front of it is cut and
    restored (the server itself, shared with other tests, is never stopped)."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url = url
        self.proxy = None
        if url.startswith("sqlite"):
            self.file = Path(url.removeprefix("sqlite:///"))
            self.away = tmp_path / "elsewhere.db"
            self.watched = url
        else:
            from sqlalchemy.engine import make_url

            from tests.receivers import TcpProxy

            real = make_url(url)
            self.proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432))
            self.watched = real.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)

    def begin(self) -> str:
        """Cut; returns where data can still be written meanwhile (the server itself, the moved file)."""
        if self.proxy is not None:
            self.proxy.cut()
            return self.url
        self.file.rename(self.away)
        return f"sqlite:///{self.away}"

    def end(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        else:
            self.away.rename(self.file)


@pytest.mark.engines
def test_watch_notifies_once_resolves_once_and_rides_out_an_outage(engine_url: str, tmp_path: Path,
                                                                   web: HttpReceiver) -> None:
    if engine_url.startswith("duckdb"):
        pytest.skip("DuckDB: no TCP to cut, and a file open for reading in one process refuses writers in another")
    url = engine_url
    now = datetime.now()
    load_database(url, {"customers": [CUSTOMER], "products": [PRODUCT], **sale(1, "500.00", now - timedelta(minutes=5))})
    outage = Outage(url, tmp_path)
    watcher = Watcher(["price", "--db", outage.watched, "--every", "1s", "--window", "1h", "--state",
                       f"sqlite:///{tmp_path / 'state.db'}", "--notify", f"json://{web.url}/hook",
                       "--notify-resolved"], tmp_path / "watch.log")
    try:
        wait_for(lambda: watcher.cycles() >= 1, 30, "the first cycle")
        assert hooks(web) == []  # a clean database: nothing to tell

        # A planted incident: told within two cycles, once.
        append(url, sale(2, "50.00", datetime.now() - timedelta(minutes=1)))
        planted_at = watcher.cycles()
        wait_for(lambda: len(hooks(web)) == 1, 30, "the incident's notification")
        assert watcher.cycles() - planted_at <= 2
        print(f"planted after cycle {planted_at}, notified by cycle {watcher.cycles()}")
        [told] = hooks(web)
        assert told["title"].startswith("anomaly: 1 finding (1 critical)") and "Transaction ID 2:" in told["message"]
        seen = watcher.cycles()
        wait_for(lambda: watcher.cycles() >= seen + 2, 30, "two more cycles")
        assert len(hooks(web)) == 1

        # Fixed at the source: the resolution is told once.
        reprice(url, 2, "500.00")
        wait_for(lambda: len(hooks(web)) == 2, 30, "the resolution")
        assert "1 resolved" in hooks(web)[1]["title"] and "RESOLVED [CRITICAL] Transaction ID 2:" in hooks(web)[1]["message"]
        seen = watcher.cycles()
        wait_for(lambda: watcher.cycles() >= seen + 2, 30, "two more cycles")
        assert len(hooks(web)) == 2

        # The database goes away; an incident is written meanwhile (it reaches the file the
        # server will serve again); the database comes back.
        meanwhile = outage.begin()
        wait_for(lambda: watcher.count("database unavailable") == 1, 30, "the outage line")
        append(meanwhile, sale(3, "100.00", datetime.now() - timedelta(minutes=1)))
        time.sleep(4)  # several retries while down
        outage.end()
        wait_for(lambda: watcher.count("database back") == 1, 60, "the recovery line")
        wait_for(lambda: len(hooks(web)) == 3, 30, "the incident written during the outage")
        assert "Transaction ID 3:" in hooks(web)[2]["message"] and "Transaction ID 2:" not in hooks(web)[2]["message"]
        seen = watcher.cycles()
        wait_for(lambda: watcher.cycles() >= seen + 2, 30, "two more cycles")
    finally:
        code = watcher.stop()
    lines = watcher.lines()
    print("\n".join(lines))  # the watch's own account, for -s runs
    assert code == 0, lines
    assert len(hooks(web)) == 3  # nothing lost, nothing twice
    assert watcher.count("database unavailable") == 1 and watcher.count("database back") == 1
    assert lines[-1].endswith("stopped (SIGTERM)")
    assert not any("Traceback" in line for line in lines)


def test_the_live_view_and_the_log_lines_render_every_event() -> None:
    import io

    from rich.console import Console

    from anomaly_cli.cli.watch import _LiveView, cycle_text
    from anomaly_cli.model import RunInfo, ScanReport, Severity, Window
    from anomaly_cli.watch import Cycle, Outage, Recovery

    start = datetime(2026, 11, 29, 10, 0, 0)
    run = RunInfo(tool="anomaly", version="0", generated_at=start, window=Window(), database="db", checks=())
    cycle = Cycle(number=1, started=start, window=Window(since=start - timedelta(hours=2)),
                  report=ScanReport(run=run, results=(), exit_code=0), open_incidents={Severity.CRITICAL: 2},
                  next_at=start + timedelta(minutes=1), sent=("chat",))
    outage = Outage(since=start, message="cannot connect", next_at=start + timedelta(seconds=5))
    back = Recovery(down_since=start, at=start + timedelta(minutes=3))
    assert cycle_text(cycle).startswith("cycle 1 at 10:00:00; window from 2026-11-29 08:00:00; 0 new")
    assert "notified chat" in cycle_text(cycle)
    assert cycle_text(outage).startswith("database unavailable since 10:00:00: cannot connect")
    assert cycle_text(back) == "database back at 10:03:00 (down since 10:00:00)"

    view = _LiveView(["price"])
    screen = io.StringIO()
    view.live.console = Console(file=screen, width=120, force_terminal=False)
    with view:
        for event in (cycle, outage, back):
            view.update(event)
    text = screen.getvalue()
    assert "2 critical" in text and "next run" in text and "recovered at 10:03:00" in text


def test_after_a_long_outage_the_window_reaches_back_to_the_watermark(tmp_path: Path) -> None:
    from anomaly_cli.config import default_schema
    from anomaly_cli.scan import AlertOptions, ScanRequest
    from anomaly_cli.state import AlertStore
    from anomaly_cli.watch import MAX_CATCH_UP, WatchPlan, _window

    state = f"sqlite:///{tmp_path / 'state.db'}"
    request = ScanRequest(database="shop.db", checks=("price",), params={"price": {}}, schema=default_schema(),
                          alerts=AlertOptions(state_url=state))
    plan = WatchPlan(request=request, window=timedelta(hours=1))
    now = datetime(2026, 11, 29, 12, 0, 0)
    assert _window(plan, now).since == now - timedelta(hours=1)  # no watermark yet
    with AlertStore(state) as store:
        store.set_watermark(plan.name, now - timedelta(hours=3))  # the last judged window ended 3 h ago
    assert _window(plan, now).since == now - timedelta(hours=3)
    with AlertStore(state) as store:
        store.set_watermark(plan.name, now - timedelta(days=5))
    assert _window(plan, now).since == now - MAX_CATCH_UP  # at most a day back
    with AlertStore(state) as store:
        store.set_watermark(plan.name, now - timedelta(minutes=1))
    assert _window(plan, now).since == now - timedelta(hours=1)  # the moving window as usual
