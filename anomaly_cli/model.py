"""The data every check returns and every renderer reads: Severity, Finding, CheckResult, Report."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Severity(enum.IntEnum):
    """One ordered scale for every check: low < medium < high < critical."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (use low, medium, high or critical)") from None


@dataclass(frozen=True, slots=True)
class Finding:
    """One anomaly: the contract fields plus the check's own fields (in the check's order)."""

    check: str
    key: str
    severity: Severity
    message: str
    fields: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "key": self.key,
            "severity": str(self.severity),
            "message": self.message,
            **self.fields,
        }


@dataclass(frozen=True, slots=True)
class Window:
    """The audited time range: since inclusive, until exclusive; None means unbounded."""

    since: datetime | None = None
    until: datetime | None = None


@dataclass
class CheckResult:
    """A check's findings (streamed) and the summary that is complete once they are consumed.

    `findings` is an iterator so that a check over millions of rows never holds them all:
    renderers consume it and the tallies below fill in as they do.
    """

    check: str
    params: dict[str, Any]
    findings: Iterator[Finding]
    fields: tuple[str, ...] = ()  # the check's finding fields, in output order
    columns: tuple[Any, ...] = ()  # checks.Column: what the Rich table shows
    # Check-specific counters (rows skipped and why, buckets not judged, ...); the check
    # fills them while its findings are consumed.
    notes: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    total: int = 0
    by_severity: Counter[Severity] = field(default_factory=Counter)
    totals: dict[str, Any] = field(default_factory=dict)
    # An executive summary for people, available once the findings are consumed (--brief).
    brief: Callable[[], str] | None = None

    def __post_init__(self) -> None:
        self._source = self.findings
        self.findings = self._tally()

    def apply(self, transform: Callable[[Iterator[Finding]], Iterator[Finding]]) -> None:
        """Filter or rewrite the findings before they are counted (e.g. --new-only)."""
        self._source = transform(self._source)

    def _tally(self) -> Iterator[Finding]:
        # _source is read when iteration starts, so transforms applied before then count.
        for finding in self._source:
            self.total += 1
            self.by_severity[finding.severity] += 1
            for name in self.totals:
                value = finding.fields.get(name)
                if value is not None:
                    self.totals[name] += value
            # Past --limit the findings are still counted (the summary and the exit code
            # speak of all of them), only not emitted.
            if self.limit is None or self.total <= self.limit:
                yield finding

    @property
    def worst(self) -> Severity | None:
        return max(self.by_severity) if self.by_severity else None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "findings": self.total,
            "by_severity": {str(s): self.by_severity[s] for s in sorted(self.by_severity, reverse=True)},
        }
        if self.limit is not None and self.total > self.limit:
            out["shown"] = self.limit
        out.update(self.totals)
        out.update(self.notes)
        return out


@dataclass
class Report:
    """One run of one or more checks over one window."""

    window: Window
    generated_at: datetime
    results: list[CheckResult]
    skipped: dict[str, str] = field(default_factory=dict)  # check -> why it did not run

    @property
    def worst(self) -> Severity | None:
        worst = [r.worst for r in self.results if r.worst is not None]
        return max(worst) if worst else None
