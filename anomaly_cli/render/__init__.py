"""Output formats: one module per format, each with `write(report, stream, ...)`."""

from __future__ import annotations

import enum
import importlib
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from anomaly_cli.model import Report


class OutputFormat(enum.StrEnum):
    TABLE = "table"
    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"

    @classmethod
    def for_path(cls, path: str) -> OutputFormat | None:
        """The format an --output file name asks for (nightly.json -> json), if any."""
        suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        return {"json": cls.JSON, "jsonl": cls.JSONL, "ndjson": cls.JSONL, "csv": cls.CSV,
                "txt": cls.TEXT}.get(suffix)


def write(report: Report, fmt: OutputFormat, stream: TextIO, **options: Any) -> None:
    """Render `report` to `stream`; modules are imported only for the format asked for."""
    module = importlib.import_module(f"{__name__}.{fmt.value}")
    module.write(report, stream, **options)
