"""--format csv: a header row, then one row per finding, in a stable column order."""

from __future__ import annotations

import csv
from typing import Any, TextIO

from anomaly_cli.model import Report
from anomaly_cli.render.encode import scalar_text

COMMON = ("check", "key", "severity", "message")


def columns(report: Report) -> list[str]:
    """The common columns, then each check's fields in registry order, each once."""
    names = list(COMMON)
    for result in report.results:
        names.extend(f for f in result.fields if f not in names)
    return names


def write(report: Report, stream: TextIO, **_: Any) -> None:
    header = columns(report)
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    for result in report.results:
        for finding in result.findings:
            row = finding.as_dict()
            writer.writerow([scalar_text(row.get(name)) for name in header])
