"""Reading the status-rate monitor's CSV files (per-minute status counts, hourly checkouts) into the database."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from anomaly_cli.errors import DataError, UsageError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection

    from anomaly_cli.config import SchemaMap

INSERT_CHUNK = 2000
STATUS_LENGTH = 50  # the status column of a table this module creates
# The exercise files write a minute of the day as "14h 33" and an hour as "14h".
MINUTE_OF_DAY = re.compile(r"^(\d{1,2})h\s*(\d{1,2})$")
HOUR_OF_DAY = re.compile(r"^(\d{1,2})h$")
WHOLE_NUMBER = re.compile(r"^\d+$")
COUNT_COLUMNS = ("count", "f0_")  # f0_ is what BigQuery names an unnamed COUNT(*)
CHECKOUT_COLUMNS = ("today", "yesterday", "same_day_last_week", "avg_last_week", "avg_last_month")
TIME_COLUMNS = ("time", "ts", "timestamp")  # the names a time column may have
T = TypeVar("T")
# What the created tables hold: `count` is an INTEGER (32 bits on MariaDB and PostgreSQL), and the
# checkout values a FLOAT (4 bytes on MariaDB). A larger value is a bad row, named with its line,
# not an OverflowError or an engine error after part of the work.
MAX_COUNT = 2**31 - 1
MAX_AMOUNT = 1e15


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row that cannot be loaded: its line in the file and why."""

    line: int
    reason: str


@dataclass
class CountsFile:
    """A parsed per-minute counts file: rows (minute, lower-cased status, count), duplicates summed."""

    path: Path
    read: int
    rows: list[tuple[datetime, str, int]]
    rejected: list[Rejected] = field(default_factory=list)


@dataclass
class CheckoutFile:
    """A parsed hourly checkout file: rows (hour, today, yesterday, same_day_last_week, ...)."""

    path: Path
    read: int
    rows: list[tuple[datetime, float, float, float, float, float]]
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LoadReport:
    read: int  # data rows in the file
    loaded: int  # rows inserted (after duplicates were merged)
    rejected: int  # bad rows left out (only with skip_bad_rows: otherwise a file with any loads nothing)
    replaced: int = 0  # rows already in the table for the same times, deleted first

# --- reading ----------------------------------------------------------------------------------

STDIN = Path("-")


def _open_text(path: Path) -> Any:
    """The file (or stdin for '-') as text, gunzipped when it starts with gzip's magic bytes."""
    import gzip
    import io
    import sys

    raw: Any = sys.stdin.buffer if path == STDIN else path.open("rb")
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(raw)
    if raw.peek(2)[:2] == b"\x1f\x8b":
        raw = gzip.GzipFile(fileobj=raw)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank CSV row; unreadable files become UsageError."""
    import gzip

    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            for fields in reader:
                if fields and any(f.strip() for f in fields):
                    yield reader.line_num, fields
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a CSV file") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    except (gzip.BadGzipFile, EOFError):
        raise UsageError(f"{path}: not a readable gzip file") from None
    except csv.Error as exc:
        raise UsageError(f"{path}: not a readable CSV file ({exc})") from None


def _header(path: Path, rows: Iterator[tuple[int, list[str]]], wanted: dict[str, tuple[str, ...]],
            expected: str, renamed: dict[str, str] | None = None) -> tuple[int, dict[str, int], int]:
    """(line, logical name -> field index, field count) of the header row; `renamed` maps a
    logical name to the file's own column name (--columns time=minute)."""
    renamed = renamed or {}
    unknown = [name for name in renamed if name not in wanted]
    if unknown:
        raise UsageError(f"--columns: {unknown[0]!r} is not a column of this file kind",
                         hint="map " + ", ".join(wanted) + ", e.g. --columns time=minute")
    wanted = {logical: (renamed[logical].strip().lower(),) if logical in renamed else aliases
              for logical, aliases in wanted.items()}
    try:
        line, fields = next(rows)
    except StopIteration:
        raise UsageError(f"{path}: the file is empty", hint=f"expected a header {expected}") from None
    names = [f.strip().lower() for f in fields]
    index: dict[str, int] = {}
    for logical, aliases in wanted.items():
        found = [i for i, name in enumerate(names) if name in aliases]
        if len(found) != 1:
            raise UsageError(f"{path}: line {line}: header {','.join(fields)!r} does not name the columns "
                             f"{expected}", hint="give the header row the file's column names, or map them "
                                                 "with --columns time=minute,...")
        index[logical] = found[0]
    return line, index, len(fields)


def _moment(text: str, day: date | None, pattern: re.Pattern[str], option_hint: str) -> datetime:
    """A time of the file: day + 'HHh MM' (or 'HHh'), or a full ISO timestamp. ValueError says why."""
    value = text.strip()
    match = pattern.match(value)
    if match is not None:
        if day is None:
            raise UsageError(option_hint)
        parts = [int(g) for g in match.groups()]
        hour, minute = parts[0], parts[1] if len(parts) > 1 else 0
        if hour > 23 or minute > 59:
            raise ValueError(f"time {text!r} is not a time of day")
        return datetime.combine(day, time(hour, minute))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"time {text!r} is neither 'HHh MM' nor an ISO timestamp") from None
    if moment.tzinfo is not None:
        raise ValueError(f"time {text!r} has a time zone (give local times without one)")
    return moment


def _whole(text: str, name: str) -> int:
    value = text.strip()
    if value.startswith("-") and WHOLE_NUMBER.match(value[1:]):
        raise ValueError(f"{name} {text!r} is negative")
    if not WHOLE_NUMBER.match(value):
        raise ValueError(f"{name} {_short(text)!r} is not a whole number")
    if len(value.lstrip("0")) > len(str(MAX_COUNT)) or int(value) > MAX_COUNT:
        raise ValueError(f"{name} {_short(value)} is larger than {MAX_COUNT}")
    return int(value)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _amount(text: str, name: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {text!r} is not a number")
    if value < 0:
        raise ValueError(f"{name} {_short(text)!r} is negative")
    if value > MAX_AMOUNT:
        raise ValueError(f"{name} {_short(text)} is larger than {MAX_AMOUNT:g}")
    return value


def _parse_rows(path: Path, wanted: dict[str, tuple[str, ...]], expected: str,
                parse: Callable[[dict[str, str]], T], renamed: dict[str, str] | None = None
                ) -> tuple[int, list[tuple[int, T]], list[Rejected]]:
    """parse(fields by logical name) for every data row: (rows read, [(line, value)], bad rows).

    A row of the wrong width, or one whose parse raises ValueError, is collected as rejected
    with its line number, so that a caller can report them all.
    """
    rows = _rows(path)
    _, index, width = _header(path, rows, wanted, expected, renamed)
    read, parsed, rejected = 0, [], []
    for line, fields in rows:
        read += 1
        if len(fields) != width:
            rejected.append(Rejected(line, f"expected {width} fields, got {len(fields)}"))
            continue
        try:
            parsed.append((line, parse({name: fields[i] for name, i in index.items()})))
        except ValueError as exc:
            rejected.append(Rejected(line, str(exc)))
    return read, parsed, rejected


def parse_counts(path: Path, *, day: date | None, columns: dict[str, str] | None = None) -> CountsFile:
    """Read a per-minute status-count file: `time,status,count` (or `f0_` for the count).

    time is 'HHh MM' on `day` (required for such times) or an ISO timestamp (`day` is then
    not used); seconds are dropped, as the counts are per minute. Statuses are lower-cased and
    rows of the same minute and status are summed. Bad rows are collected, not raised, so that
    a caller can report them all; load_counts refuses a file that has any.
    """
    def row(fields: dict[str, str]) -> tuple[datetime, str, int]:
        ts = _moment(fields["time"], day, MINUTE_OF_DAY, "--date is needed for HHh MM times")
        status = fields["status"].strip().lower()
        if not status:
            raise ValueError("status is empty")
        if len(status) > STATUS_LENGTH:
            raise ValueError(f"status {status[:20]!r}... is longer than {STATUS_LENGTH} characters")
        return ts.replace(second=0, microsecond=0), status, _whole(fields["count"], "count")

    path = Path(path)
    read, parsed, rejected = _parse_rows(
        path, {"time": TIME_COLUMNS, "status": ("status",), "count": COUNT_COLUMNS}, "time,status,count", row,
        columns)
    merged: dict[tuple[datetime, str], int] = {}
    for _, (ts, status, count) in parsed:
        merged[(ts, status)] = merged.get((ts, status), 0) + count
    return CountsFile(path, read, [(ts, status, n) for (ts, status), n in sorted(merged.items())], rejected)


def parse_checkout(path: Path, *, day: date | None, columns: dict[str, str] | None = None) -> CheckoutFile:
    """Read an hourly checkout file: `time,today,yesterday,same_day_last_week,avg_last_week,avg_last_month`.

    time is 'HHh' on `day` (required for such times) or an ISO timestamp. Values are
    non-negative numbers; an hour given twice is a bad row (there is nothing sensible to add up).
    """
    def row(fields: dict[str, str]) -> tuple[str, tuple[datetime, float, float, float, float, float]]:
        ts = _moment(fields["time"], day, HOUR_OF_DAY, "--date is needed for HHh times")
        return fields["time"].strip(), (ts, *(_amount(fields[c], c) for c in CHECKOUT_COLUMNS))  # type: ignore[return-value]

    path = Path(path)
    read, parsed, rejected = _parse_rows(
        path, {"time": TIME_COLUMNS} | {c: (c,) for c in CHECKOUT_COLUMNS}, "time," + ",".join(CHECKOUT_COLUMNS), row,
        columns)
    seen: dict[datetime, int] = {}
    out = []
    for line, (text, values) in parsed:
        if values[0] in seen:
            rejected.append(Rejected(line, f"time {text!r} already given on line {seen[values[0]]}"))
            continue
        seen[values[0]] = line
        out.append(values)
    rejected.sort(key=lambda bad: bad.line)  # the first bad line is the one reported
    out.sort(key=lambda row: row[0])
    return CheckoutFile(path, read, out, rejected)


# --- loading ----------------------------------------------------------------------------------

def _refuse_bad_rows(path: Path, rejected: Sequence[Rejected]) -> None:
    """A bad data row is a data error (exit 3) naming file:line; nothing is loaded."""
    if rejected:
        first = rejected[0]
        more = f"{len(rejected)} bad rows" if len(rejected) > 1 else "1 bad row"
        raise DataError(f"{'<stdin>' if path == STDIN else path}:{first.line}: {first.reason}",
                        hint=f"{more} in the file; nothing was loaded (--skip-bad-rows loads the others)")


def _mapped_table(schema: SchemaMap, key: str, *columns: Any) -> sa.Table:
    """A monitoring table under its mapped names; `columns` are (logical name, type, options)."""
    import sqlalchemy as sa

    m = schema[key]
    return sa.Table(m.name, sa.MetaData(schema=schema.db_schema),
                    *(sa.Column(m.columns[name], kind, key=name, nullable=False, **options)
                      for name, kind, options in columns))


def counts_table(schema: SchemaMap) -> sa.Table:
    """The status_counts table as this module creates it."""
    import sqlalchemy as sa

    from anomaly_cli.db import DATETIME

    # (ts, status) is the key: one count per minute and status, and its leading column indexes ts.
    return _mapped_table(schema, "status_counts", ("ts", DATETIME, {"primary_key": True}),
                         ("status", sa.String(STATUS_LENGTH), {"primary_key": True}), ("count", sa.Integer, {}))


def checkout_table(schema: SchemaMap) -> sa.Table:
    """The checkout table as this module creates it (one row per hour)."""
    import sqlalchemy as sa

    from anomaly_cli.db import DATETIME

    return _mapped_table(schema, "checkout", ("ts", DATETIME, {"primary_key": True}),
                         *((name, sa.Float, {}) for name in CHECKOUT_COLUMNS))


def _replace(conn: Connection, schema: SchemaMap, key: str, created: sa.Table,
             rows: list[dict[str, Any]], same: Any) -> tuple[int, int]:
    """Create the table if missing, delete the rows `same` selects, insert `rows`: (deleted, inserted)."""
    import sqlalchemy as sa

    from anomaly_cli.db import table

    if not sa.inspect(conn).has_table(created.name, schema=schema.db_schema):
        created.create(conn)
    # Deleting and inserting through the mapped table: an existing table may have other
    # columns or no key, and only the mapped columns are written.
    tbl = table(schema, key)
    deleted = 0
    if rows:
        deleted = conn.execute(sa.delete(tbl).where(same(tbl))).rowcount or 0
        for start in range(0, len(rows), INSERT_CHUNK):
            conn.execute(sa.insert(tbl), rows[start:start + INSERT_CHUNK])
    return max(deleted, 0), len(rows)


def load_counts(conn: Connection, schema: SchemaMap, parsed: CountsFile, *, skip_bad_rows: bool = False) -> LoadReport:
    """Load a parsed counts file in the caller's transaction; refuse (UsageError) a file with bad rows.

    The table is created if it does not exist (key: ts, status). Reloading is idempotent: rows
    already present from the file's first to its last minute, with one of the file's statuses,
    are deleted before the insert (rows of other statuses are kept, so a file may hold only
    some statuses). Minutes absent from the file are not inserted: absent means zero.
    """
    import sqlalchemy as sa

    if not skip_bad_rows:
        _refuse_bad_rows(parsed.path, parsed.rejected)
    rows = [{"ts": ts, "status": status, "count": n} for ts, status, n in parsed.rows]
    statuses = sorted({status for _, status, _ in parsed.rows})
    first = parsed.rows[0][0] if parsed.rows else None
    last = parsed.rows[-1][0] + timedelta(minutes=1) if parsed.rows else None

    def same(tbl: sa.Table) -> Any:
        return sa.and_(tbl.c.ts >= first, tbl.c.ts < last, tbl.c.status.in_(statuses))

    deleted, inserted = _replace(conn, schema, "status_counts", counts_table(schema), rows, same)
    return LoadReport(parsed.read, inserted, len(parsed.rejected), deleted)


def load_checkout(conn: Connection, schema: SchemaMap, parsed: CheckoutFile, *,
                  skip_bad_rows: bool = False) -> LoadReport:
    """Load a parsed checkout file in the caller's transaction; refuse (UsageError) a file with bad rows.

    The table is created if it does not exist (key: ts). Rows already present for the file's
    hours (from its first to its last) are replaced, so reloading a file is idempotent.
    """
    import sqlalchemy as sa

    if not skip_bad_rows:
        _refuse_bad_rows(parsed.path, parsed.rejected)
    rows = [{"ts": row[0], **dict(zip(CHECKOUT_COLUMNS, row[1:]))} for row in parsed.rows]
    first = parsed.rows[0][0] if parsed.rows else None
    last = parsed.rows[-1][0] + timedelta(hours=1) if parsed.rows else None

    def same(tbl: sa.Table) -> Any:
        return sa.and_(tbl.c.ts >= first, tbl.c.ts < last)

    deleted, inserted = _replace(conn, schema, "checkout", checkout_table(schema), rows, same)
    return LoadReport(parsed.read, inserted, len(parsed.rejected), deleted)


def load_file(kind: str, path: Path, *, day: date | None, settings: Any, columns: dict[str, str] | None = None,
              skip_bad_rows: bool = False) -> tuple[LoadReport, str, list[Rejected]]:
    """Parse `path` ('-': stdin; gzip is recognised), then load it in one transaction. A bad
    row stops the load (DataError, nothing written) unless `skip_bad_rows`: then the good
    rows load and the report counts the bad ones.

    Returns the report, the name of the table written and the rows left out.
    """
    from anomaly_cli import db

    parse, load, key = {
        "counts": (parse_counts, load_counts, "status_counts"),
        "checkout": (parse_checkout, load_checkout, "checkout"),
    }[kind]
    parsed = parse(path, day=day, columns=columns)
    if not skip_bad_rows:
        _refuse_bad_rows(parsed.path, parsed.rejected)
    url = settings.database_url()
    with db.connect(url, connect_timeout=settings["db.connect_timeout"], read_only=False) as conn:
        with conn.begin():
            report = load(conn, settings.schema, parsed, skip_bad_rows=skip_bad_rows)
    return report, settings.schema[key].name, list(parsed.rejected)
