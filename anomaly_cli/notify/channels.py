"""Where a grouped message goes: any Apprise URL, or an Alertmanager's /api/v2/alerts.

Each channel sends one message in one attempt and raises DeliveryFailed with a reason fit for
a person (no secrets); the sink does the retrying.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from anomaly_cli import __version__
from anomaly_cli.errors import UsageError
from anomaly_cli.notify.message import Message

ALERTMANAGER_SCHEMES = {"alertmanager": "http", "alertmanagers": "https",
                        "alertmanager+http": "http", "alertmanager+https": "https"}
ALERTMANAGER_PATH = "/api/v2/alerts"
# An Alertmanager needs every alert on its own, not a digest: a higher bound per run.
ALERTMANAGER_MAX_ALERTS = 1000
HOLD_MARGIN = timedelta(minutes=15)


class DeliveryFailed(Exception):
    """One attempt failed; the message says why without naming any secret."""


class Channel(Protocol):
    name: str  # the destination for messages: its masked URL, or its name in the config
    max_lines: int | None  # None: the digest's limit (notify.limit)

    def send(self, message: Message) -> None: ...


def scrub(text: str) -> str:
    """Drop URLs from a library's error text: they may carry tokens or passwords."""
    return re.sub(r"[a-zA-Z][\w+.-]*://\S+", "<url>", " ".join(str(text).split()))


def make_channel(url: str, *, timeout: float, label: str | None = None, hold: timedelta = timedelta(hours=4)
                 ) -> Channel:
    """The channel for a destination URL; refused (a usage error) when it cannot work.

    `hold`: how long an Alertmanager keeps a firing alert without hearing of it again (the
    cooldown, after which --new-only tells it again if it is still found).
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ALERTMANAGER_SCHEMES or (scheme in ("http", "https") and
                                          urlsplit(url).path.rstrip("/").endswith(ALERTMANAGER_PATH)):
        return AlertmanagerChannel(url, timeout=timeout, label=label, hold=hold)
    return AppriseChannel(url, timeout=timeout, label=label)


class AppriseChannel:
    """Slack, Teams, Discord, e-mail, PagerDuty, Opsgenie, JSON webhooks, ...: any Apprise URL."""

    max_lines = None

    def __init__(self, url: str, *, timeout: float, label: str | None = None) -> None:
        import logging

        import apprise

        # Apprise logs failures (with URLs) through `logging`; Python's last-resort handler
        # would print them on stderr. We report each failure once, ourselves, without secrets.
        quiet = logging.getLogger("apprise")
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise UsageError(f"cannot use the notification URL {mask_notify_url(url)!r}",
                             hint="see the Apprise URL formats, or alertmanager://host:9093")
        if hasattr(plugin, "socket_read_timeout"):
            plugin.socket_read_timeout = timeout
            plugin.socket_connect_timeout = timeout
        self._apprise = apprise.Apprise()
        self._apprise.add(plugin)
        self.name = label or mask_notify_url(url)

    def send(self, message: Message) -> None:
        import apprise

        # body_format TEXT: our lines are plain text; Apprise keeps their line breaks in every format.
        result = self._apprise.notify(body=message.body, title=message.title, body_format=apprise.NotifyFormat.TEXT,
                                      notify_type=apprise.NotifyType.FAILURE if message.findings
                                      else apprise.NotifyType.SUCCESS)
        if not result:
            problems = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
            raise DeliveryFailed(scrub(problems[-1]) if problems else "the service refused the message")


class AlertmanagerChannel:
    """POST /api/v2/alerts: one alert per finding (labels check, severity, key; the line as summary),
    endsAt for resolved incidents, so an Alertmanager's own grouping, silences and routes apply."""

    max_lines = ALERTMANAGER_MAX_ALERTS

    def __init__(self, url: str, *, timeout: float, label: str | None = None,
                 hold: timedelta = timedelta(hours=4)) -> None:
        # A firing alert's endsAt: an Alertmanager resolves an alert it has not heard of for
        # resolve_timeout (5 min by default); --new-only posts an incident once per cooldown,
        # so the alert is held for the cooldown plus the time a next run may take to come.
        self.hold = hold + HOLD_MARGIN
        scheme, rest = url.split("://", 1)
        transport = ALERTMANAGER_SCHEMES.get(scheme.lower(), scheme.lower())
        parts = urlsplit(f"{transport}://{rest}")
        if not parts.hostname:
            raise UsageError(f"no host in the Alertmanager URL {mask_notify_url(url)!r}",
                             hint="e.g. alertmanager://localhost:9093")
        path = parts.path.rstrip("/")
        if not path.endswith(ALERTMANAGER_PATH):
            path += ALERTMANAGER_PATH
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.endpoint = urlunsplit((transport, netloc, path, parts.query, ""))
        self._auth = None
        if parts.username is not None:
            import base64

            token = f"{parts.username}:{parts.password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(token).decode()
        self.timeout = timeout
        self.name = label or mask_notify_url(url)

    def payload(self, message: Message, now: datetime) -> list[dict[str, Any]]:
        from anomaly_cli.notify.message import tagged

        stamp = _rfc3339(now)
        alerts = []
        for finding, resolved in [(f, False) for f in message.findings] + [(f, True) for f in message.resolved]:
            alert: dict[str, Any] = {
                "labels": {"alertname": "anomaly", "check": finding.check, "severity": str(finding.severity),
                           "key": finding.key},
                "annotations": {"summary": tagged(finding)},
                "startsAt": _rfc3339(finding.fields.get("first_seen") or now) if resolved else stamp,
            }
            alert["endsAt"] = _rfc3339(finding.fields.get("resolved_at") or now) if resolved \
                else _rfc3339(now + self.hold)
            alerts.append(alert)
        return alerts

    def send(self, message: Message) -> None:
        body = json.dumps(self.payload(message, datetime.now(timezone.utc))).encode()
        request = urllib.request.Request(self.endpoint, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"anomaly/{__version__}",
            **({"Authorization": self._auth} if self._auth else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"HTTP {exc.code} {scrub(exc.reason)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryFailed(scrub(str(reason))) from None


def _rfc3339(moment: datetime) -> str:
    """Alertmanager wants RFC 3339; the store keeps naive UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def mask_notify_url(url: str) -> str:
    """scheme://host/… : a notification URL fit for messages. Tokens hide in the user, password,
    path and query of Slack, Teams, PagerDuty, ... URLs, so only the scheme and host remain
    (and not even the host of schemes whose "host" is itself a token)."""
    if "://" not in url:
        return "<notification URL>"
    scheme, rest = url.split("://", 1)
    host = rest.rsplit("@", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    if scheme.lower() in ALERTMANAGER_SCHEMES or scheme.lower() in ("json", "jsons", "form", "forms", "xml", "xmls",
                                                                    "http", "https", "mailto", "mailtos"):
        return f"{scheme}://{host}/…" if rest.strip("/") != host else f"{scheme}://{host}"
    return f"{scheme}://…"
