"""`anomaly watch` as a library: run a scan every `every` on a moving window, forever.

Each cycle is one `run_scan` with --new-only semantics: findings already notified are held back
by the alert store, so only new incidents (and, when asked, resolved ones) are told. The end of
each judged window is kept in the store (a watermark); after an outage the next window reaches
back to it, so no bucket goes unjudged. A database outage never ends the loop: it is reported
once, retried with backoff, and its recovery reported once. Nothing here prints: the caller gets
events and decides (a live view on a terminal, one log line per cycle otherwise).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from anomaly_cli.errors import DatabaseError, NotifyError
from anomaly_cli.model import ScanReport, Severity, Window

if TYPE_CHECKING:
    from anomaly_cli.render import Sink
    from anomaly_cli.scan import ScanRequest

MAX_CATCH_UP = timedelta(days=1)  # after a long outage, judge at most this far back
MAX_BACKOFF = timedelta(minutes=10)


@dataclass(frozen=True)
class Cycle:
    """One completed cycle."""

    number: int
    started: datetime
    window: Window
    report: ScanReport
    open_incidents: dict[Severity, int]
    next_at: datetime
    sent: tuple[str, ...] = ()  # destinations notified
    failure: str | None = None  # a notification that could not be delivered (retried next cycle)


@dataclass(frozen=True)
class Outage:
    """The database (audited or alert state) stopped answering; reported once."""

    since: datetime
    message: str
    next_at: datetime


@dataclass(frozen=True)
class Recovery:
    """It answers again."""

    down_since: datetime
    at: datetime


Event = Cycle | Outage | Recovery


@dataclass(frozen=True)
class WatchPlan:
    request: ScanRequest  # the template of every cycle's scan; must have `alerts` (the state store)
    every: timedelta = timedelta(seconds=60)
    window: timedelta = timedelta(hours=2)
    sinks: Callable[[], Sequence[Sink]] = tuple  # fresh sinks per cycle (e.g. notifications)
    cycles: int | None = None  # stop after this many completed cycles (None: until stopped)

    @property
    def name(self) -> str:
        """The watermark's name: one per set of checks on one database."""
        digest = hashlib.sha256(f"{self.request.database}|{','.join(sorted(self.request.checks))}".encode())
        return f"watch:{digest.hexdigest()[:24]}"


def watch(plan: WatchPlan, on_event: Callable[[Event], None], *, should_stop: Callable[[], bool] = lambda: False,
          clock: Callable[[], datetime] = datetime.now, sleep: Callable[[float], None] = time.sleep) -> int:
    """Run cycles until `should_stop()` (checked between cycles and while waiting); returns the
    number of completed cycles. Usage errors (bad options) end it; outages do not."""
    from anomaly_cli.scan import run_scan

    if plan.request.alerts is None:
        raise ValueError("a watch needs the alert state (request.alerts)")
    done = 0
    down: datetime | None = None
    failures = 0
    while not should_stop():
        started = clock().replace(microsecond=0)
        sinks = tuple(plan.sinks())
        try:
            window = _window(plan, started)
            report = run_scan(replace(plan.request, window=window, now=started,
                                      extra_sinks=(*plan.request.extra_sinks, *sinks)))
            failure = None
        except DatabaseError as exc:
            failures += 1
            pause = min(plan.every * 2 ** (failures - 1), max(MAX_BACKOFF, plan.every))
            if down is None:
                down = started
                on_event(Outage(since=started, message=str(exc), next_at=started + pause))
            _wait(pause.total_seconds(), should_stop, sleep)
            continue
        except NotifyError as exc:
            # The run's claims were released: the next cycle tells the same incidents again.
            report, failure = None, str(exc)
        if down is not None:
            on_event(Recovery(down_since=down, at=started))
            down, failures = None, 0
        if report is not None:
            _save_watermark(plan, started)
        done += 1
        next_at = started + plan.every
        on_event(Cycle(number=done, started=started, window=window, report=report or _empty(plan, window),
                       open_incidents=_open_incidents(plan), next_at=next_at, failure=failure,
                       sent=tuple(name for sink in sinks for name in getattr(sink, "sent", ()))))
        if plan.cycles is not None and done >= plan.cycles:
            break
        _wait((next_at - clock()).total_seconds(), should_stop, sleep)
    return done


def _window(plan: WatchPlan, now: datetime) -> Window:
    """[now - window, open end), reaching back to the watermark when the last judged window
    ended earlier (an outage, a stopped watch), at most MAX_CATCH_UP back."""
    since = now - plan.window
    judged_until = _store_call(plan, lambda store: store.watermark(plan.name))
    if judged_until is not None and judged_until < since:
        since = max(judged_until, now - MAX_CATCH_UP)
    return Window(since=since, until=None)


def _save_watermark(plan: WatchPlan, until: datetime) -> None:
    _store_call(plan, lambda store: store.set_watermark(plan.name, until))


def _open_incidents(plan: WatchPlan) -> dict[Severity, int]:
    try:
        return _store_call(plan, lambda store: store.open_incidents(plan.request.checks), scoped=True)
    except DatabaseError:
        return {}


def _store_call(plan: WatchPlan, work: Callable[[Any], Any], *, scoped: bool = False) -> Any:
    """`work` on the alert state; `scoped`: only the watched database's alerts."""
    from anomaly_cli.db import parse_url
    from anomaly_cli.state import AlertStore, scope_of

    assert plan.request.alerts is not None
    scope = scope_of(parse_url(plan.request.database)) if scoped else None
    with AlertStore(plan.request.alerts.state_url, connect_timeout=plan.request.connect_timeout,
                    scope=scope) as store:
        return work(store)


def _empty(plan: WatchPlan, window: Window) -> ScanReport:
    """A cycle whose notification failed: what it found is told again by the next one."""
    from anomaly_cli import __version__
    from anomaly_cli.model import RunInfo

    run = RunInfo(tool="anomaly", version=__version__, generated_at=datetime.now(timezone.utc), window=window,
                  database="", checks=())
    return ScanReport(run=run, results=(), exit_code=3)


def _wait(seconds: float, should_stop: Callable[[], bool], sleep: Callable[[float], None]) -> None:
    """Sleep in short slices so that a stop request (SIGTERM) is seen within a fifth of a second."""
    deadline = time.monotonic() + max(0.0, seconds)
    while not should_stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sleep(min(0.2, left))
