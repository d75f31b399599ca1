"""--format table: a Rich table per check, severity coloured, with counts and totals underneath."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from anomaly_cli.model import CheckResult, Report, Severity

STYLES = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def counts_line(result: CheckResult, currency: str) -> str:
    parts = [f"{result.total} finding{'s' if result.total != 1 else ''}"]
    if result.by_severity:
        parts[0] += " (" + ", ".join(
            f"{result.by_severity[s]} {s}" for s in sorted(result.by_severity, reverse=True)
        ) + ")"
    if result.limit is not None and result.total > result.limit:
        parts.append(f"first {result.limit} shown")
    for name, total in result.totals.items():
        label = name.replace("_", " ")
        parts.append(f"{label if label.startswith('total') else 'total ' + label} {currency}{total:,.2f}")
    for name, value in result.notes.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v}
            if value:
                detail = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in value.items())
                parts.append(f"{name.replace('_', ' ')} {sum(value.values())} ({detail})")
        elif value:
            parts.append(f"{name.replace('_', ' ')}: {value}")
    return " · ".join(parts)


def write(report: Report, stream: TextIO, *, color: bool = False, currency: str = "",
          messages: bool = False, **_: Any) -> None:
    """`messages` adds the plain-English line of each finding (when a model wrote them)."""
    console = Console(file=stream, force_terminal=color, no_color=not color, highlight=False,
                      width=None if color else 160, soft_wrap=False)
    for result in report.results:
        table = Table(title=f"{result.check}", title_justify="left", show_footer=bool(result.totals),
                      expand=False)
        table.add_column("Severity", footer="Total" if result.totals else "")
        for column in result.columns:
            table.add_column(column.header, justify=column.justify, overflow="fold")
        if messages:
            table.add_column("Message", overflow="fold", ratio=1, min_width=40)
        for finding in result.findings:
            table.add_row(
                Text(str(finding.severity), style=STYLES[finding.severity] if color else ""),
                *(cell(finding.fields.get(c.field)) for c in result.columns),
                *((finding.message,) if messages else ()),
            )
        # Footer totals are known only after the rows streamed in.
        for column, rich_column in zip(result.columns, table.columns[1:], strict=False):
            if column.field in result.totals:
                rich_column.footer = cell(result.totals[column.field])
        if result.total:
            console.print(table)
        else:
            console.print(Text(f"{result.check}: no anomalies found", style="green" if color else ""))
        console.print(counts_line(result, currency))
        if result.brief is not None:
            console.print(Text(f"Summary: {result.brief()}"))
        console.print()
