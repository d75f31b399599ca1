"""The notification sink: collects each destination's digest while findings stream, delivers
in end(), retrying with backoff; a destination that keeps failing raises NotifyError, so the
scan releases its alert claims and the next run tells again."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from anomaly_cli.errors import NotifyError
from anomaly_cli.model import CheckInfo, CheckOutcome, Finding, RunInfo, ScanReport, Severity
from anomaly_cli.notify.channels import Channel, DeliveryFailed
from anomaly_cli.notify.message import Digest, Redact


@dataclass(frozen=True)
class Route:
    """A destination and the severities it receives."""

    channel: Channel
    severities: frozenset[Severity]


@dataclass(frozen=True)
class Delivery:
    limit: int = 20  # lines per message
    redact: Redact = Redact.NONE
    resolved: bool = False  # also announce incidents that were resolved
    retries: int = 3
    backoff: float = 2.0  # seconds before the first retry, doubled each time
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


class NotifySink:
    """A Sink (see anomaly_cli.render) for ScanRequest.extra_sinks."""

    for_people = True  # gets the text writer's lines (a model's, when configured)

    def __init__(self, routes: Sequence[Route], delivery: Delivery) -> None:
        self.routes = list(routes)
        self.delivery = delivery
        self.digests = [Digest(route.channel.max_lines or delivery.limit, delivery.redact) for route in self.routes]
        self.source = ""
        self.sent: list[str] = []  # the destinations told, in order (for the caller's summary)

    def begin(self, run: RunInfo) -> None:
        self.source = run.database

    def check_begin(self, check: CheckInfo) -> None:
        pass

    def finding(self, finding: Finding) -> None:
        for route, digest in zip(self.routes, self.digests, strict=True):
            if finding.severity in route.severities:
                digest.add(finding)

    def check_end(self, outcome: CheckOutcome) -> None:
        pass

    def end(self, report: ScanReport) -> None:
        if self.delivery.resolved:
            for finding in report.resolved:
                for route, digest in zip(self.routes, self.digests, strict=True):
                    if finding.severity in route.severities:
                        digest.add_resolved(finding)
        failures = []
        for route, digest in zip(self.routes, self.digests, strict=True):
            if not digest:
                continue  # nothing for this destination: no empty message
            problem = self._deliver(route.channel, digest)
            if problem is None:
                self.sent.append(route.channel.name)
            else:
                failures.append((route.channel.name, problem))
        if failures:
            name, problem = failures[0]
            others = f" (and {len(failures) - 1} other destination{'s' if len(failures) > 2 else ''})" \
                if len(failures) > 1 else ""
            raise NotifyError(f"notification to {name} failed after {self.delivery.retries + 1} attempts: "
                              f"{problem}{others}", hint="the findings stay unreported for the next run")

    def _deliver(self, channel: Channel, digest: Digest) -> str | None:
        """None once delivered, else the last attempt's reason."""
        message = digest.message(self.source)
        problem = None
        for attempt in range(self.delivery.retries + 1):
            if attempt:
                self.delivery.sleep(self.delivery.backoff * 2 ** (attempt - 1))
            try:
                channel.send(message)
                return None
            except DeliveryFailed as exc:
                problem = str(exc)
        return problem
