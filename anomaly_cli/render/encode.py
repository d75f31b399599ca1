"""Turning finding values into JSON and CSV text: exact money, ISO 8601 datetimes."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any


def scalar_text(value: Any) -> str:
    """A value as CSV text: '' for None, ISO 8601 for datetimes, Decimals verbatim."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, list | tuple | Mapping):  # behaviour's features: JSON, not Python's repr
        return dumps(value)
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON where a Decimal is written as the exact number it holds (500.00 stays 500.00)."""
    if isinstance(value, enum.Enum):
        return dumps(str(value) if isinstance(value, enum.IntEnum) else value.value)
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return json.dumps(round(value, 6))
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def utc_stamp(moment: datetime) -> str:
    """2026-11-21T08:00:00Z."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


# C0 and C1 control characters (escape sequences, carriage returns, bells) and Unicode line
# separators: a customer name holding them must not rewrite a terminal or add a line to a log.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Spreadsheet programs run a cell starting with one of these as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str) -> str:
    """`text` with every control character shown as an escape (\\x1b, \\n), never acted upon."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: text that a spreadsheet would run as a formula gets a leading '."""
    text = scalar_text(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text
