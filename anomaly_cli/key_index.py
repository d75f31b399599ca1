"""SQLite's expression index on the bucket key: what it holds, its name, whether a database has it.

Declared by sales (Check.expression_indexes), read by sales' and failed's whole-history passes
(in key order, no sort) and by price, which proves by it that no transaction date is unusable.
No SQLAlchemy at import: `scan --help` imports the checks, not the engine.
"""

from __future__ import annotations

from typing import Any


def readable_cents(amount: Any) -> Any:
    """The amount in whole cents when it is a number below MONEY_LIMIT, else NULL: text, a blob
    or 1e308 (whose cents would overflow SUM) is counted and left out of the sum. Two comparisons
    cost SQLite less than typeof(). Literals only (no binds), so that SQLite matches it with
    index_key's copy."""
    import sqlalchemy as sa

    whole = sa.cast(sa.func.round(amount * sa.literal_column("100")), sa.BigInteger)
    return sa.case((readable(amount), whole))


def readable(amount: Any) -> Any:
    """True when readable_cents(amount) is not NULL: counting these costs a pass less than
    counting the cents themselves (no rounding)."""
    import sqlalchemy as sa

    from anomaly_cli.sqlfn import MONEY_LIMIT

    limit = sa.literal(MONEY_LIMIT, literal_execute=True)
    return sa.and_(amount > -limit, amount < limit)


def index_key(t: Any) -> list[Any]:
    """SQLite's expression index for sales' whole-history pass (and failed's): the bucket key
    (its date checks done once, when a row is written), status, amount and cents, in GROUP BY
    order, so the pass reads the index in key order with nothing left to compute or sort. The
    same key serves hours and days; price proves by it that no date is unusable."""
    from anomaly_cli.bucket_keys import HOUR, key_of

    amount = t.c.total_amount
    return [key_of(t.c.transaction_date, HOUR), t.c.status, amount, readable_cents(amount)]


KEY_INDEX = ("bucket_key", "status", "total_amount", "cents")  # index_key's name parts (declared by sales)


def has_key_index(conn: Any, t: Any) -> bool:
    """Whether the database holds index_key (SQLite only; a PRAGMA, no scan)."""
    if conn.dialect.name != "sqlite":
        return False
    from anomaly_cli.indexes import expression_index_name

    quote = conn.dialect.identifier_preparer.quote
    where = f"{quote(t.schema)}." if t.schema else ""
    name = expression_index_name(conn.dialect, t, KEY_INDEX, index_key(t))
    return any(row[1] == name for row in conn.exec_driver_sql(f"PRAGMA {where}index_list({quote(t.name)})"))
