"""--format jsonl: one finding per line, nothing else."""

from __future__ import annotations

from typing import Any, TextIO

from anomaly_cli.model import Report
from anomaly_cli.render.encode import dumps


def write(report: Report, stream: TextIO, **_: Any) -> None:
    for result in report.results:
        for finding in result.findings:
            stream.write(dumps(finding.as_dict()) + "\n")
