"""DuckDB files the tool writes: the demo as DuckDB, and a file of views over Parquet/CSV exports."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import URL

from anomaly_cli.config import SchemaMap
from anomaly_cli.errors import UsageError

# What `anomaly db parquet` looks for per table, in this order.
PATTERNS = ("{name}.parquet", "{name}/*.parquet", "{name}.csv", "{name}/*.csv", "{name}.csv.gz")


def duckdb_url(path: Path) -> URL:
    return URL.create("duckdb", database=str(path))


def _tables_in(path: Path) -> set[str] | None:
    """The tables and views of a DuckDB file, or None if it is not one."""
    import duckdb

    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            return {row[0] for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").fetchall()}
    except duckdb.Error:
        return None


def _replace_into(path: Path, build, refuse_unless: Iterable[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Build a DuckDB file beside `path` and rename it into place; an existing file is replaced
    only if every table it holds is one `build` makes (it was made by us before)."""
    allowed = set(refuse_unless)
    if path.exists():
        found = _tables_in(path)
        if found is None or not found or not found <= allowed:
            raise UsageError(f"{path} exists and is not a file this command made", hint="choose another path")
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    os.unlink(tmp_name)  # DuckDB creates the file itself; an empty file is not a database to it
    try:
        counts = build(Path(tmp_name))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        Path(tmp_name + ".wal").unlink(missing_ok=True)
        raise
    return counts


def build_demo(path: Path, *, now: datetime, mapping: SchemaMap) -> dict[str, int]:
    """The demo database as a DuckDB file: the same rows as the SQLite demo."""
    from anomaly_cli import db, schema
    from anomaly_cli.demo import demo_end, demo_rows, load_monitoring_demo
    from anomaly_cli.demo_data import generate

    names = {mapping[key].name for key in ("customers", "products", "transactions", "transaction_items",
                                           "status_counts", "checkout")}

    def build(target: Path) -> dict[str, int]:
        with db.connect(duckdb_url(target), read_only=False) as conn:
            with conn.begin():
                schema.create(conn, mapping)
                counts = schema.load_rows(conn, mapping, demo_rows(generate(demo_end(now))))
                counts.update(load_monitoring_demo(conn, mapping, now))
        return counts

    return _replace_into(path, build, names)


def find_exports(source: Path, mapping: SchemaMap) -> dict[str, str]:
    """Table name -> the file or glob that holds it in an export directory."""
    found = {}
    for key in ("customers", "products", "transactions", "transaction_items", "status_counts", "checkout"):
        name = mapping[key].name
        for pattern in PATTERNS:
            candidate = pattern.format(name=name)
            if any(source.glob(candidate)):
                found[name] = str((source / candidate).resolve())
                break
    return found


def parquet_views(source: Path, out: Path, mapping: SchemaMap) -> dict[str, str]:
    """Write a DuckDB file of views over the Parquet/CSV files of `source`; returns table -> file.

    Views, not copies: the file is a few kilobytes and always reads the current export. The
    paths are absolute so the file can be scanned from any directory.
    """
    if not source.is_dir():
        raise UsageError(f"{source} is not a directory")
    exports = find_exports(source, mapping)
    if not exports:
        raise UsageError(f"no Parquet or CSV file named after a mapped table in {source}",
                         hint="expected e.g. transactions.parquet or transactions/*.parquet")

    def build(target: Path) -> dict[str, int]:
        import duckdb

        with duckdb.connect(str(target)) as conn:
            for name, location in exports.items():
                reader = "read_parquet" if ".parquet" in location else "read_csv_auto"
                quoted = '"' + name.replace('"', '""') + '"'
                conn.execute(f"CREATE VIEW {quoted} AS SELECT * FROM {reader}('{_literal(location)}')")
        return {}

    _replace_into(out, build, exports)
    return exports


def _literal(text: str) -> str:
    return text.replace("'", "''")


def export_parquet(database: Path, out_dir: Path) -> list[str]:
    """Write every table of a DuckDB file as out_dir/<table>.parquet (what a user's export looks like)."""
    import duckdb

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with duckdb.connect(str(database), read_only=True) as conn:
        for (name,) in conn.execute("SELECT table_name FROM information_schema.tables "
                                    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'").fetchall():
            target = out_dir / f"{name}.parquet"
            quoted = '"' + name.replace('"', '""') + '"'
            conn.execute(f"COPY {quoted} TO '{_literal(str(target))}' (FORMAT parquet)")
            written.append(name)
    return written
