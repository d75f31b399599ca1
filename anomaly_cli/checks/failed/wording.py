"""failed: an incident (or a listed failure) put into a finding and its sentence."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from anomaly_cli.buckets import day_span as span
from anomaly_cli.buckets import from_epoch
from anomaly_cli.checks.failed.incidents import Incident
from anomaly_cli.checks.failed.rules import scope_for, severity_for
from anomaly_cli.model import Finding, Severity
from anomaly_cli.stats import as_percent
from anomaly_cli.wording import percent

NAME = "failed"

def describe(incident: Incident, size: int, customers: Counter[Any], names: dict[Any, str | None]) -> Finding:
    """The finding for an anomalous incident; customers counts its failures by customer id."""
    start, end = from_epoch(incident.start), from_epoch(incident.end(size))
    ranked = sorted(((n, cid) for cid, n in customers.items() if cid is not None),
                    key=lambda pair: (-pair[0], pair[1]))
    distinct = len(ranked)
    top_failures, top_id = ranked[0] if ranked else (0, None)
    scope = scope_for(incident.failed, distinct, top_failures)
    rate = as_percent(incident.failed / incident.total)
    expected = as_percent(incident.expected_rate)
    fields = {
        "bucket_start": start,
        "bucket_end": end,
        "failed": incident.failed,
        "total": incident.total,
        "failure_rate": rate,
        "expected_rate": expected,
        "distinct_customers": distinct,
        "scope": scope,
    }
    head = (f"Failed payments spiked {span(start, end)}: {incident.failed} of {incident.total} transactions "
            f"failed ({percent(rate)} against {percent(expected)} expected)")
    if scope == "broad":
        message = f"{head} across {distinct} customers - likely a gateway or checkout problem."
    elif top_id is None:
        message = f"{head}, by unknown customers - customer-side errors."
    else:
        message = (f"{head}, {top_failures} of them by customer {names.get(top_id) or 'unknown'} "
                   f"(ID: {top_id}) - customer-side errors.")
    named = names.get(top_id) if scope != "broad" and top_id is not None else None
    return Finding(check=NAME, key=f"failed:{start.isoformat()}",
                   severity=severity_for(rate, scope), message=message, fields=fields,
                   personal=(named,) if named else ())


@dataclass(frozen=True, slots=True)
class FailedTransaction:
    transaction_id: Any
    transaction_date: datetime
    customer_id: Any
    customer_name: str | None
    products: tuple[str, ...]


def list_finding(txn: FailedTransaction) -> Finding:
    """--list: one low finding per failed transaction, in the seed's own line."""
    products = ", ".join(txn.products)
    fields = {
        "bucket_start": txn.transaction_date,
        "bucket_end": txn.transaction_date,
        "failed": 1,
        "total": 1,
        "failure_rate": Decimal("100.00"),
        "expected_rate": None,
        "distinct_customers": 1,
        "scope": None,
        "transaction_id": txn.transaction_id,
        "customer_id": txn.customer_id,
        "customer_name": txn.customer_name,
        "products": products,
    }
    message = (f"Transaction Failed: {txn.transaction_date:%Y-%m-%d %H:%M:%S} - Customer: "
               f"{txn.customer_name or 'unknown'} (ID: {txn.customer_id}) - Product: {products or 'unknown'}")
    return Finding(check=NAME, key=f"failed:txn:{txn.transaction_id}", severity=Severity.LOW,
                   message=message, fields=fields)

