"""The alert store's table: created on first use, and stores from before alerts were scoped by
database given their `scope` column (the primary key becomes (scope, key) on every engine)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from anomaly_cli.state import ALERTS, METADATA, SCOPE_LENGTH, TABLE


def create_or_migrate(conn: Connection) -> None:
    """Create the table, or give a store from before scopes its `scope` column (existing alerts
    keep the empty scope: they stay listed and labelled, and new runs write scoped rows)."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(TABLE):
        METADATA.create_all(conn, checkfirst=True)
        return
    if "scope" in {c["name"] for c in inspector.get_columns(TABLE)}:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        pkey = inspector.get_pk_constraint(TABLE).get("name") or f"{TABLE}_pkey"
        conn.exec_driver_sql(f"ALTER TABLE {TABLE} ADD COLUMN scope VARCHAR({SCOPE_LENGTH}) NOT NULL DEFAULT ''")
        conn.exec_driver_sql(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{pkey}", ADD PRIMARY KEY (scope, key)')
    elif dialect in ("mysql", "mariadb"):
        conn.exec_driver_sql(f"ALTER TABLE {TABLE} ADD COLUMN scope VARCHAR({SCOPE_LENGTH}) NOT NULL DEFAULT '' "
                             "FIRST, DROP PRIMARY KEY, ADD PRIMARY KEY (scope, `key`)")
    else:  # SQLite cannot change a primary key in place: rebuild the table.
        old = f"{TABLE}_unscoped"
        indexes = [index["name"] for index in inspector.get_indexes(TABLE)]
        conn.exec_driver_sql(f"ALTER TABLE {TABLE} RENAME TO {old}")
        for name in indexes:  # index names are global in SQLite: free them for the new table
            conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{name}"')
        METADATA.create_all(conn, checkfirst=False)
        columns = ", ".join(f'"{c.name}"' for c in ALERTS.columns if c.name != "scope")
        conn.exec_driver_sql(f"INSERT INTO {TABLE} (scope, {columns}) SELECT '', {columns} FROM {old}")
        conn.exec_driver_sql(f"DROP TABLE {old}")
