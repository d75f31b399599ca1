"""--format github: GitHub Actions workflow commands, shown as annotations on the run.

    ::error title=anomaly price::Transaction ID 904: ...        (high and critical)
    ::warning title=anomaly sales::September 15, 2025: ...      (medium and low)

One annotation per finding at or above --fail-on, streamed as they arrive; a check that
judged nothing gets a ::notice. Escaping follows the runner's rules (actions/toolkit
command.ts): in the message % -> %25, CR -> %0D, LF -> %0A; in a property value also
: -> %3A and , -> %2C, so a customer name cannot end the command or start another one.
"""

from __future__ import annotations

from anomaly_cli.model import CheckOutcome, Finding, ScanReport, Severity
from anomaly_cli.render import BaseSink
from anomaly_cli.render.junit import reported


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, title: str, message: str) -> str:
    return f"::{kind} title={escape_property(title)}::{escape_data(message)}\n"


class Writer(BaseSink):
    def finding(self, finding: Finding) -> None:
        if not reported(finding.severity, self.options.fail_on):
            return
        kind = "error" if finding.severity >= Severity.HIGH else "warning"
        self.stream.write(command(kind, f"anomaly {finding.check}", finding.message))

    def check_end(self, outcome: CheckOutcome) -> None:
        if outcome.reason is not None:
            self.stream.write(command("notice", f"anomaly {outcome.check}", f"not evaluated: {outcome.reason}"))

    def end(self, report: ScanReport) -> None:
        for check, why in report.skipped.items():
            self.stream.write(command("notice", f"anomaly {check}", f"skipped: {why}"))
