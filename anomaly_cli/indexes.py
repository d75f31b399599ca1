"""The indexes the checks' SQL wants: CREATE INDEX statements for a dialect, and applying them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Dialect

    from anomaly_cli.checks import Check
    from anomaly_cli.config import SchemaMap

PREFIX = "ix_anomaly_"
MAX_NAME = 63  # PostgreSQL's limit (MySQL's is 64): one name that fits every engine


def index_name(table: str, columns: Sequence[str]) -> str:
    """ix_anomaly_<table>_<cols>; a longer name is cut and given a hash, so two never collide."""
    name = f"{PREFIX}{table}_{'_'.join(columns)}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - len(digest) - 1]}_{digest}"


def expression_index_name(dialect: Dialect, tbl: sa.Table, parts: Sequence[str], expressions: Sequence[Any]) -> str:
    """ix_anomaly_<table>_<parts>_<hash of the expressions as this dialect spells them>: an index
    made by another spelling (an older version of a check, another SQLite) is not taken for it,
    since the engine would not match it with the query's expressions."""
    compiler = dialect.statement_compiler(dialect, None)
    text = ", ".join(compiler.process(e, include_table=False, literal_binds=True) for e in expressions)
    return index_name(tbl.name, (*parts, hashlib.sha1(text.encode()).hexdigest()[:8]))


def wanted(checks: Iterable[type[Check]]) -> list[tuple[str, tuple[str, ...], str]]:
    """(logical table, logical columns, first check asking) for every declared index, each once."""
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for cls in checks:
        for table, columns in cls.indexes:
            seen.setdefault((table, tuple(columns)), cls.name)
    return [(table, columns, check) for (table, columns), check in seen.items()]


def indexes(schema: SchemaMap, checks: Iterable[type[Check]], dialect: Dialect | None = None) -> list[sa.Index]:
    """The declared indexes as SQLAlchemy Index objects on the configured table and column names;
    with `dialect`, that engine's expression indexes after them."""
    import sqlalchemy as sa

    from anomaly_cli.db import table

    checks = list(checks)
    tables: dict[str, sa.Table] = {}
    out: list[sa.Index] = []
    for key, columns, check in wanted(checks):
        if key not in schema.tables:
            raise ValueError(f"check {check!r} declares an index on unknown table {key!r}")
        if key not in tables:
            tables[key] = table(schema, key)
        tbl = tables[key]
        unknown = [c for c in columns if c not in tbl.c]
        if unknown or not columns:
            raise ValueError(f"check {check!r} declares an index on unknown column(s) {unknown} of {key!r}")
        cols = [tbl.c[c] for c in columns]
        out.append(sa.Index(index_name(tbl.name, [c.name for c in cols]), *cols))
    seen = set()
    for cls in checks:
        for engine, key, parts, build in getattr(cls, "expression_indexes", ()):
            if dialect is None or engine != dialect.name or (key, parts) in seen:
                continue
            seen.add((key, parts))
            tbl = table(schema, key)
            expressions = build(tbl)
            out.append(sa.Index(expression_index_name(dialect, tbl, parts, expressions), *expressions))
    return out


def _is_expression(ix: sa.Index) -> bool:
    import sqlalchemy as sa

    return not all(isinstance(e, sa.Column) for e in ix.expressions)


def _present(ix: sa.Index, have: list[tuple[str, ...]], names: set[str]) -> bool:
    """An expression index is present under its name; a column index when one starts with its columns."""
    if _is_expression(ix):
        return ix.name in names
    columns = tuple(c.name for c in ix.columns)
    return any(cols[:len(columns)] == columns for cols in have)


def supports_if_not_exists(dialect: Dialect) -> bool:
    """SQLite, PostgreSQL and MariaDB know CREATE INDEX IF NOT EXISTS; MySQL (and unknown engines) not."""
    return dialect.name in ("sqlite", "postgresql", "mariadb") or bool(getattr(dialect, "is_mariadb", False))


def _dialect(dialect: Dialect | str) -> Dialect:
    if not isinstance(dialect, str):
        return dialect
    from sqlalchemy.engine import URL

    # "postgresql", "mariadb", "mysql", "sqlite": the dialect without a connection, and without a
    # driver but SQLite's own (stdlib): its version decides how an expression index is spelled
    # (engines.epoch_sql), and the spelling must be the one the checks' queries use here.
    cls = URL.create(dialect).get_dialect()
    return cls(dbapi=cls.import_dbapi()) if dialect == "sqlite" else cls()


def index_statements(schema: SchemaMap, dialect: Dialect | str, checks: Iterable[type[Check]]) -> list[str]:
    """CREATE INDEX statements (without ';') for `dialect` (a Dialect, or a name such as
    "postgresql"), deduplicated, with IF NOT EXISTS where the engine understands it."""
    from sqlalchemy.schema import CreateIndex

    dialect = _dialect(dialect)
    guard = supports_if_not_exists(dialect)
    return [str(CreateIndex(ix, if_not_exists=guard).compile(dialect=dialect)).strip()
            for ix in indexes(schema, checks, dialect)]


def apply_indexes(conn: Connection, schema: SchemaMap, checks: Iterable[type[Check]]) -> list[str]:
    """Create the declared indexes that the database lacks; return the statements executed.

    An index is lacking unless an existing index (or the primary key) starts with the same
    columns: the seed schema's own ix_transactions_transaction_date serves a check as well as
    ours would, and a second copy would only slow every insert. So a second call executes
    nothing. Indexes on a table the database lacks (an optional check's input, such as
    status_counts) are skipped. `conn` must be writable (db.connect(url, read_only=False));
    the caller commits.
    """
    import sqlalchemy as sa
    from sqlalchemy.schema import CreateIndex

    from anomaly_cli.engines import uses_indexes

    if not uses_indexes(conn.dialect.name):
        return []
    inspector = sa.inspect(conn)
    existing: dict[tuple[str | None, str], list[tuple[str, ...]] | None] = {}
    guard = supports_if_not_exists(conn.dialect)
    executed: list[str] = []
    names: set[str] = set()
    for ix in indexes(schema, checks, conn.dialect):
        tbl = ix.table
        assert tbl is not None
        place = (tbl.schema, tbl.name)
        if place not in existing:
            present = inspector.has_table(tbl.name, schema=tbl.schema)
            existing[place] = _leading_columns(inspector, tbl.name, tbl.schema, names) if present else None
        have = existing[place]
        if have is None or _present(ix, have, names):
            continue
        statement = CreateIndex(ix, if_not_exists=guard)
        conn.execute(statement)
        executed.append(str(statement.compile(dialect=conn.dialect)).strip())
        have.append(tuple(c.name for c in ix.columns))
        names.add(str(ix.name))
    return executed


def index_status(conn: Connection, schema: SchemaMap, checks: Iterable[type[Check]]) -> list[tuple[str, str]]:
    """(CREATE INDEX statement, "present" | "missing" | "no table") for every declared index, read-only.

    "present" as in apply_indexes: an existing index or primary key starting with the same columns.
    """
    import sqlalchemy as sa
    from sqlalchemy.schema import CreateIndex

    inspector = sa.inspect(conn)
    guard = supports_if_not_exists(conn.dialect)
    cache: dict[tuple[str | None, str], list[tuple[str, ...]] | None] = {}
    names: set[str] = set()
    out = []
    for ix in indexes(schema, checks, conn.dialect):
        tbl = ix.table
        assert tbl is not None
        place = (tbl.schema, tbl.name)
        if place not in cache:
            cache[place] = (_leading_columns(inspector, tbl.name, tbl.schema, names)
                            if inspector.has_table(tbl.name, schema=tbl.schema) else None)
        have = cache[place]
        state = "no table" if have is None else "present" if _present(ix, have, names) else "missing"
        out.append((str(CreateIndex(ix, if_not_exists=guard).compile(dialect=conn.dialect)).strip(), state))
    return out


def _leading_columns(inspector: Any, table: str, db_schema: str | None, names: set[str]) -> list[tuple[str, ...]]:
    """The column lists of a table's indexes and primary key (expression indexes left out);
    every index's name is added to `names`."""
    import warnings

    import sqlalchemy as sa

    with warnings.catch_warnings():  # SQLite's reflection skips expression indexes, with a warning
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        listed = inspector.get_indexes(table, schema=db_schema)
    names.update(index["name"] for index in listed if index.get("name"))
    if inspector.dialect.name == "sqlite":  # expression indexes, by name
        where = f"{inspector.dialect.identifier_preparer.quote(db_schema)}." if db_schema else ""
        quoted = inspector.dialect.identifier_preparer.quote(table)
        names.update(row[1] for row in inspector.bind.exec_driver_sql(f"PRAGMA {where}index_list({quoted})"))
    found = [tuple(index["column_names"]) for index in listed
             if index.get("column_names") and None not in index["column_names"]]
    primary = inspector.get_pk_constraint(table, schema=db_schema).get("constrained_columns") or []
    if primary:
        found.append(tuple(primary))
    return found
