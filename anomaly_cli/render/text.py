"""--format text: one plain-English line per finding, in finding order (what cron mail gets).

Each line leads with the severity in capitals, so a critical card-testing burst does not read
like a medium one, and ends with the finding's key, for `anomaly alerts ack KEY`:

    [CRITICAL] Transaction ID 901: Customer ... significant revenue loss. (key price:901:1)

A check that judged nothing says so on a line of its own, as on stderr (which --quiet silences):

    sales: not evaluated: no transactions before 2025-05-01 00:00
"""

from __future__ import annotations

from anomaly_cli.model import CheckOutcome, Finding
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import printable


def text_line(finding: Finding) -> str:
    """`[SEVERITY] <the sentence> (key <key>)`; the sentence is the template's or the model's."""
    return f"[{finding.severity.name}] {printable(finding.message)} (key {printable(finding.key)})"


class Writer(BaseSink):
    for_people = True

    def finding(self, finding: Finding) -> None:
        self.stream.write(text_line(finding) + "\n")

    def check_end(self, outcome: CheckOutcome) -> None:
        if outcome.reason is not None:
            self.stream.write(f"{outcome.check}: not evaluated: {printable(outcome.reason)}\n")
        if outcome.brief is not None:
            self.stream.write(f"Summary ({outcome.check}): {printable(outcome.brief)}\n")
