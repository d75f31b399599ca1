"""The logical schema the checks read: each table, its columns and each column's kind.

One declaration for the config keys (`schema.<table>.<column>`), the column types the
queries bind with (db.py), and the columns that hold personal data (never sent to a model).
Kept free of SQLAlchemy so that reading settings stays cheap.
"""

from __future__ import annotations

# Kinds: id (whole-number key), key (text key), text, money, int, float, datetime.
TABLES: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "id", "customer_name": "text", "mobile_number": "text", "email": "text",
        "city": "text", "state": "text", "pincode": "text", "country": "text",
    },
    "products": {"product_id": "key", "product_name": "text", "product_price": "money"},
    "transactions": {
        "transaction_id": "id", "customer_id": "id", "transaction_date": "datetime", "status": "text",
        "total_amount": "money",
    },
    "transaction_items": {
        "item_id": "id", "transaction_id": "id", "product_id": "key", "product_name": "text",
        "product_price": "money", "quantity": "int",
    },
    # The status-rate monitor's inputs (filled by `anomaly load`): per-minute counts by status,
    # and hourly checkout counts with their baselines.
    "status_counts": {"ts": "datetime", "status": "text", "count": "int"},
    "checkout": {
        "ts": "datetime", "today": "float", "yesterday": "float", "same_day_last_week": "float",
        "avg_last_week": "float", "avg_last_month": "float",
    },
}

# Columns (and finding fields of the same name) that identify a person.
PERSONAL = frozenset({"customer_name", "email", "mobile_number"})
