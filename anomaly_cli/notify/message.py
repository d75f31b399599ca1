"""One grouped message per destination per run: a title with counts by severity, one line per
finding (the most severe first, at most `limit`), "and N more", then the resolved incidents.

A digest holds at most `limit` findings whatever the run finds, so memory stays flat.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, replace

from anomaly_cli.model import Finding, Severity
from anomaly_cli.pipeline import Worst


class Redact(enum.StrEnum):
    """notify.redact: what personal data a notification may carry."""

    NONE = "none"  # as the table shows it
    PERSONAL = "personal"  # names, e-mail addresses and phone numbers replaced by placeholders


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    findings: tuple[Finding, ...]  # the findings the body names (for destinations that want each one)
    resolved: tuple[Finding, ...]


def severity_counts(counts: Counter[Severity]) -> str:
    """'1 critical, 2 high': the most severe first, zeros left out."""
    return ", ".join(f"{counts[s]} {s}" for s in sorted(counts, reverse=True) if counts[s])


def tagged(finding: Finding) -> str:
    """The finding's line with its severity in front, on one line (chat and mail subjects wrap badly)."""
    line = " ".join(finding.message.split())
    tag = f"[{str(finding.severity).upper()}]"
    return line if line.startswith(tag) else f"{tag} {line}"


class Digest:
    """What one destination will be told about a run, collected as findings stream past."""

    def __init__(self, limit: int, redact: Redact = Redact.NONE) -> None:
        self.limit = limit
        self.redact = redact
        self.counts: Counter[Severity] = Counter()
        self._worst = Worst(limit)
        self._resolved = Worst(limit)
        self.resolved_counts: Counter[Severity] = Counter()

    def add(self, finding: Finding) -> None:
        self.counts[finding.severity] += 1
        for _ in self._worst.watch([self._redacted(finding)]):
            pass

    def add_resolved(self, finding: Finding) -> None:
        self.resolved_counts[finding.severity] += 1
        for _ in self._resolved.watch([self._redacted(finding)]):
            pass

    def __bool__(self) -> bool:
        return bool(self.counts or self.resolved_counts)

    def _redacted(self, finding: Finding) -> Finding:
        if self.redact is Redact.NONE:
            return finding
        from anomaly_cli.summarize import PERSONAL_FIELDS, Pseudonyms

        # Placeholders per finding: a notification is read by people, not matched back.
        masks = Pseudonyms()
        fields = {k: masks.scrub(k, v) if k in PERSONAL_FIELDS else v for k, v in finding.fields.items()}
        return replace(finding, message=masks.scrub_text(finding.message, finding), fields=fields, personal=())

    def message(self, source: str) -> Message:
        """The grouped message; `source` names the audited database (already masked)."""
        total = sum(self.counts.values())
        resolved = sum(self.resolved_counts.values())
        parts = []
        if total:
            parts.append(f"{total} finding{'s' if total != 1 else ''} ({severity_counts(self.counts)})")
        if resolved:
            parts.append(f"{resolved} resolved")
        title = f"anomaly: {', '.join(parts)} in {source}"
        lines = [tagged(f) for f in self._worst.findings]
        left = total - len(lines)
        if left > 0:
            shown = Counter(f.severity for f in self._worst.findings)
            lines.append(f"and {left} more ({severity_counts(self.counts - shown)})")
        gone = self._resolved.findings
        if gone:
            if lines:
                lines.append("")
            lines.append(f"Resolved ({resolved}):")
            lines.extend(f"RESOLVED {tagged(f)}" for f in gone)
            if resolved > len(gone):
                lines.append(f"and {resolved - len(gone)} more resolved")
        return Message(title=title, body="\n".join(lines), findings=tuple(self._worst.findings),
                       resolved=tuple(gone))
