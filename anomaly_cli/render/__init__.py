"""Output formats: one module per format, each a sink that findings stream into.

A sink is told about the run, each check, each finding and each check's outcome as the scan
goes, so that one run can feed several sinks at once (a table on the terminal and JSON to a
file) and nothing has to hold every finding. `make_sink` imports only the format asked for.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from anomaly_cli.exit_codes import FailOn

if TYPE_CHECKING:
    from anomaly_cli.model import CheckInfo, CheckOutcome, Finding, RunInfo, ScanReport


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    JUNIT = "junit"
    GITHUB = "github"
    HTML = "html"

    @classmethod
    def for_path(cls, path: str) -> OutputFormat | None:
        """The format an --output file name asks for (nightly.json -> json), if any."""
        suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        return {"json": cls.JSON, "jsonl": cls.JSONL, "ndjson": cls.JSONL, "csv": cls.CSV,
                "txt": cls.TEXT,
                "xml": cls.JUNIT, "html": cls.HTML, "htm": cls.HTML}.get(suffix)

    @property
    def for_people(self) -> bool:
        """Formats people read get the text writer's lines (a model's, when configured)."""
        return self in (OutputFormat.TABLE, OutputFormat.TEXT, OutputFormat.HTML)


@dataclass(frozen=True)
class RenderOptions:
    color: bool = False  # ANSI styles (a terminal)
    currency: str = ""
    messages: bool = False  # the table adds each finding's line (when a model wrote them)
    wide: bool = False  # the table adds each finding's key (--wide)
    width: int | None = None  # the table's width; None: the terminal's, or 160 off a terminal
    fail_on: FailOn = FailOn.LOW  # junit and github report the findings at or above it


class Sink(Protocol):
    """Receives a scan as it happens; `end` is called only when every check completed."""

    for_people: bool

    def begin(self, run: RunInfo) -> None: ...

    def check_begin(self, check: CheckInfo) -> None: ...

    def finding(self, finding: Finding) -> None: ...

    def check_end(self, outcome: CheckOutcome) -> None: ...

    def end(self, report: ScanReport) -> None: ...


class BaseSink:
    """A sink that ignores every event; formats override the ones they need."""

    for_people = False

    def __init__(self, stream: TextIO, options: RenderOptions) -> None:
        self.stream = stream
        self.options = options

    def begin(self, run: RunInfo) -> None:
        pass

    def check_begin(self, check: CheckInfo) -> None:
        pass

    def finding(self, finding: Finding) -> None:
        pass

    def check_end(self, outcome: CheckOutcome) -> None:
        pass

    def end(self, report: ScanReport) -> None:
        pass


def make_sink(fmt: OutputFormat, stream: TextIO, options: RenderOptions) -> Sink:
    module = importlib.import_module(f"{__name__}.{fmt.value}")
    return module.Writer(stream, options)  # type: ignore[no-any-return]
