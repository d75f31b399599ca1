"""--format text: one plain-English line per finding, in finding order (what cron mail gets)."""

from __future__ import annotations

from anomaly_cli.model import CheckOutcome, Finding
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import printable


class Writer(BaseSink):
    for_people = True

    def finding(self, finding: Finding) -> None:
        self.stream.write(printable(finding.message) + "\n")

    def check_end(self, outcome: CheckOutcome) -> None:
        if outcome.brief is not None:
            self.stream.write(f"Summary ({outcome.check}): {printable(outcome.brief)}\n")
