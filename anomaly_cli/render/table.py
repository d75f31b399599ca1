"""--format table: a Rich table per check, severity coloured, with counts and totals underneath."""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from anomaly_cli.model import CheckInfo, CheckOutcome, Finding, Severity, Status
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import printable
from anomaly_cli.wording import grouped

STYLES = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}


def cell(value: Any, currency: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal | float):
        return grouped(value, currency)
    return printable(str(value))


def counts_line(outcome: CheckOutcome, currency: str) -> str:
    """'3 findings (1 critical, 2 high) · first 2 shown · total revenue impact ₹1,234.00 · ...'."""
    parts = [f"{outcome.findings} finding{'s' if outcome.findings != 1 else ''}"]
    summary = outcome.summary()
    if summary["by_severity"]:
        parts[0] += " (" + ", ".join(f"{n} {s}" for s, n in summary["by_severity"].items()) + ")"
    if outcome.suppressed:
        parts.append(f"{outcome.suppressed} suppressed")
    if outcome.shown is not None:
        parts.append(f"the {outcome.shown} most severe shown")
    for name, total in outcome.totals.items():
        label = name.replace("_", " ")
        parts.append(f"{label if label.startswith('total') else 'total ' + label} {currency}{grouped(total, currency)}")
    if outcome.stats.judged is not None:
        parts.append(f"judged: {outcome.stats.judged}")
    skipped = {k: v for k, v in outcome.stats.skipped.items() if v}
    if skipped:
        detail = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in skipped.items())
        parts.append(f"skipped {sum(skipped.values())} ({detail})")
    for name, value in outcome.stats.notes.items():
        if value:
            parts.append(f"{name.replace('_', ' ')}: {printable(str(value))}")
    return " · ".join(parts)


def _width(terminal: bool) -> int | None:
    """A terminal's own width (Rich reads COLUMNS, then the tty); off a terminal COLUMNS or 160."""
    if terminal:
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else 160


class Writer(BaseSink):
    """Rows are collected per check (a Rich table is laid out once it is complete)."""

    for_people = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        color = self.options.color
        terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.console = Console(file=self.stream, force_terminal=color, no_color=not color, highlight=False,
                               width=self.options.width or _width(color or terminal), soft_wrap=False)

    def check_begin(self, check: CheckInfo) -> None:
        self.check = check
        self.table = Table(title=check.name, title_justify="left", show_footer=bool(check.totals), expand=False)
        # The severity column is never cut: a reader must see how bad each row is.
        self.table.add_column("Severity", footer="Total" if check.totals else "", no_wrap=True, min_width=8)
        for column in check.columns:
            self.table.add_column(column.header, justify=column.justify, overflow="fold")
        if self.options.wide:
            # Never folded: the one cell a person copies into `anomaly alerts ack KEY`.
            self.table.add_column("Key", no_wrap=True, overflow="ignore")
        if self.options.messages:
            self.table.add_column("Message", overflow="fold", ratio=1, min_width=40)
        self.rows = 0

    def finding(self, finding: Finding) -> None:
        color = self.options.color
        self.table.add_row(
            Text(str(finding.severity), style=STYLES[finding.severity] if color else ""),
            *(cell(finding.fields.get(c.field), self.options.currency) for c in self.check.columns),
            *((printable(finding.key),) if self.options.wide else ()),
            *((printable(finding.message),) if self.options.messages else ()),
        )
        self.rows += 1

    def check_end(self, outcome: CheckOutcome) -> None:
        color = self.options.color
        # Footer totals are known only after the rows streamed in.
        for column, rich_column in zip(self.check.columns, self.table.columns[1:], strict=False):
            if column.field in outcome.totals:
                rich_column.footer = cell(outcome.totals[column.field], self.options.currency)
        if self.rows:
            self.console.print(self.table)
        elif outcome.status is Status.NOT_EVALUATED:
            self.console.print(Text(f"{outcome.check}: not evaluated: {printable(outcome.reason or '')}",
                                    style="yellow" if color else ""))
        elif outcome.findings:
            self.console.print(Text(f"{outcome.check}: {outcome.findings} finding(s), none shown"))
        else:
            self.console.print(Text(f"{outcome.check}: no anomalies found", style="green" if color else ""))
        self.console.print(counts_line(outcome, self.options.currency))
        if outcome.brief is not None:
            self.console.print(Text(f"Summary: {printable(outcome.brief)}"))
        self.console.print()
