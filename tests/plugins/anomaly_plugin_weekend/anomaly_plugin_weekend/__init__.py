"""A check shipped by another package: transactions dated on a Saturday or Sunday above an amount."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from anomaly_cli.checks import Check, CheckContext, Column
from anomaly_cli.model import Finding, Severity
from anomaly_cli.params import Param


class WeekendCheck(Check):
    """Weekend transactions above --amount (a plugin: registered through the anomaly.checks entry point).

    Severity: high above ten times --amount, otherwise low.
    """

    name = "weekend"
    order = 900
    params = (Param("amount", Decimal("10000"), "report weekend transactions above this amount", kind=Decimal,
                    minimum=0),)
    fields = ("transaction_id", "transaction_date", "total_amount")
    columns = (Column("transaction_id", "Txn", "right"), Column("transaction_date", "Date"),
               Column("total_amount", "Amount", "right"))
    needs = {"transactions": ("transaction_id", "transaction_date", "total_amount")}

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        import sqlalchemy as sa

        from anomaly_cli.db import table, window_bounds

        t = table(ctx.schema, "transactions")
        stmt = (sa.select(t.c.transaction_id, t.c.transaction_date, t.c.total_amount)
                .where(t.c.total_amount > ctx.params["amount"],
                       *window_bounds(t.c.transaction_date, ctx.window.since, ctx.window.until))
                .order_by(t.c.transaction_id))
        for txn, when, amount in ctx.conn.execute(stmt):
            if when is None or when.weekday() < 5:
                continue
            ctx.stats.count()
            amount = Decimal(amount).quantize(Decimal("0.01"))
            yield Finding(check=self.name, key=f"weekend:{txn}",
                          severity=Severity.HIGH if amount > 10 * ctx.params["amount"] else Severity.LOW,
                          message=f"Transaction ID {txn} of {ctx.currency}{amount} on a weekend ({when:%A %Y-%m-%d})",
                          fields={"transaction_id": txn, "transaction_date": when, "total_amount": amount})
