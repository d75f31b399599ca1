"""price's probes: one look at the database each, to choose how the main query reads the items.

sqlalchemy is imported inside each function: `anomaly scan price --help` must not load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anomaly_cli.checks import CheckContext


def catalog_judgeable(conn: Any, p: Any, high: float) -> bool:
    """Whether every catalog price is NULL, 0 or a positive number below MONEY_LIMIT / high: one
    look at the products (text and blobs sort after every number, so the last test catches them)."""
    import sqlalchemy as sa

    from anomaly_cli.db import has_rows
    from anomaly_cli.sqlfn import MONEY_LIMIT, bare

    price = p.c.product_price
    return not has_rows(conn, p, sa.or_(price < 0, bare(price) >= MONEY_LIMIT / high))


def catalog_first(conn: Any, ti: Any, p: Any) -> bool:
    """Whether SQLite can read the items product by product: an index on the items leads with
    their product and holds the sold price and quantity (the one `indexes` declares), and every
    item has a catalog row. The distinct products of the items are walked in that index, one
    probe each (a catalog of hundreds, not the million items), so the check costs nothing."""
    import sqlalchemy as sa

    from anomaly_cli.db import has_rows

    wanted = {ti.c.product_price.name, ti.c.quantity.name}
    if not any(index["column_names"] and index["column_names"][0] == ti.c.product_id.name
               and wanted <= set(index["column_names"])
               for index in sa.inspect(conn).get_indexes(ti.name, schema=ti.schema)):
        return False
    if has_rows(conn, ti, ti.c.product_id.is_(None)):
        return False  # no catalog row can match a NULL product
    item = ti.alias("anomaly_item")
    walk = sa.select(sa.func.min(ti.c.product_id).label("product_id")).cte("anomaly_walk", recursive=True)
    after = sa.select(sa.func.min(item.c.product_id)).where(item.c.product_id > walk.c.product_id)
    walk = walk.union_all(sa.select(after.scalar_subquery()).where(walk.c.product_id.is_not(None)))
    catalogued = sa.select(sa.literal(1)).where(p.c.product_id == walk.c.product_id).exists()
    return not has_rows(conn, walk, walk.c.product_id.is_not(None), ~catalogued)


def has_items(ctx: CheckContext) -> bool:
    """Whether any line item belongs to a transaction in the window (one probe; run after the
    streamed result is closed, as MariaDB wants)."""
    from anomaly_cli.db import has_rows, table, window_bounds

    t = table(ctx.schema, "transactions")
    ti = table(ctx.schema, "transaction_items")
    return has_rows(ctx.conn, ti.join(t, ti.c.transaction_id == t.c.transaction_id),
                    *window_bounds(t.c.transaction_date, ctx.window.since, ctx.window.until))
