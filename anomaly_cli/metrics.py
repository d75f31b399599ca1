"""--metrics FILE: the run as Prometheus metrics, for node_exporter's textfile collector.

    anomaly_findings{check="price",severity="critical"} 3
    anomaly_check_duration_seconds{check="price"} 0.031
    anomaly_check_not_evaluated{check="checkout"} 0
    anomaly_last_success_timestamp_seconds 1.79e+09

Written by the CLI after the scan returned (its --output already durably in place), so the
last-success timestamp only moves when a run really completed; a failed run leaves the
previous file, whose old timestamp is what an alert on staleness looks for. prometheus_client's
write_to_textfile writes a temporary file beside FILE and renames it (atomic).
Checks that scan all leaves out (their tables are missing) are not listed.
"""

from __future__ import annotations

from pathlib import Path

from anomaly_cli.errors import OutputError, UsageError
from anomaly_cli.model import ScanReport, Severity


def check_destination(path: Path) -> None:
    """Refused before the scan runs: a directory, or a directory that does not exist."""
    if path.is_dir():
        raise UsageError(f"--metrics {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--metrics {path}: directory {parent} does not exist")


def write_metrics(path: Path, report: ScanReport) -> None:
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()  # not the global one: no process or platform metrics
    findings = Gauge("anomaly_findings", "Findings of the last run, by check and severity",
                     ["check", "severity"], registry=registry)
    duration = Gauge("anomaly_check_duration_seconds", "Wall time of each check in the last run",
                     ["check"], registry=registry)
    not_evaluated = Gauge("anomaly_check_not_evaluated",
                          "1 when the check could not judge anything in the last run (no data, too little history)",
                          ["check"], registry=registry)
    success = Gauge("anomaly_last_success_timestamp_seconds", "When a run last completed (Unix time)",
                    registry=registry)
    for outcome in report.results:
        for severity in Severity:  # zeros too: a rule can compare, and a series never vanishes
            findings.labels(check=outcome.check, severity=str(severity)).set(outcome.by_severity.get(severity, 0))
        duration.labels(check=outcome.check).set(round(outcome.seconds, 6))
        not_evaluated.labels(check=outcome.check).set(1 if outcome.reason is not None else 0)
    success.set_to_current_time()
    try:
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise OutputError(f"cannot write --metrics {path}: {exc.strerror or exc}") from None
