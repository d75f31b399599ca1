"""Where a scan's output goes and how it looks: --output names, the format they imply or
contradict, and colour (NO_COLOR / FORCE_COLOR)."""

from __future__ import annotations

from pathlib import Path

from anomaly_cli.errors import UsageError
from anomaly_cli.output import stdout_is_terminal
from anomaly_cli.render import OutputFormat

# Formats whose output is plain lines of text: a .txt file may hold any of them.
PLAIN_TEXT = (OutputFormat.TABLE, OutputFormat.TEXT, OutputFormat.GITHUB)
# Suffixes of formats this tool does not write: refused rather than silently written as text.
FOREIGN_SUFFIXES = ("html", "htm", "xml", "sarif", "parquet", "xlsx", "xls", "md", "pdf", "yaml", "yml", "tsv")


def output_path(path: Path | None) -> Path | None:
    """--output: None for stdout ('-', /dev/stdout), else the file."""
    if path is None or str(path) in ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
        return None
    return path


def output_format(given: OutputFormat | None, configured: OutputFormat | None, path: Path | None) -> OutputFormat:
    """The format: --format if given, else the --output suffix's, else the configured one (env,
    file), else table on a terminal and text otherwise. A suffix that names another format than
    --format, or one this tool does not write, is refused: `-o out.csv -f json` and
    `-o report.html` would otherwise write what the name denies."""
    suffix = path.suffix.lower().lstrip(".") if path is not None else ""
    named = OutputFormat.for_path(str(path)) if path is not None else None
    if named is None and suffix in FOREIGN_SUFFIXES:
        raise UsageError(f"--output {path}: anomaly does not write .{suffix} files",
                         hint="name it .json, .jsonl, .csv, .txt, .xml (junit) or .html, or give --format")
    if given is not None and named is not None and given is not named \
            and not (named is OutputFormat.TEXT and given in PLAIN_TEXT):
        raise UsageError(f"--output {path} names {named.value} but --format is {given.value}",
                         hint=f"drop --format, or name the file .{given.value}")
    if given is not None:
        return OutputFormat(given)
    if named is not None:
        return named
    if configured is not None:
        return OutputFormat(configured)
    if path is not None:
        return OutputFormat.TEXT
    return OutputFormat.TABLE if stdout_is_terminal() else OutputFormat.TEXT


def use_color(terminal: bool) -> bool:
    """Colour on a terminal; NO_COLOR (any value) turns it off, FORCE_COLOR turns it on anywhere
    (no-color.org, force-color.org). NO_COLOR wins when both are set."""
    import os

    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return terminal
