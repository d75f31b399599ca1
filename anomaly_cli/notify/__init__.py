"""Notifications: one grouped message per destination per run, routed by severity.

    [notify]
    critical = ["pager", "mail", "chat"]    # names from [notify.destinations], or URLs
    high = ["chat"]
    limit = 20                               # lines per message, then "and N more"
    redact = "none"                          # or "personal"
    [notify.destinations]
    chat = "slack://TokenA/TokenB/TokenC/#alerts"
    pager = "alertmanager://alertmanager:9093"

`--notify URL` (notify.urls) adds destinations that get every severity. Delivery happens in
the sink's end(), after every check ran; see anomaly_cli.notify.sink.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anomaly_cli.errors import ConfigError, UsageError
from anomaly_cli.model import Severity
from anomaly_cli.params import Param, parse_text

if TYPE_CHECKING:
    from anomaly_cli.config import Settings
    from anomaly_cli.notify.sink import NotifySink
    from anomaly_cli.scan import ScanRequest

DESTINATIONS = "notify.destinations."


def parse_list(raw: Any) -> tuple[str, ...]:
    """A TOML list of strings, or (from a variable or a flag) names/URLs separated by spaces."""
    if isinstance(raw, str):
        items: list[Any] = raw.split()
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise ValueError("must be a list of destination names or URLs")
    return tuple(parse_text(item) for item in items)


def settings_params() -> list[tuple[str, Param]]:
    """The [notify] keys the configuration knows (notify.destinations.NAME is open-ended)."""
    from anomaly_cli.notify.message import Redact

    params = [
        ("notify.urls", Param("urls", (), "notification URLs that get every severity", parse_fn=parse_list)),
        ("notify.resolved", Param("resolved", False, "also announce resolved incidents", kind=bool)),
        ("notify.limit", Param("limit", 20, "finding lines per message", kind=int, minimum=1, maximum=10_000)),
        ("notify.redact", Param("redact", Redact.NONE, "personal data in notifications", kind=Redact)),
        ("notify.retries", Param("retries", 3, "retries of a failed delivery", kind=int, minimum=0, maximum=20)),
        ("notify.backoff", Param("backoff", 2.0, "seconds before the first retry", kind=float, minimum=0,
                                 maximum=600)),
        ("notify.timeout", Param("timeout", 10.0, "seconds per delivery attempt", kind=float, exclusive_minimum=0,
                                 maximum=600)),
    ]
    params += [(f"notify.{s}", Param(str(s), None, f"destinations of {s} findings", parse_fn=parse_list))
               for s in Severity]
    return params


def destination_param(key: str) -> Param:
    return Param(key.removeprefix(DESTINATIONS), None, "a named notification URL", parse_fn=parse_text)


def routes(values: Mapping[str, Any]) -> dict[str, set[Severity]]:
    """Destination URL -> the severities it receives, from resolved settings.

    Without any notify.<severity> list, every named destination gets every severity.
    """
    named = {k.removeprefix(DESTINATIONS): v for k, v in values.items() if k.startswith(DESTINATIONS) and v}
    out: dict[str, set[Severity]] = {}
    routed = False
    for severity in Severity:
        for entry in values.get(f"notify.{severity}") or ():
            routed = True
            if entry in named:
                url = named[entry]
            elif "://" in entry:
                url = entry
            else:
                raise ConfigError(f"notify.{severity} names {entry!r}, which is no destination",
                                  hint="add it under [notify.destinations], or give a URL")
            out.setdefault(url, set()).add(severity)
    if not routed:
        for url in named.values():
            out.setdefault(url, set()).update(Severity)
    for url in values.get("notify.urls") or ():
        out.setdefault(url, set()).update(Severity)
    return out


def sink_from_settings(settings: Settings, **delivery: Any) -> NotifySink | None:
    """The notification sink the settings ask for, or None when there is no destination."""
    values = settings.values
    wanted = routes(values)
    if not wanted:
        return None
    # Here, not above: a scan without destinations does not import HTTP clients.
    from anomaly_cli.notify.channels import make_channel
    from anomaly_cli.notify.sink import Delivery, NotifySink, Route

    names = {v: k.removeprefix(DESTINATIONS) for k, v in values.items() if k.startswith(DESTINATIONS) and v}
    timeout = values["notify.timeout"]
    built = [Route(make_channel(url, timeout=timeout, label=names.get(url), hold=values["cooldown"]), frozenset(sev))
             for url, sev in wanted.items()]
    options = dict(limit=values["notify.limit"], redact=values["notify.redact"], resolved=values["notify.resolved"],
                   retries=values["notify.retries"], backoff=values["notify.backoff"]) | delivery
    return NotifySink(built, Delivery(**options))


def with_notifications(settings: Settings, request: ScanRequest) -> tuple[ScanRequest, NotifySink | None]:
    """The scan request with the notification sink the settings ask for, if any; people read
    notifications, so the sink gets the text writer's lines (a model's, when configured)."""
    if settings["notify.resolved"] and request.alerts is None and settings.origin("notify.resolved") == \
            "the command line":
        raise UsageError("--notify-resolved needs --new-only", hint="resolved incidents are known from the alert state")
    sink = sink_from_settings(settings)
    if sink is None:
        return request, None
    from dataclasses import replace

    from anomaly_cli.summarize import from_settings

    return replace(request, extra_sinks=(*request.extra_sinks, sink), text=request.text or from_settings(settings)), sink
