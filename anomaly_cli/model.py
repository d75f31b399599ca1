"""The data every check returns and every renderer reads: Severity, Finding, CheckResult, Report."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
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
    # Personal data the message names beyond the personal fields (e.g. the customers of an
    # incident): replaced by placeholders before any text leaves for a model. Not serialised.
    personal: tuple[str, ...] = ()

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


class Status(enum.StrEnum):
    """What a check's run came to: judged and clean, judged with findings, or not judged at all."""

    OK = "ok"
    FINDINGS = "findings"
    NOT_EVALUATED = "not_evaluated"


@dataclass
class CheckStats:
    """What a check judged and why it could not judge the rest: one vocabulary for every check.

    The check writes it while its findings stream (the pipeline counts the findings themselves):
    `judged` units (items, buckets, customers, minutes), `skipped` units by reason (`no_date`,
    `bad_date`, `incomplete`, `short_history`, ...), `not_evaluated` when nothing could be judged
    (and why), and `notes` for facts particular to one check (`data_ends`, `baseline`, ...).
    """

    judged: int | None = None  # None: the check does not count what it judged (it filters in SQL)
    skipped: Counter[str] = field(default_factory=Counter)
    notes: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why nothing was judged; None when the check could judge

    def count(self, units: int = 1) -> None:
        """`units` more judged."""
        self.judged = (self.judged or 0) + units

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] += count

    def not_evaluated(self, reason: str) -> None:
        self.reason = reason

    def note(self, name: str, value: Any) -> None:
        self.notes[name] = value


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result once its findings have streamed past: counts, stats and status."""

    check: str
    params: Mapping[str, Any]
    stats: CheckStats
    findings: int = 0  # after --new-only, before --limit
    by_severity: Mapping[Severity, int] = field(default_factory=dict)
    totals: Mapping[str, Any] = field(default_factory=dict)
    shown: int | None = None  # set when --limit held some back
    suppressed: int = 0  # held back by --new-only
    brief: str | None = None  # an executive summary for people (--brief)
    seconds: float = 0.0  # wall time of the check, findings streamed through every sink included
    # Aggregates the check measured, by series, for charts (only when the request asked).
    charts: Mapping[str, list[dict[str, Any]]] | None = field(default=None, compare=False)

    @property
    def status(self) -> Status:
        if self.findings:
            return Status.FINDINGS
        if self.stats.reason is not None:
            return Status.NOT_EVALUATED
        return Status.OK

    @property
    def reason(self) -> str | None:
        if self.status is not Status.NOT_EVALUATED:
            return None
        return self.stats.reason

    @property
    def worst(self) -> Severity | None:
        present = [s for s, n in self.by_severity.items() if n]
        return max(present) if present else None

    def summary(self) -> dict[str, Any]:
        """The summary object of the JSON contract (and of every other format)."""
        out: dict[str, Any] = {"status": str(self.status)}
        if self.reason is not None:
            out["reason"] = self.reason
        out["findings"] = self.findings
        out["by_severity"] = {str(s): self.by_severity[s] for s in sorted(self.by_severity, reverse=True)
                              if self.by_severity[s]}
        if self.shown is not None:
            out["shown"] = self.shown
        if self.suppressed:
            out["suppressed"] = self.suppressed
        out.update(self.totals)
        if self.stats.judged is not None:
            out["judged"] = self.stats.judged
        out["skipped"] = dict(self.stats.skipped)
        out.update(self.stats.notes)
        return out


@dataclass(frozen=True)
class CheckInfo:
    """What a sink needs to know of a check before its findings arrive."""

    name: str
    params: Mapping[str, Any]
    fields: tuple[str, ...]
    columns: tuple[Any, ...]  # checks.Column: what the Rich table shows
    totals: tuple[str, ...]


@dataclass(frozen=True)
class RunInfo:
    """What a sink needs to know of the run before any check starts."""

    tool: str
    version: str
    generated_at: datetime
    window: Window
    database: str  # the URL with every credential masked
    checks: tuple[CheckInfo, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # check -> why it does not run


@dataclass(frozen=True)
class ScanReport:
    """What a scan came to: one outcome per check run, the checks skipped, the exit code."""

    run: RunInfo
    results: tuple[CheckOutcome, ...]
    exit_code: int
    notes: tuple[str, ...] = ()  # diagnostics for stderr (a model that failed, ...)
    findings: tuple[Finding, ...] | None = None  # kept only when the request asked for them
    # Alerted incidents this run no longer found (--new-only: the alert store marked them resolved).
    resolved: tuple[Finding, ...] = ()

    @property
    def skipped(self) -> Mapping[str, str]:
        return self.run.skipped

    @property
    def worst(self) -> Severity | None:
        worst = [r.worst for r in self.results if r.worst is not None]
        return max(worst) if worst else None

    @property
    def not_evaluated(self) -> list[CheckOutcome]:
        return [r for r in self.results if r.status is Status.NOT_EVALUATED]
