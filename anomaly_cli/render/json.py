"""--format json: one document with the run's metadata and one entry per check."""

from __future__ import annotations

from typing import Any, TextIO

from anomaly_cli import __version__
from anomaly_cli.model import Report
from anomaly_cli.render.encode import dumps, utc_stamp


def write(report: Report, stream: TextIO, **_: Any) -> None:
    # Written as the findings stream in, one per line; each check's summary comes after
    # its findings because only then is it complete (JSON objects are unordered).
    window = {"since": report.window.since, "until": report.window.until}
    stream.write(
        f'{{"tool": "anomaly", "version": {dumps(__version__)}, '
        f'"generated_at": {dumps(utc_stamp(report.generated_at))}, "window": {dumps(window)}, "checks": ['
    )
    for index, result in enumerate(report.results):
        stream.write(",\n" if index else "\n")
        stream.write(f'{{"check": {dumps(result.check)}, "params": {dumps(result.params)}, "findings": [')
        for count, finding in enumerate(result.findings):
            stream.write(",\n" if count else "\n")
            stream.write(dumps(finding.as_dict()))
        stream.write(f'\n], "summary": {dumps(result.summary())}}}')
    stream.write("\n]}\n")
