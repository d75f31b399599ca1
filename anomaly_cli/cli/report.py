"""`anomaly report --output FILE.html`: every check, as one self-contained HTML page with charts.

The options are scan all's (the one COMMON_OPTIONS declaration) without --format: the
format is HTML. It is `scan all --format html`, which also works (and -o x.html implies it).
"""

from __future__ import annotations

from typing import Any

import typer

from anomaly_cli.checks import registry
from anomaly_cli.cli.apps import app
from anomaly_cli.cli.scan import COMMON_OPTIONS, run_scan_command, with_options
from anomaly_cli.errors import UsageError
from anomaly_cli.output import stdout_is_terminal
from anomaly_cli.render import OutputFormat

OPTIONS = tuple(o for o in COMMON_OPTIONS if o.name != "format")


def report(**given: Any) -> None:
    if given.get("output") is None and stdout_is_terminal():
        raise UsageError("anomaly report needs --output FILE.html", hint="or redirect stdout to a file")
    # Given as a flag, so neither ANOMALY_FORMAT nor the config file's format can change it.
    raise typer.Exit(run_scan_command(list(registry()), given | {"format": OutputFormat.HTML}, COMMON_OPTIONS,
                                      every=True))


app.command(name="report", help="Run every check and write one self-contained HTML report with charts "
                                "(opens offline, prints); the exit code is scan all's.")(
    with_options(report, OPTIONS, "Write an HTML report."))
