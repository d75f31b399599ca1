"""--format text: one plain-English line per finding, in finding order."""

from __future__ import annotations

from typing import Any, TextIO

from anomaly_cli.model import Report


def write(report: Report, stream: TextIO, **_: Any) -> None:
    for result in report.results:
        for finding in result.findings:
            stream.write(finding.message + "\n")
        if result.brief is not None:
            stream.write(f"Summary ({result.check}): {result.brief()}\n")
