"""`anomaly watch CHECK...`: the checks every --every on a moving --window, new and resolved
incidents notified; a live view on a terminal, one log line per cycle otherwise."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from anomaly_cli.cli.apps import app, say
from anomaly_cli.errors import UsageError

PANEL = "Notifications"


@app.command()
def watch(
    checks: Annotated[list[str], typer.Argument(metavar="CHECK", help="Checks to run, or 'all'.")],
    db: Annotated[Optional[str], typer.Option("--db", metavar="URL", help="Database URL; env ANOMALY_DB_URL.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Config file.")] = None,
    every: Annotated[str, typer.Option("--every", metavar="DURATION", help="Time between cycles: 30s, 1m.")] = "60s",
    window: Annotated[str, typer.Option("--window", metavar="DURATION",
                                        help="Each cycle judges the last DURATION of data: 2h.")] = "2h",
    cycles: Annotated[Optional[int], typer.Option("--cycles", min=1, metavar="N",
                                                  help="Stop after N cycles [default: until stopped].")] = None,
    state: Annotated[Optional[str], typer.Option("--state", metavar="URL",
                                                 help="Alert state store; env ANOMALY_STATE.")] = None,
    cooldown: Annotated[Optional[str], typer.Option("--cooldown", metavar="DURATION",
                                                    help="How long a notified incident stays quiet [4h].")] = None,
    notify: Annotated[Optional[list[str]], typer.Option("--notify", metavar="URL", rich_help_panel=PANEL,
                                                        help="Apprise URL or alertmanager://host:9093; repeatable.")
                      ] = None,
    notify_resolved: Annotated[bool, typer.Option("--notify-resolved", rich_help_panel=PANEL,
                                                  help="Also announce resolved incidents.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Watch the database: run the checks every --every on the last --window of data, notify new
    incidents (and resolved ones), survive database outages. SIGTERM stops it between cycles.

    On a terminal it shows a live view (open incidents by severity, last and next run, database
    health); otherwise it logs one line per cycle on stderr.
    """
    from anomaly_cli.checks import registry
    from anomaly_cli.config import load_settings
    from anomaly_cli.model import Window
    from anomaly_cli.notify import sink_from_settings
    from anomaly_cli.params import parse_duration
    from anomaly_cli.scan import AlertOptions, build_request
    from anomaly_cli.state import default_state_url
    from anomaly_cli.summarize import from_settings
    from anomaly_cli.watch import WatchPlan
    from anomaly_cli.watch import watch as run_watch

    known = registry()
    names = list(known) if checks == ["all"] else checks
    for name in names:
        if name not in known:
            raise UsageError(f"unknown check {name!r}", hint="one of " + ", ".join(known) + ", or all")
    spans = {}
    for option, text in (("--every", every), ("--window", window)):
        try:
            spans[option] = parse_duration(text)
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None
        if spans[option].total_seconds() < 1:
            raise UsageError(f"{option} must be at least 1s")
    settings = load_settings(flags={"db.url": db, "state": state, "cooldown": cooldown, "notify.urls": notify or None,
                                    "notify.resolved": notify_resolved or None}, config_path=config)
    alerts = AlertOptions(state_url=settings["state"] or default_state_url(settings.environ),
                          cooldown=settings["cooldown"])
    request = build_request(settings, names, Window(), alerts=alerts, skip_unavailable=checks == ["all"])
    from dataclasses import replace

    request = replace(request, text=from_settings(settings))  # notifications get the text writer's lines
    sink_from_settings(settings)  # refuse bad destinations now, not at the first cycle

    def sinks() -> tuple[Any, ...]:
        sink = sink_from_settings(settings)
        return (sink,) if sink is not None else ()

    plan = WatchPlan(request=request, every=spans["--every"], window=spans["--window"], sinks=sinks, cycles=cycles)
    stop = _StopOnSignal()
    view = _LiveView(names) if sys.stderr.isatty() else None
    with stop:
        if view is None:
            say(f"watching {', '.join(names)} every {every} on the last {window}")
            run_watch(plan, _log_line, should_stop=stop.is_set)
        else:
            with view:
                run_watch(plan, view.update, should_stop=stop.is_set)
    if stop.signum is not None:
        say(f"stopped ({signal.Signals(stop.signum).name})")


class _StopOnSignal:
    """SIGTERM/SIGHUP during a watch: finish the cycle under way, then stop (exit 0)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def is_set(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signum = signum
        self._event.set()

    def __enter__(self) -> _StopOnSignal:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._saved[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (a test runner's worker)
                pass
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)


def cycle_text(event: Any) -> str:
    """One line per event: what a cycle found and told, an outage, a recovery."""
    from anomaly_cli.watch import Cycle, Outage

    if isinstance(event, Outage):
        return f"database unavailable since {event.since:%H:%M:%S}: {event.message}; retrying with backoff"
    if not isinstance(event, Cycle):
        return f"database back at {event.at:%H:%M:%S} (down since {event.down_since:%H:%M:%S})"
    report = event.report
    new = sum(o.findings for o in report.results)
    suppressed = sum(o.suppressed for o in report.results)
    since = event.window.since
    parts = [f"cycle {event.number} at {event.started:%H:%M:%S}",
             f"window from {since:%Y-%m-%d %H:%M:%S}" if since else "whole history",
             f"{new} new", f"{suppressed} suppressed", f"{len(report.resolved)} resolved"]
    not_judged = [o.check for o in report.results if o.reason]
    if not_judged:
        parts.append("not evaluated: " + ", ".join(not_judged))
    if event.failure:
        parts.append(f"notification failed: {event.failure}")
    elif event.sent:
        parts.append("notified " + ", ".join(event.sent))
    parts.append(f"next at {event.next_at:%H:%M:%S}")
    return "; ".join(parts)


def _log_line(event: Any) -> None:
    say(cycle_text(event))
    sys.stderr.flush()


class _LiveView:
    """A Rich live panel on the terminal: open incidents by severity, last run, next run, health."""

    def __init__(self, checks: list[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.checks = checks
        self.last: Any = None
        self.health = "ok"
        self.log: list[str] = []
        self.live = Live(self._render(), console=Console(stderr=True), refresh_per_second=1, transient=False)

    def __enter__(self) -> _LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def update(self, event: Any) -> None:
        from anomaly_cli.watch import Cycle, Outage, Recovery

        if isinstance(event, Cycle):
            self.last = event
        elif isinstance(event, Outage):
            self.health = f"DOWN since {event.since:%H:%M:%S}: {event.message}"
        elif isinstance(event, Recovery):
            self.health = f"ok (recovered at {event.at:%H:%M:%S})"
        self.log = (self.log + [cycle_text(event)])[-5:]
        self.live.update(self._render())

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        from anomaly_cli.model import Severity

        table = Table(title=f"anomaly watch: {', '.join(self.checks)}", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        counts = self.last.open_incidents if self.last else {}
        table.add_row("open incidents", ", ".join(f"{counts.get(s, 0)} {s}" for s in reversed(Severity)))
        table.add_row("last run", f"{self.last.started:%Y-%m-%d %H:%M:%S}" if self.last else "not yet")
        table.add_row("next run", f"{self.last.next_at:%H:%M:%S}" if self.last else "now")
        table.add_row("database", self.health)
        return Group(table, *self.log)


