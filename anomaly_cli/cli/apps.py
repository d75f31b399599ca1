"""The Typer apps the command modules attach to, and the one way a message reaches stderr."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated

import typer

from anomaly_cli import __version__

PROG = "anomaly"


def say(message: str) -> None:
    """One line on stderr: the only way errors and diagnostics reach the user."""
    print(f"{PROG}: {message}", file=sys.stderr)


def help_text(doc: str) -> str:
    """A docstring as help: paragraphs kept, line breaks inside a paragraph joined."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


app = typer.Typer(
    name=PROG,
    help="Find anomalies in a transaction database and report them to a person, a program or a pipeline.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    # Plain help: Rich-formatted help costs a tenth of a second of imports on every --help.
    rich_markup_mode=None,
)
scan_app = typer.Typer(help="Run one check (or all) against the database; read-only.", no_args_is_help=True)
db_app = typer.Typer(help="Create the seed schema in an empty database (writes, only when asked).",
                     no_args_is_help=True)
load_app = typer.Typer(help="Load monitoring files (per-minute status counts, hourly checkouts) into "
                            "the database given with --db (writes, only when asked).", no_args_is_help=True)
alerts_app = typer.Typer(help="The alert state behind --new-only: list, show, acknowledge and label alerts.",
                         no_args_is_help=True)
config_app = typer.Typer(help="Show the resolved settings and where each came from; write a starter file.",
                         no_args_is_help=True)
app.add_typer(scan_app, name="scan")
app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")
app.add_typer(alerts_app, name="alerts")
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Find anomalies in a transaction database and report them.

    Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or configuration error,
    3 the audit could not be completed.
    """
