"""--format junit: JUnit XML that CI systems show as test results (GitLab, Jenkins, Azure, ...).

    <testsuites name="anomaly">
      <testsuite name="price" tests="2" failures="2" errors="0" skipped="0" time="0.031" timestamp="...">
        <testcase classname="anomaly.price" name="price:904:1">
          <failure message="Transaction ID 904: ..." type="critical">key: value ...</failure>
        </testcase> ...

One testsuite per check; one failing testcase per finding at or above --fail-on; a check with
none gets one passing testcase (named after the check), a check that judged nothing one
skipped testcase. A <testsuite> carries its counts as attributes before its testcases, which
are only known when the check ends: each check's testcases are buffered in a spooled
temporary file (memory up to SPOOL bytes, then disk), so memory stays bounded however many
findings stream, and the suite is written whole at check_end. <testsuites> carries no counts
(optional in the JUnit schemas) so that nothing of the run has to be held.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from typing import IO

from anomaly_cli.exit_codes import FailOn
from anomaly_cli.model import CheckInfo, CheckOutcome, Finding, RunInfo, ScanReport, Severity
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import scalar_text, utc_stamp

SPOOL = 1 << 20  # bytes of one check's testcases held in memory before spilling to disk

# Characters XML 1.0 cannot hold at all (not even as references): replaced, never written.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def text(value: str) -> str:
    """Element content."""
    value = _NOT_XML.sub("\ufffd", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attr(value: str) -> str:
    """An attribute value in double quotes; newlines kept as references (not normalised away)."""
    return '"' + text(value).replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;").replace(
        "\t", "&#9;") + '"'


def reported(severity: Severity, fail_on: FailOn) -> bool:
    """At or above --fail-on: what CI should see as a failure (never: nothing is)."""
    return fail_on is not FailOn.NEVER and severity >= Severity.parse(fail_on.value)


class Writer(BaseSink):
    _run: RunInfo
    _cases: IO[str] | None = None
    _failures = 0

    def begin(self, run: RunInfo) -> None:
        self._run = run
        self.stream.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="anomaly">\n')

    def check_begin(self, check: CheckInfo) -> None:
        self._cases = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+", encoding="utf-8")
        self._failures = 0

    def finding(self, finding: Finding) -> None:
        if self._cases is None or not reported(finding.severity, self.options.fail_on):
            return
        self._failures += 1
        details = "\n".join(f"{name}: {scalar_text(value)}" for name, value in finding.fields.items())
        self._cases.write(
            f'    <testcase classname={attr("anomaly." + finding.check)} name={attr(finding.key)}>\n'
            f'      <failure message={attr(finding.message)} type={attr(str(finding.severity))}>'
            f'{text(details)}</failure>\n    </testcase>\n')

    def check_end(self, outcome: CheckOutcome) -> None:
        cases = self._cases
        self._cases = None
        if cases is None:
            return
        with cases:
            skipped = 0
            if self._failures == 0:
                cases.write(f'    <testcase classname={attr("anomaly." + outcome.check)} name={attr(outcome.check)}>')
                if outcome.reason is not None:
                    skipped = 1
                    cases.write(f"<skipped message={attr('not evaluated: ' + outcome.reason)}/>")
                elif outcome.findings:
                    below = f"{outcome.findings} findings below --fail-on {self.options.fail_on}"
                    cases.write(f"<system-out>{text(below)}</system-out>")
                cases.write("</testcase>\n")
            tests = max(self._failures, 1)
            self.stream.write(
                f'  <testsuite name={attr(outcome.check)} tests="{tests}" failures="{self._failures}" errors="0" '
                f'skipped="{skipped}" time="{outcome.seconds:.3f}" '
                f'timestamp={attr(utc_stamp(self._run.generated_at)[:-1])}>\n')
            cases.seek(0)
            shutil.copyfileobj(cases, self.stream)
            self.stream.write("  </testsuite>\n")

    def end(self, report: ScanReport) -> None:
        for check, why in report.skipped.items():  # scan all: its tables are missing
            self.stream.write(
                f'  <testsuite name={attr(check)} tests="1" failures="0" errors="0" skipped="1" time="0">\n'
                f'    <testcase classname={attr("anomaly." + check)} name={attr(check)}>'
                f'<skipped message={attr("skipped: " + why)}/></testcase>\n  </testsuite>\n')
        self.stream.write("</testsuites>\n")
