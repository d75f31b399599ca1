"""The simplest hand-written query a user would write for each check's job, per engine.

The speed targets compare each check, end to end, with these (issue 14): price with the seed's
own join query, sales with a plain daily GROUP BY of successful transactions, spam with one LAG
over each customer's transactions, failed with a plain hourly GROUP BY of failed vs all.
They are timed like the checks' own SQL: a plain driver connection, every row fetched.
Strings are sent with an empty parameter tuple, so pymysql and psycopg need %% for a %.
"""

from __future__ import annotations

# The seed's query (case 1), verbatim but for the table aliases it already had.
_PRICE = """
SELECT t.transaction_id, t.customer_id, c.customer_name, t.transaction_date, t.status, t.total_amount,
       ti.product_id, ti.product_name, ti.product_price AS transaction_price,
       p.product_price AS actual_price, ti.quantity
FROM transactions t
JOIN customers c ON t.customer_id = c.customer_id
JOIN transaction_items ti ON t.transaction_id = ti.transaction_id
JOIN products p ON ti.product_id = p.product_id
WHERE ti.product_price < (p.product_price * 0.75) OR ti.product_price > (p.product_price * 1.05)
ORDER BY t.transaction_id
"""



def _spam(within_60_seconds: str) -> str:
    """One LAG over each customer's transactions: the 6th within 60 s (the engine's date arithmetic)."""
    return f"""
SELECT customer_id, transaction_id, transaction_date FROM (
  SELECT customer_id, transaction_id, transaction_date,
         LAG(transaction_date, 5) OVER (PARTITION BY customer_id ORDER BY transaction_date) AS prev
  FROM transactions) AS w
WHERE {within_60_seconds}
"""


REFERENCE: dict[str, dict[str, str]] = {
    "sqlite": {
        "price": _PRICE,
        "sales": """
SELECT date(transaction_date) AS day, COUNT(*), SUM(total_amount) FROM transactions
WHERE status = 'SUCCESS' GROUP BY day ORDER BY day
""",
        "spam": _spam('unixepoch(transaction_date) - unixepoch(prev) <= 60'),
        "failed": """
SELECT strftime('%Y-%m-%d %H', transaction_date) AS hour, COUNT(*), SUM(status = 'FAILED')
FROM transactions GROUP BY hour ORDER BY hour
""",
    },
    "postgresql": {
        "price": _PRICE,
        "sales": """
SELECT date_trunc('day', transaction_date) AS day, COUNT(*), SUM(total_amount) FROM transactions
WHERE status = 'SUCCESS' GROUP BY day ORDER BY day
""",
        "spam": _spam("transaction_date - prev <= interval '60 seconds'"),
        "failed": """
SELECT date_trunc('hour', transaction_date) AS hour, COUNT(*), COUNT(*) FILTER (WHERE status = 'FAILED')
FROM transactions GROUP BY hour ORDER BY hour
""",
    },
    "mariadb": {
        "price": _PRICE,
        "sales": """
SELECT DATE(transaction_date) AS day, COUNT(*), SUM(total_amount) FROM transactions
WHERE status = 'SUCCESS' GROUP BY day ORDER BY day
""",
        "spam": _spam('TIMESTAMPDIFF(SECOND, prev, transaction_date) <= 60'),
        "failed": """
SELECT DATE_FORMAT(transaction_date, '%%Y-%%m-%%d %%H') AS hour, COUNT(*), SUM(status = 'FAILED')
FROM transactions GROUP BY hour ORDER BY hour
""",
    },
}


def reference_sql(engine: str, check: str) -> str | None:
    """The hand-written query for a check on an engine, or None when there is none (rates, checkout, all)."""
    return REFERENCE.get(engine, {}).get(check)
