"""--format jsonl: one finding per line, nothing else."""

from __future__ import annotations

from anomaly_cli.model import Finding
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import dumps


class Writer(BaseSink):
    def finding(self, finding: Finding) -> None:
        self.stream.write(dumps(finding.as_dict()) + "\n")
