"""--format jsonl: one finding per line; a check that judged nothing adds one summary line.

A finding line is the finding object of the JSON format (it has a "key"). A check whose status
is `not_evaluated` writes, after its (absent) findings, its summary object of the JSON format
marked as such: {"record": "summary", "check": "sales", "status": "not_evaluated", "reason": ...}.
A clean run stays empty, so an empty file still means "judged, nothing found".
"""

from __future__ import annotations

from anomaly_cli.model import CheckOutcome, Finding
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import dumps


class Writer(BaseSink):
    def finding(self, finding: Finding) -> None:
        self.stream.write(dumps(finding.as_dict()) + "\n")

    def check_end(self, outcome: CheckOutcome) -> None:
        if outcome.reason is not None:
            self.stream.write(dumps({"record": "summary", "check": outcome.check, **outcome.summary()}) + "\n")
