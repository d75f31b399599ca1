"""--format csv: a header row, then one row per finding, in a stable column order.

A check that judged nothing (status not_evaluated) gets one row after its findings, so that a
file with the header only still means "judged, nothing found": its check, no severity, the key
`<check>:not_evaluated` and the message `not evaluated: <reason>`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

from anomaly_cli.model import CheckInfo, CheckOutcome, Finding, RunInfo
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import csv_cell

COMMON = ("check", "key", "severity", "message")


def columns(checks: Sequence[CheckInfo]) -> list[str]:
    """The common columns, then each check's fields in registry order, each once."""
    names = list(COMMON)
    for check in checks:
        names.extend(f for f in check.fields if f not in names)
    return names


class Writer(BaseSink):
    header: list[str]

    def begin(self, run: RunInfo) -> None:
        self.header = columns(run.checks)
        self.writer = csv.writer(self.stream, lineterminator="\n")
        self.writer.writerow(self.header)

    def finding(self, finding: Finding) -> None:
        row = finding.as_dict()
        self.writer.writerow([csv_cell(row.get(name)) for name in self.header])

    def check_end(self, outcome: CheckOutcome) -> None:
        if outcome.reason is not None:
            row = {"check": outcome.check, "key": f"{outcome.check}:not_evaluated",
                   "message": f"not evaluated: {outcome.reason}"}
            self.writer.writerow([csv_cell(row.get(name)) for name in self.header])
