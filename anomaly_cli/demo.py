"""The two commands that write: building the demo SQLite database and `db init`."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import URL, Connection

from anomaly_cli.config import SchemaMap, Settings, default_schema
from anomaly_cli.demo_data import DemoData, generate
from anomaly_cli.errors import DatabaseError, UsageError


def demo_end(now: datetime) -> datetime:
    """The demo data ends at the last whole minute before now."""
    return now.replace(second=0, microsecond=0) - timedelta(minutes=1)


def demo_rows(data: DemoData) -> dict[str, list[dict]]:
    return {
        "customers": data.customers,
        "products": data.products,
        "transactions": data.transactions,
        "transaction_items": data.transaction_items,
    }


class AlreadyInitialised(DatabaseError):
    """`db init` on a database that has the tables already: exit 3 (0 with --if-not-exists)."""


def init_database(url: URL, settings: Settings, *, demo_data: bool, now: datetime, if_not_exists: bool = False,
                  monitoring: bool = False) -> tuple[list[str], dict[str, int]]:
    """Create the schema under the configured names (and the monitoring tables if asked), and
    load the demo data if asked; one transaction. Returns (tables created, rows loaded per table).

    Tables that exist already are an AlreadyInitialised error, unless `if_not_exists`: then only
    the missing ones are created, and demo data is loaded only into a schema created just now.
    """
    import sqlalchemy as sa

    from anomaly_cli import db, loaders, schema

    wanted = list(schema.metadata(settings.schema).sorted_tables)
    if monitoring:
        wanted += [loaders.counts_table(settings.schema), loaders.checkout_table(settings.schema)]
    with db.connect(url, connect_timeout=settings["db.connect_timeout"], read_only=False) as conn, conn.begin():
        inspector = sa.inspect(conn)
        present = [t.name for t in wanted if inspector.has_table(t.name, schema=settings.schema.db_schema)]
        if present and not if_not_exists:
            raise AlreadyInitialised(f"already initialised: {', '.join(present)} exist{'s' if len(present) == 1 else ''}"
                                     f" in {db.mask_url(url)}",
                                     hint="pass --if-not-exists to create only what is missing")
        created = [t.name for t in wanted if t.name not in present]
        for tbl in wanted:
            if tbl.name not in present:
                tbl.create(conn)
        if not demo_data or present:
            return created, {}
        return created, schema.load_rows(conn, settings.schema, demo_rows(generate(demo_end(now))))


def cloudwalk_dir() -> Path | None:
    """The CloudWalk monitoring files: in the wheel, or in the checkout beside the package."""
    for candidate in (Path(__file__).parent / "_data" / "cloudwalk",
                      Path(__file__).parent.parent / "fixtures" / "cloudwalk"):
        if (candidate / "transactions_1.csv").is_file():
            return candidate
    return None


def load_monitoring_demo(conn: Connection, mapping: SchemaMap, now: datetime) -> dict[str, int]:
    """The public per-minute and hourly files as the third and second days before today, for `rates`
    and `checkout`: their feed then stopped a full day ago whatever the hour, so `freshness` has its
    stalled feed at 00:10 as at 15:00 (ending them yesterday left a fresh-looking feed after midnight)."""
    from anomaly_cli import loaders

    source = cloudwalk_dir()
    if source is None:
        return {}
    counts = {"status_counts": 0, "checkout": 0}
    for offset, suffix in ((3, "1"), (2, "2")):
        day = now.date() - timedelta(days=offset)
        report = loaders.load_counts(conn, mapping, loaders.parse_counts(source / f"transactions_{suffix}.csv", day=day))
        counts["status_counts"] += report.loaded
        report = loaders.load_checkout(conn, mapping, loaders.parse_checkout(source / f"checkout_{suffix}.csv", day=day))
        counts["checkout"] += report.loaded
    return counts


DEMO_APPLICATION_ID = 0x616E6F6D  # "anom": marks a file as a demo database that may be replaced


def _refuse_foreign_file(path: Path) -> None:
    """The demo replaces its own previous database, never some other file at that path."""
    import sqlite3

    if not path.exists():
        return
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            mine = conn.execute("PRAGMA application_id").fetchone()[0] == DEMO_APPLICATION_ID
        conn.close()
    except sqlite3.DatabaseError:
        mine = False
    if not mine:
        raise UsageError(f"{path} exists and is not an anomaly demo database", hint="choose another --path")


def build_demo_database(path: Path, *, now: datetime) -> dict[str, int]:
    """(Re)create the demo SQLite file at `path`: built beside it, then renamed into place.

    The shop's six weeks end now; the monitoring tables hold the CloudWalk files as the
    third and second days before today.
    """
    from anomaly_cli import db, schema

    _refuse_foreign_file(path)
    mapping = default_schema()
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        url = URL.create("sqlite", database=tmp_name)
        with db.connect(url, read_only=False) as conn:
            with conn.begin():
                conn.exec_driver_sql(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
                schema.create(conn, mapping)
                counts = schema.load_rows(conn, mapping, demo_rows(generate(demo_end(now))))
                counts.update(load_monitoring_demo(conn, mapping, now))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return counts
