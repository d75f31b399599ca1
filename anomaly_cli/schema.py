"""The seed schema as SQLAlchemy metadata (under the configured names), and loading rows into it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from anomaly_cli.config import SchemaMap
from anomaly_cli.db import DATETIME, MONEY

INSERT_CHUNK = 2000


def metadata(schema: SchemaMap) -> sa.MetaData:
    """The seed schema's four tables, with the configured table and column names."""
    md = sa.MetaData(schema=schema.db_schema)

    def col(table: str, logical: str, *args: Any, **kwargs: Any) -> sa.Column:
        return sa.Column(schema[table].columns[logical], *args, key=logical, **kwargs)

    def ref(table: str, logical: str) -> str:
        # SQLAlchemy finds a foreign key's column by its key, which is the logical name.
        prefix = f"{schema.db_schema}." if schema.db_schema else ""
        return f"{prefix}{schema[table].name}.{logical}"

    sa.Table(
        schema["customers"].name, md,
        col("customers", "customer_id", sa.BigInteger, primary_key=True, autoincrement=True),
        col("customers", "customer_name", sa.String(255), nullable=False),
        col("customers", "mobile_number", sa.String(20), unique=True),
        col("customers", "email", sa.String(255)),
        col("customers", "city", sa.String(100)),
        col("customers", "state", sa.String(100)),
        col("customers", "pincode", sa.String(20)),
        col("customers", "country", sa.String(100)),
    )
    sa.Table(
        schema["products"].name, md,
        col("products", "product_id", sa.String(20), primary_key=True),
        col("products", "product_name", sa.String(255), nullable=False),
        col("products", "product_price", MONEY, nullable=False),
    )
    sa.Table(
        schema["transactions"].name, md,
        col("transactions", "transaction_id", sa.BigInteger, primary_key=True, autoincrement=True),
        col("transactions", "customer_id", sa.BigInteger, sa.ForeignKey(ref("customers", "customer_id")),
            nullable=False, index=True),
        col("transactions", "transaction_date", DATETIME, index=True),
        col("transactions", "status", sa.String(20), server_default=schema.success_status),
        col("transactions", "total_amount", MONEY, server_default="0.00"),
    )
    sa.Table(
        schema["transaction_items"].name, md,
        col("transaction_items", "item_id", sa.BigInteger, primary_key=True, autoincrement=True),
        col("transaction_items", "transaction_id", sa.BigInteger,
            sa.ForeignKey(ref("transactions", "transaction_id")), nullable=False, index=True),
        col("transaction_items", "product_id", sa.String(20), sa.ForeignKey(ref("products", "product_id")),
            nullable=False, index=True),
        col("transaction_items", "product_name", sa.String(255)),
        col("transaction_items", "product_price", MONEY),
        col("transaction_items", "quantity", sa.Integer, server_default="1"),
    )
    return md


def ddl(schema: SchemaMap, dialect: sa.engine.Dialect) -> str:
    """CREATE TABLE and CREATE INDEX statements for one dialect (what sql/ ships)."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    md = metadata(schema)
    statements = []
    for tbl in md.sorted_tables:
        create_sql = str(CreateTable(tbl).compile(dialect=dialect)).strip()
        statements.append("\n".join(line.rstrip() for line in create_sql.splitlines()) + ";")
        for index in sorted(tbl.indexes, key=lambda i: i.name or ""):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    return "\n\n".join(statements) + "\n"


def create(conn: Connection, schema: SchemaMap) -> None:
    """Create the tables; refuse (by the database's own error) tables that already exist."""
    metadata(schema).create_all(conn, checkfirst=False)


def load_rows(conn: Connection, schema: SchemaMap, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
    """Insert rows given by logical table and column names; returns rows loaded per table."""
    md = metadata(schema)
    loaded: dict[str, int] = {}
    for key in ("customers", "products", "transactions", "transaction_items"):
        tbl = md.tables[_qualified(schema, key)]
        data = list(rows.get(key, ()))
        for start in range(0, len(data), INSERT_CHUNK):
            conn.execute(tbl.insert(), data[start:start + INSERT_CHUNK])
        loaded[key] = len(data)
        if conn.dialect.name == "postgresql" and data:
            _advance_sequence(conn, tbl, key)
    return loaded


def _qualified(schema: SchemaMap, key: str) -> str:
    return f"{schema.db_schema}.{schema[key].name}" if schema.db_schema else schema[key].name


def _advance_sequence(conn: Connection, tbl: sa.Table, key: str) -> None:
    # Rows came with their ids; move the serial past them so later inserts do not collide.
    pk: Iterable[sa.Column] = [c for c in tbl.primary_key.columns if c.autoincrement is True]
    for column in pk:
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence(:t, :c), (SELECT MAX({col}) FROM {tbl}))".format(
                col=conn.dialect.identifier_preparer.quote(column.name),
                tbl=conn.dialect.identifier_preparer.format_table(tbl),
            )),
            {"t": conn.dialect.identifier_preparer.format_table(tbl), "c": column.name},
        )


def ddl_files(schema: SchemaMap) -> dict[str, str]:
    """sql/schema.<dialect>.sql contents for the seed names (regenerate with `python -m anomaly_cli.schema`)."""
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    dialects = {"sqlite": sqlite.dialect(), "mysql": mysql.dialect(), "postgresql": postgresql.dialect()}
    header = "-- The seed schema for {name}; generated by `python -m anomaly_cli.schema sql/` from anomaly_cli/schema.py.\n\n"
    return {f"schema.{name}.sql": header.format(name=name) + ddl(schema, dialect) for name, dialect in dialects.items()}


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from anomaly_cli.config import default_schema

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "sql")
    for file_name, text in ddl_files(default_schema()).items():
        (target / file_name).write_text(text)
