"""The demo data set as files: the four tables as CSV plus planted.json (fixtures/demo), and back."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from anomaly_cli.demo_data import DATE_FORMAT, DemoData, Planted
from anomaly_cli.seed_schema import TABLES

COLUMNS: dict[str, tuple[str, ...]] = {
    table: tuple(TABLES[table]) for table in ("customers", "products", "transactions", "transaction_items")
}
_PARSERS: dict[str, Callable[[str], Any]] = {
    "customer_id": int, "transaction_id": int, "item_id": int, "quantity": int,
    "product_price": Decimal, "total_amount": Decimal,
    "transaction_date": lambda s: datetime.strptime(s, DATE_FORMAT),
}


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(DATE_FORMAT)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def write_csv(data: DemoData, directory: Path) -> None:
    """The four tables as CSV (None -> empty field) plus planted.json."""
    directory.mkdir(parents=True, exist_ok=True)
    for table, columns in COLUMNS.items():
        with (directory / f"{table}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([_format(row[c]) for c in columns] for row in getattr(data, table))
    text = json.dumps([asdict(p) for p in data.planted], indent=2, ensure_ascii=False)
    (directory / "planted.json").write_text(text + "\n", encoding="utf-8")


def read_csv(directory: Path) -> DemoData:
    """The exact inverse of write_csv: ints, Decimals, datetimes and None restored."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in COLUMNS:
        with (directory / f"{table}.csv").open(newline="", encoding="utf-8") as fh:
            tables[table] = [{k: None if v == "" else _PARSERS.get(k, str)(v) for k, v in row.items()}
                             for row in csv.DictReader(fh)]
    planted = [Planted(**p) for p in json.loads((directory / "planted.json").read_text(encoding="utf-8"))]
    last = next(p.detail for p in planted if p.kind == "incomplete-last-day")
    return DemoData(planted=planted, start=datetime.fromisoformat(last["data_start"]),
                    end=datetime.fromisoformat(last["cutoff"]), **tables)
