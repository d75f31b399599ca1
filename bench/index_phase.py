"""The benchmark's index phases: drop every ix_anomaly_* index ("without"), create those the
checks declare plus any --extra-index ("with"), and optionally ANALYZE."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench import generate


class _Extra:
    """A pseudo check carrying --extra-index declarations (apply_indexes reads name and indexes)."""

    name = "bench-extra"
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    expression_indexes: tuple[Any, ...] = ()


def parse_extra(specs: Sequence[str]) -> type[_Extra]:
    pairs = []
    for spec in specs:
        table, _, columns = spec.partition(":")
        if not table or not columns:
            raise SystemExit(f"--extra-index {spec!r}: expected TABLE:COL[,COL...]")
        pairs.append((table, tuple(columns.split(","))))
    return type("BenchExtra", (_Extra,), {"indexes": tuple(pairs)})


def drop_bench_indexes(url: str) -> list[str]:
    """Back to 'without': drop every ix_anomaly_* index the benchmark or `db indexes` created."""
    import sqlalchemy as sa

    from anomaly_cli.indexes import PREFIX

    engine = sa.create_engine(url)
    dropped = []
    try:
        with engine.begin() as conn:
            inspector = sa.inspect(conn)
            quote = conn.dialect.identifier_preparer.quote
            for table in generate.TABLES:
                if conn.dialect.name == "sqlite":  # its reflection leaves expression indexes out
                    listed = [row[1] for row in conn.exec_driver_sql(f"PRAGMA index_list({quote(table)})")]
                else:
                    listed = [index["name"] for index in inspector.get_indexes(table)]
                for name in listed:
                    if (name or "").startswith(PREFIX):
                        on = f" ON {quote(table)}" if conn.dialect.name in ("mysql", "mariadb") else ""
                        conn.execute(sa.text(f"DROP INDEX {quote(name)}{on}"))
                        dropped.append(name)
    finally:
        engine.dispose()
    return dropped


def apply(url: str, checks: Sequence[type], analyze: bool) -> tuple[float, list[str]]:
    from anomaly_cli.config import default_schema
    from anomaly_cli.db import connect, parse_url
    from anomaly_cli.indexes import apply_indexes

    started = time.perf_counter()
    with connect(parse_url(url), read_only=False) as conn:
        executed = apply_indexes(conn, default_schema(), checks)
        conn.commit()
        if analyze:
            analyze_tables(conn)
    return time.perf_counter() - started, executed


def analyze_tables(conn: Any) -> None:
    import sqlalchemy as sa

    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(sa.text(f"ANALYZE TABLE {', '.join(generate.TABLES)}")).fetchall()
    else:
        conn.execute(sa.text("ANALYZE"))
    conn.commit()
