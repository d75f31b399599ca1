"""--format json: one document with the run's metadata and one entry per check."""

from __future__ import annotations

from anomaly_cli.model import CheckInfo, CheckOutcome, Finding, RunInfo, ScanReport
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import dumps, utc_stamp


class Writer(BaseSink):
    """Written as the findings stream in, one per line; each check's summary comes after its
    findings because only then is it complete (JSON objects are unordered)."""

    _checks = 0
    _findings = 0

    def begin(self, run: RunInfo) -> None:
        window = {"since": run.window.since, "until": run.window.until}
        self.stream.write(
            f'{{"tool": {dumps(run.tool)}, "version": {dumps(run.version)}, '
            f'"generated_at": {dumps(utc_stamp(run.generated_at))}, "window": {dumps(window)}, '
            f'"skipped": {dumps([{"check": c, "reason": why} for c, why in run.skipped.items()])}, "checks": ['
        )

    def check_begin(self, check: CheckInfo) -> None:
        self.stream.write(",\n" if self._checks else "\n")
        self._checks += 1
        self._findings = 0
        self.stream.write(f'{{"check": {dumps(check.name)}, "params": {dumps(dict(check.params))}, "findings": [')

    def finding(self, finding: Finding) -> None:
        self.stream.write(",\n" if self._findings else "\n")
        self._findings += 1
        self.stream.write(dumps(finding.as_dict()))

    def check_end(self, outcome: CheckOutcome) -> None:
        self.stream.write(f'\n], "summary": {dumps(outcome.summary())}}}')

    def end(self, report: ScanReport) -> None:
        self.stream.write("\n]}\n")
