"""anomaly_cli.indexes: CREATE INDEX for every dialect under the configured names, applied on three engines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from anomaly_cli.checks import Check, registry
from anomaly_cli.config import SchemaMap, default_schema, load_settings
from anomaly_cli.db import connect, parse_url
from anomaly_cli.indexes import MAX_NAME, apply_indexes, index_name, index_statements
from anomaly_cli.schema import create, metadata


class Dated(Check):  # not registered: declared here so the expectations do not move with the real checks
    name = "dated"
    indexes = (
        ("transactions", ("transaction_date",)),
        ("transactions", ("customer_id", "transaction_date")),
        ("transaction_items", ("transaction_id",)),
    )


class Twin(Check):
    name = "twin"
    indexes = (
        ("transactions", ("transaction_date",)),  # the same as Dated's: one statement
        ("transactions", ("customer_id",)),  # served by Dated's (customer_id, transaction_date)
    )


def mapped(**names: str) -> SchemaMap:
    """The seed schema with some names changed: mapped(**{"schema.transactions.table": "orders"})."""
    return load_settings(flags=names, check_params={}, environ={}).schema


@pytest.mark.parametrize(
    ("dialect", "guard"),
    [("sqlite", "IF NOT EXISTS "), ("postgresql", "IF NOT EXISTS "), ("mariadb", "IF NOT EXISTS "), ("mysql", "")],
)
def test_statements_per_dialect(dialect: str, guard: str) -> None:
    assert index_statements(default_schema(), dialect, [Dated, Twin]) == [
        f"CREATE INDEX {guard}ix_anomaly_transactions_transaction_date ON transactions (transaction_date)",
        f"CREATE INDEX {guard}ix_anomaly_transactions_customer_id_transaction_date "
        f"ON transactions (customer_id, transaction_date)",
        f"CREATE INDEX {guard}ix_anomaly_transaction_items_transaction_id ON transaction_items (transaction_id)",
        f"CREATE INDEX {guard}ix_anomaly_transactions_customer_id ON transactions (customer_id)",
    ]


def test_configured_names_are_used_and_quoted() -> None:
    schema = mapped(**{"schema.transactions.table": "order", "schema.transactions.transaction_date": "placed_at"})
    only_date = type("OnlyDate", (Check,), {"name": "only_date", "indexes": (("transactions", ("transaction_date",)),)})
    assert index_statements(schema, "postgresql", [only_date]) == [
        'CREATE INDEX IF NOT EXISTS ix_anomaly_order_placed_at ON "order" (placed_at)']
    assert index_statements(schema, "mariadb", [only_date]) == [
        "CREATE INDEX IF NOT EXISTS ix_anomaly_order_placed_at ON `order` (placed_at)"]


def test_long_names_are_cut_to_63_characters_without_colliding() -> None:
    first = index_name("t" * 40, ("c" * 40, "a"))
    second = index_name("t" * 40, ("c" * 40, "b"))
    assert len(first) == len(second) == MAX_NAME
    assert first != second
    assert index_name("transactions", ("transaction_date",)) == "ix_anomaly_transactions_transaction_date"


def test_an_unknown_column_names_the_check() -> None:
    bad = type("Bad", (Check,), {"name": "bad", "indexes": (("transactions", ("no_such_column",)),)})
    with pytest.raises(ValueError, match="'bad'.*no_such_column"):
        index_statements(default_schema(), "sqlite", [bad])


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mariadb", "mysql"])
def test_every_registered_check_compiles(dialect: str) -> None:
    statements = index_statements(default_schema(), dialect, registry().values())
    names = [s.split(" ON ")[0].split()[-1] for s in statements]
    assert all(s.startswith("CREATE INDEX ") for s in statements)
    assert len(set(names)) == len(names) and all(len(n) <= MAX_NAME for n in names)
    declared = {(t, tuple(c)) for cls in registry().values() for t, c in cls.indexes}
    expressions = {(t, parts) for cls in registry().values() for engine, t, parts, _ in cls.expression_indexes
                   if engine == dialect}
    assert len(statements) == len(declared) + len(expressions)
    assert dialect != "sqlite" or expressions  # SQLite's bucket key index (key_index.index_key)


def _bare_tables(url: str) -> None:
    """The seed tables with primary keys only (no foreign keys: MariaDB would index them itself)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for tbl in metadata(default_schema()).sorted_tables:
            conn.execute(CreateTable(tbl, include_foreign_key_constraints=[]))
    engine.dispose()


def _indexes(url: str, table: str) -> dict[str, tuple[str, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = {ix["name"]: tuple(ix["column_names"]) for ix in sa.inspect(conn).get_indexes(table)}
    engine.dispose()
    return found


def _apply(url: str, checks: list[type[Check]]) -> list[str]:
    with connect(parse_url(url), read_only=False) as conn:
        executed = apply_indexes(conn, default_schema(), checks)
        conn.commit()
    return executed


@pytest.mark.engines
def test_apply_creates_the_indexes_once(engine_url: str) -> None:
    if engine_url.startswith("duckdb"):
        pytest.skip("DuckDB scans columns; no index is declared there (test_duckdb_gets_no_indexes)")
    _bare_tables(engine_url)
    executed = _apply(engine_url, [Dated, Twin])
    # Twin's customer_id index is served by the (customer_id, transaction_date) one just made.
    assert [s.split(" ON ")[0].split()[-1] for s in executed] == [
        "ix_anomaly_transactions_transaction_date", "ix_anomaly_transactions_customer_id_transaction_date",
        "ix_anomaly_transaction_items_transaction_id"]
    transactions = _indexes(engine_url, "transactions")
    assert transactions["ix_anomaly_transactions_transaction_date"] == ("transaction_date",)
    assert transactions["ix_anomaly_transactions_customer_id_transaction_date"] == ("customer_id", "transaction_date")
    assert _indexes(engine_url, "transaction_items")["ix_anomaly_transaction_items_transaction_id"] == (
        "transaction_id",)

    assert _apply(engine_url, [Dated, Twin]) == []  # a second run finds them all
    engine = sa.create_engine(engine_url)
    with engine.begin() as conn:  # and the printed statements themselves may run again (IF NOT EXISTS)
        for statement in index_statements(default_schema(), conn.dialect, [Dated, Twin])[:3]:
            conn.execute(sa.text(statement))
    engine.dispose()
    assert _indexes(engine_url, "transactions") == transactions


@pytest.mark.engines
def test_indexes_the_seed_schema_already_has_are_not_duplicated(engine_url: str) -> None:
    if engine_url.startswith("duckdb"):
        pytest.skip("DuckDB scans columns; no index is declared there (test_duckdb_gets_no_indexes)")
    engine = sa.create_engine(engine_url)
    with engine.begin() as conn:
        create(conn, default_schema())  # with ix_transactions_transaction_date and friends
    engine.dispose()
    executed = _apply(engine_url, [Dated])
    assert [s.split(" ON ")[0].split()[-1] for s in executed] == [
        "ix_anomaly_transactions_customer_id_transaction_date"]
    assert "ix_anomaly_transactions_transaction_date" not in _indexes(engine_url, "transactions")


def test_registered_checks_apply_on_sqlite(sqlite_url: str) -> None:
    _bare_tables(sqlite_url)
    executed = _apply(sqlite_url, list(registry().values()))
    assert executed and all("ix_anomaly_" in s for s in executed)
    assert _apply(sqlite_url, list(registry().values())) == []


def test_duckdb_gets_no_indexes(tmp_path) -> None:
    pytest.importorskip("duckdb_engine")
    url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    _bare_tables(url)
    assert _apply(url, list(registry().values())) == []
