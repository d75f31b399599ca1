"""`anomaly alerts list|show|ack|unack|label|silence|silences|unsilence|prune`: the alert state
behind --new-only."""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, Optional

import typer

from anomaly_cli.cli.apps import alerts_app, say
from anomaly_cli.errors import UsageError

STATE_OPTION = typer.Option("--state", metavar="URL", help="Alert state store; env ANOMALY_STATE.")
DB_OPTION = typer.Option("--db", metavar="URL",
                         help="Only the alerts of this audited database (alerts are kept per database).")


class ListFormat(str, enum.Enum):
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"


@contextmanager
def _open_state(state: str | None, db: str | None = None) -> Iterator[Any]:
    from anomaly_cli.config import load_settings
    from anomaly_cli.db import parse_url
    from anomaly_cli.state import AlertStore, default_state_url, scope_of

    settings = load_settings(flags={"state": state})
    scope = scope_of(parse_url(db)) if db else None
    with AlertStore(settings["state"] or default_state_url(settings.environ), scope=scope) as store:
        yield store


@alerts_app.command("list")
def alerts_list(
    check: Annotated[Optional[str], typer.Option("--check", help="Only this check's alerts.")] = None,
    label: Annotated[Optional[str], typer.Option("--label", metavar="fraud|false_positive|unlabelled",
                                                 help="Only alerts with this label.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most N alerts.")] = None,
    fmt: Annotated[Optional[ListFormat], typer.Option(
        "--format", "-f", case_sensitive=False, show_default="table",
        help="table, json (one document with the alerts and label counts) or jsonl (one alert per line).")] = None,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format jsonl.")] = False,
    state: Annotated[Optional[str], STATE_OPTION] = None,
    db: Annotated[Optional[str], DB_OPTION] = None,
) -> None:
    """List remembered alerts, most recently seen first, with label counts per check."""
    from anomaly_cli.render.encode import dumps

    if as_json and fmt not in (None, ListFormat.JSONL):
        raise UsageError("--json is --format jsonl; give one of them")
    fmt = ListFormat.JSONL if as_json else (fmt or ListFormat.TABLE)
    with _open_state(state, db) as store:
        records = store.list(check=check, label=label, limit=limit)
        counts = store.label_counts(check)
    if fmt is ListFormat.JSONL:
        for record in records:
            print(dumps(record.as_dict()))
        return
    if fmt is ListFormat.JSON:
        print(dumps({"alerts": [r.as_dict() for r in records], "labels": counts}))
        return
    from rich.console import Console
    from rich.table import Table

    scoped = len({r.scope for r in records}) > 1  # several databases: say which row is whose
    table = Table("Key", *(("Database",) if scoped else ()), "Check", "Severity", "Last seen", "Seen", "Notified",
                  "Acked", "Label")
    for r in records:
        table.add_row(r.key, *((r.scope[:8] or "(old)",) if scoped else ()), r.check, str(r.severity), f"{r.last_seen:%Y-%m-%d %H:%M}", str(r.times_seen),
                      f"{r.last_notified:%Y-%m-%d %H:%M}" if r.last_notified else "",
                      "yes" if r.acked_at else "", r.label or "")
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    console.print(table)
    for name, tally in counts.items():
        judged = tally.get("fraud", 0) + tally.get("false_positive", 0)
        precision = f"; precision {tally.get('fraud', 0) / judged:.2f}" if judged else ""
        console.print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in tally.items()) + precision)


@alerts_app.command("show")
def alerts_show(key: Annotated[str, typer.Argument(help="The finding's key.")],
                state: Annotated[Optional[str], STATE_OPTION] = None,
                db: Annotated[Optional[str], DB_OPTION] = None) -> None:
    """Everything remembered about one alert, as JSON."""
    from anomaly_cli.render.encode import dumps
    from anomaly_cli.state import UnknownAlertError

    with _open_state(state, db) as store:
        record = store.show(key)
    if record is None:
        raise UnknownAlertError(f"no alert with key {key!r}", hint="see 'anomaly alerts list'")
    print(dumps(record.as_dict()))


@alerts_app.command("ack")
def alerts_ack(key: Annotated[str, typer.Argument(help="The finding's key.")],
               state: Annotated[Optional[str], STATE_OPTION] = None,
               db: Annotated[Optional[str], DB_OPTION] = None) -> None:
    """Acknowledge an alert: --new-only stays quiet about it until its severity rises."""
    with _open_state(state, db) as store:
        record = store.ack(key, datetime.now(timezone.utc))
    say(f"acknowledged {record.key} ({record.severity})")


@alerts_app.command("label")
def alerts_label(
    key: Annotated[str, typer.Argument(help="The finding's key.")],
    fraud: Annotated[bool, typer.Option("--fraud", help="A real problem.")] = False,
    false_positive: Annotated[bool, typer.Option("--false-positive", help="Not a problem.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the label.")] = False,
    state: Annotated[Optional[str], STATE_OPTION] = None,
    db: Annotated[Optional[str], DB_OPTION] = None,
) -> None:
    """Label an alert --fraud or --false-positive; the labels give each check's precision in `alerts list`."""
    if fraud + false_positive + clear != 1:
        raise UsageError("give exactly one of --fraud, --false-positive or --clear")
    label = "fraud" if fraud else "false_positive" if false_positive else None
    with _open_state(state, db) as store:
        record = store.label(key, label, datetime.now(timezone.utc))
    say(f"labelled {record.key} {record.label or '(none)'}")


@alerts_app.command("unack")
def alerts_unack(key: Annotated[str, typer.Argument(help="The finding's key.")],
                 state: Annotated[Optional[str], STATE_OPTION] = None,
                 db: Annotated[Optional[str], DB_OPTION] = None) -> None:
    """Undo an acknowledgement: --new-only tells of the alert again once its cooldown is over."""
    with _open_state(state, db) as store:
        record = store.unack(key)
    say(f"unacknowledged {record.key}")


@alerts_app.command("silence")
def alerts_silence(
    match: Annotated[str, typer.Argument(help="A check name, a finding's key, or a key prefix (rates:failed).")],
    for_: Annotated[str, typer.Option("--for", metavar="DURATION", help="How long: 30m, 2h, 1d.")] = "2h",
    reason: Annotated[Optional[str], typer.Option("--reason", metavar="TEXT", help="Why (shown in the list).")] = None,
    state: Annotated[Optional[str], STATE_OPTION] = None,
) -> None:
    """Keep matching findings quiet until the silence expires (still recorded, counted as suppressed)."""
    from anomaly_cli.params import parse_duration

    try:
        length = parse_duration(for_)
    except ValueError as exc:
        raise UsageError(f"--for: {exc}") from None
    now = datetime.now(timezone.utc)
    with _open_state(state) as store:
        silence_id = store.silence(match, until=now + length, reason=reason, now=now)
    say(f"silence {silence_id}: {match} until {(now + length):%Y-%m-%d %H:%M} UTC")


@alerts_app.command("silences")
def alerts_silences(state: Annotated[Optional[str], STATE_OPTION] = None) -> None:
    """The silences in force: id, match, expiry (UTC), reason."""
    from anomaly_cli.render.encode import printable

    with _open_state(state) as store:
        rows = store.silences(now=datetime.now(timezone.utc))
    for row in rows:
        print(f"{row.id}\t{printable(row.match)}\t{row.expires_at:%Y-%m-%d %H:%M}\t{printable(row.reason or '')}")


@alerts_app.command("unsilence")
def alerts_unsilence(silence_id: Annotated[int, typer.Argument(metavar="ID", help="See 'alerts silences'.")],
                     state: Annotated[Optional[str], STATE_OPTION] = None) -> None:
    """End a silence now."""
    with _open_state(state) as store:
        store.unsilence(silence_id)
    say(f"silence {silence_id} ended")


@alerts_app.command("prune")
def alerts_prune(
    older_than: Annotated[str, typer.Option("--older-than", metavar="DURATION",
                                            help="Forget alerts last seen longer ago: 90d.")] = "90d",
    state: Annotated[Optional[str], STATE_OPTION] = None,
    db: Annotated[Optional[str], DB_OPTION] = None,
) -> None:
    """Forget alerts not seen for a while (only this database's with --db), and silences expired by then."""
    from anomaly_cli.params import parse_duration

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    with _open_state(state, db) as store:
        alerts, silences = store.prune(older_than=age, now=datetime.now(timezone.utc))
    say(f"pruned {alerts} alert{'s' if alerts != 1 else ''} and {silences} expired silence{'s' if silences != 1 else ''}")
