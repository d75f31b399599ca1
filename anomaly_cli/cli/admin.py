"""`anomaly db init|indexes` and `anomaly load counts|checkout`: the commands that write, and only
to the database they are given."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from anomaly_cli.checks import registry
from anomaly_cli.cli.apps import db_app, help_text, load_app, say
from anomaly_cli.errors import UsageError


@db_app.command("init")
def db_init(
    db: Annotated[Optional[str], typer.Option("--db", metavar="URL", help="Database URL; env ANOMALY_DB_URL.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Config file.")] = None,
    demo_data: Annotated[bool, typer.Option("--demo-data", help="Also load the demo data set (ending now).")] = False,
    monitoring: Annotated[bool, typer.Option(
        "--monitoring", help="Also create the monitoring tables (status_counts, checkout) for scan rates/checkout.")]
    = False,
    if_not_exists: Annotated[bool, typer.Option(
        "--if-not-exists", help="Create only the missing tables; an initialised database is not an error.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Create the seed schema (under the configured names) in the database; optionally load demo data.

    A database that has the tables already is refused ("already initialised", exit 3) unless
    --if-not-exists is given (then exit 0, creating only what is missing).
    """
    from anomaly_cli.db import mask_url
    from anomaly_cli.demo import init_database

    settings = _plain_settings(db, config)
    url = settings.database_url()
    created, loaded = init_database(url, settings, demo_data=demo_data, now=datetime.now(),
                                    if_not_exists=if_not_exists, monitoring=monitoring)
    if not created:
        say(f"already initialised: {mask_url(url)} has every table")
        return
    summary = ", ".join(f"{n} {t}" for t, n in loaded.items()) if loaded else "no rows"
    say(f"created {', '.join(created)} in {mask_url(url)}; loaded {summary}")


@db_app.command("parquet")
def db_parquet(
    source: Annotated[Path, typer.Argument(metavar="DIR", help="Directory of <table>.parquet / .csv exports.")],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="The DuckDB file to write.")] = Path(
        "anomaly-views.duckdb"),
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Config file (table names).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Write a DuckDB file of views over Parquet/CSV exports, to scan with --db duckdb:///FILE."""
    from anomaly_cli.duck import parquet_views

    settings = _plain_settings(None, config)
    for name, location in parquet_views(source, out, settings.schema).items():
        say(f"view {name} -> {location}")
    say(f"scan it: anomaly scan all --db duckdb:///{out}")


@db_app.command("indexes")
def db_indexes(
    db: Annotated[Optional[str], typer.Option("--db", metavar="URL", help="Database; env ANOMALY_DB_URL.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Config file.")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Create the missing indexes (writes).")] = False,
    dialect: Annotated[Optional[str], typer.Option(
        "--dialect", metavar="sqlite|mysql|postgresql", help="Print for this engine when no --db is given.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Print the CREATE INDEX statements that make the checks fast on the configured schema.

    With --db, each is marked: the missing ones are printed as statements (pipe them to your
    SQL client), those present (an existing index starting with the same columns counts) and
    those on a table the database lacks as comments. Nothing is executed unless --apply is
    given; then only the missing indexes are created.
    """
    from anomaly_cli.db import connect, parse_url
    from anomaly_cli.indexes import apply_indexes, index_statements, index_status

    settings = _plain_settings(db, config)
    checks = list(registry().values())
    url = parse_url(settings["db.url"]) if settings["db.url"] else None
    from anomaly_cli.engines import uses_indexes

    name = url.get_backend_name() if url is not None else (dialect or "sqlite")
    if not uses_indexes(name):
        say(f"{name} scans whole columns: the checks declare no index there")
        return
    if not apply and url is not None:
        with connect(url, connect_timeout=settings["db.connect_timeout"]) as conn:
            status = index_status(conn, settings.schema, checks)
        for statement, state in status:
            print(f"{statement};" if state == "missing" else f"-- {state}: {statement};")
        tally = {s: sum(1 for _, st in status if st == s) for s in ("present", "missing", "no table")}
        say(f"indexes: {tally['present']} present, {tally['missing']} missing"
            + (f", {tally['no table']} on tables the database lacks" if tally["no table"] else ""))
        return
    if not apply:
        if name not in ("sqlite", "mysql", "mariadb", "postgresql"):
            raise UsageError(f"--dialect {name!r} is not one of sqlite, mysql, postgresql")
        for statement in index_statements(settings.schema, name, checks):
            print(statement + ";")
        return
    if url is None:
        raise UsageError("--apply needs a database", hint="pass --db URL or set ANOMALY_DB_URL")
    with connect(url, connect_timeout=settings["db.connect_timeout"], read_only=False) as conn:
        with conn.begin():
            executed = apply_indexes(conn, settings.schema, checks)
    for statement in executed:
        print(statement + ";")
    say(f"created {len(executed)} index{'es' if len(executed) != 1 else ''}")


def _plain_settings(db: str | None, config: Path | None) -> Any:
    """Settings of the commands that name a database but run no check (db, load)."""
    from anomaly_cli.config import load_settings

    return load_settings(flags={"db.url": db}, config_path=config)


def _load(kind: str, file: Path, day: str | None, db: str | None, config: Path | None, columns: str | None,
          skip_bad_rows: bool) -> None:
    from datetime import date

    from anomaly_cli.loaders import load_file

    try:
        parsed_day = date.fromisoformat(day) if day else None
    except ValueError:
        raise UsageError(f"--date {day!r} is not a date (use e.g. 2025-07-12)") from None
    renamed = {}
    for pair in (columns or "").split(","):
        if not pair.strip():
            continue
        logical, sep, name = pair.partition("=")
        if not sep or not logical.strip() or not name.strip():
            raise UsageError(f"--columns {pair!r} is not NAME=FILE_COLUMN", hint="e.g. --columns time=minute,count=n")
        renamed[logical.strip().lower()] = name.strip()
    settings = _plain_settings(db, config)
    report, table_name, rejected = load_file(kind, file, day=parsed_day, settings=settings, columns=renamed,
                                             skip_bad_rows=skip_bad_rows)
    shown = "<stdin>" if str(file) == "-" else str(file)
    for bad in rejected[:5]:
        say(f"{shown}:{bad.line}: skipped: {bad.reason}")
    if len(rejected) > 5:
        say(f"{shown}: ... and {len(rejected) - 5} more bad rows skipped")
    say(f"{shown}: read {report.read} rows, loaded {report.loaded} into {table_name}"
        f" (bad rows skipped {report.rejected}, replaced {report.replaced})")


def _load_command(kind: str, doc: str) -> Callable[..., None]:
    def command(
        file: Annotated[Path, typer.Argument(metavar="FILE", help="The CSV file, '-' for stdin; gzip is recognised.",
                                             show_default=False)],
        day: Annotated[Optional[str], typer.Option(
            "--date", metavar="YYYY-MM-DD", help="The day of the file's HHh MM times.")] = None,
        columns: Annotated[Optional[str], typer.Option(
            "--columns", metavar="NAME=COLUMN,...",
            help="The file's own names for the columns, e.g. time=minute,count=n.")] = None,
        skip_bad_rows: Annotated[bool, typer.Option(
            "--skip-bad-rows", help="Load the good rows and count the bad ones (default: a bad row loads nothing, "
                                    "exit 3).")] = False,
        db: Annotated[Optional[str], typer.Option(
            "--db", metavar="URL", help="Database to write to; env ANOMALY_DB_URL.")] = None,
        config: Annotated[Optional[Path], typer.Option(
            "--config", metavar="FILE", help="Config file (table and column names).")] = None,
        debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    ) -> None:
        _load(kind, file, day, db, config, columns, skip_bad_rows)

    command.__doc__ = doc
    return command


_COUNTS_DOC = """Per-minute counts by status (time,status,count or f0_) into the counts table, for `scan rates`.

    Duplicate (minute, status) rows are summed; absent minutes mean zero. A file with a bad row
    loads nothing and names file:line (exit 3), unless --skip-bad-rows. Reloading a file replaces
    its minutes. Reads stdin for '-', and gzip files.
    """
_CHECKOUT_DOC = """Hourly checkouts (time,today,yesterday,same_day_last_week,avg_last_week,avg_last_month), for `scan checkout`.

    Reloading a file replaces its hours.
    """
for _kind, _doc in (("counts", _COUNTS_DOC), ("checkout", _CHECKOUT_DOC)):
    load_app.command(_kind, help=help_text(_doc))(_load_command(_kind, _doc))
