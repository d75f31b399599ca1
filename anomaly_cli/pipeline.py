"""The stages a check's findings stream through: repeats held back, tallied, the worst kept,
lines written for people. Each stage is a small function or object over an iterator."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from anomaly_cli.model import CheckOutcome, CheckStats, Finding, Severity


class Counted:
    """Pass findings through, counting them (what went into a filter vs what came out)."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self._source = findings
        self.count = 0

    def __iter__(self) -> Iterator[Finding]:
        for finding in self._source:
            self.count += 1
            yield finding


def unique_keys(findings: Iterable[Finding], stats: CheckStats) -> Iterator[Finding]:
    """One finding per key in a report: a table without a primary key can hold a row twice, and
    the same anomaly must not be counted, alerted or claimed twice (repeats counted as skipped)."""
    seen: set[str] = set()
    for finding in findings:
        if finding.key in seen:
            stats.skip("duplicate_key")
            continue
        seen.add(finding.key)
        yield finding


def suppress_repeats(findings: Iterable[Finding], claim: Callable[[Iterable[Finding]], Iterator[Finding]]
                     ) -> tuple[Iterator[Finding], Callable[[], int]]:
    """--new-only: only the findings `claim` lets through; also returns how many it held back."""
    before = Counted(findings)
    after = Counted(claim(before))
    return iter(after), lambda: before.count - after.count


class Tally:
    """Counts findings by severity and sums the check's money totals as they pass."""

    def __init__(self, totals: Sequence[str]) -> None:
        self.findings = 0
        self.by_severity: Counter[Severity] = Counter()
        self.totals: dict[str, Any] = {name: Decimal("0.00") for name in totals}

    def watch(self, findings: Iterable[Finding]) -> Iterator[Finding]:
        for finding in findings:
            self.findings += 1
            self.by_severity[finding.severity] += 1
            for name in self.totals:
                value = finding.fields.get(name)
                if value is not None:
                    self.totals[name] += value
            yield finding

    def outcome(self, check: str, params: dict[str, Any], stats: CheckStats, *, limit: int | None,
                suppressed: int, brief: str | None) -> CheckOutcome:
        shown = limit if limit is not None and self.findings > limit else None
        return CheckOutcome(check=check, params=params, stats=stats, findings=self.findings,
                            by_severity=dict(self.by_severity), totals=dict(self.totals), shown=shown,
                            suppressed=suppressed, brief=brief)


def worst_first(findings: Iterable[Finding], limit: int | None) -> Iterator[Finding]:
    """--limit: the `limit` most severe findings (earliest first among equals), most severe first.

    Without a limit the stream passes untouched, in the check's order. With one, at most
    `limit` findings are held, so memory does not grow with the number of findings.
    """
    if limit is None:
        yield from findings
        return
    keep = Worst(limit)
    for _ in keep.watch(findings):
        pass
    yield from keep.findings


class Worst:
    """Keeps the `size` most severe findings seen, earliest first among equals (a heap whose
    smallest entry, the least severe and latest finding, is the first to be dropped)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._heap: list[tuple[int, int, Finding]] = []
        self._order = itertools.count()

    def watch(self, findings: Iterable[Finding]) -> Iterator[Finding]:
        for finding in findings:
            entry = (int(finding.severity), -next(self._order), finding)
            if len(self._heap) < self.size:
                heapq.heappush(self._heap, entry)
            elif entry[:2] > self._heap[0][:2]:
                heapq.heapreplace(self._heap, entry)
            yield finding

    @property
    def findings(self) -> list[Finding]:
        return [f for _, _, f in sorted(self._heap, key=lambda e: (-e[0], -e[1]))]
