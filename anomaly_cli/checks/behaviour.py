"""behaviour: customers acting unlike themselves, scored by an Isolation Forest (anomaly_cli.ml)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.model import Finding
from anomaly_cli.params import Param


@register
class BehaviourCheck(Check):
    """Customers behaving unlike themselves: an account takeover, a slow ramp, a dormant account waking.

    Every transaction in the window is measured in SQL against the customer's own history
    (--history days before the window): its amount against their running mean and spread,
    their transactions and amount in the last 1 h, 24 h and 7 d, the time since their previous
    one, its 3-hour bin of the day and weekday against their usual ones, their failed share in
    the last 24 h, the basket (items, distinct products, products they never bought, price
    against the catalog), their tenure and how many rises of the amount in a row end here.

    An Isolation Forest scores each transaction (0-1, about 0.5 ordinary). Without --model it
    is fitted at each run on a sample (at most --max-sample) of the --train-days before the
    window, with a fixed seed; with --model FILE (from 'anomaly train behaviour') it scores
    without refitting. Without --since the 7 days before today and today so far are scored: the
    window starts at a midnight, so every run of one day fits the same model and agrees.

    Consecutive anomalous transactions of one customer merge into one finding (an episode).
    Severity is its risk, from its highest score against the training scores' median m and robust spread s:
    low from m + 3 s, medium from m + 4 s, high from m + 4.5 s, critical above m + 8 s. Business
    rules on top: a high episode totalling --critical-amount or more is critical; a low or medium
    one totalling under --min-amount is not reported. Each finding lists the features that
    raised its score most, with the customer's usual value.
    """

    name = "behaviour"
    order = 60
    llm_target = ("Customer [NAME] (ID: [ID]) made [COUNT] transactions on [DATE] at [TIME] totalling [AMOUNT] "
                  "unlike their usual behaviour: [the listed features, each value against the usual] - [RISK] risk")
    llm_advice = ("the customers named: confirm with them that they made these purchases (an account "
                  "takeover is the costliest explanation), and hold deliveries until they do")
    params = (
        Param("model", None, "model file from 'anomaly train behaviour' (default: fit on the history at each run)",
              kind=str),
        Param("history", 90, "days of each customer's history their transactions are compared with",
              kind=int, minimum=1),
        Param("train_days", 28, "days before the window the model is fitted on (without --model)", kind=int,
              minimum=1),
        Param("max_sample", 50_000, "at most this many transactions are sampled to fit", kind=int, minimum=200),
        Param("min_amount", Decimal("500.00"), "low and medium episodes totalling less are not reported",
              kind=Decimal, minimum=0),
        Param("critical_amount", Decimal("100000.00"), "high episodes totalling this or more are critical",
              kind=Decimal, minimum=0),
    )
    fields = ("customer_id", "customer_name", "episode_start", "episode_end", "transactions", "total_amount",
              "score", "risk", "features", "model")
    columns = (
        Column("customer_id", "Cust", "right"),
        Column("customer_name", "Customer"),
        Column("episode_start", "Start"),
        Column("episode_end", "End"),
        Column("transactions", "Txns", "right"),
        Column("total_amount", "Amount", "right"),
        Column("score", "Score", "right"),
    )
    totals = ("total_amount",)
    needs = {
        "transactions": ("transaction_id", "customer_id", "transaction_date", "status", "total_amount"),
        "transaction_items": ("transaction_id", "product_id", "product_price", "quantity"),
        "products": ("product_id", "product_price"),
        "customers": ("customer_id", "customer_name"),
    }
    indexes = (("transactions", ("customer_id", "transaction_date", "transaction_id", "status", "total_amount")),
               ("transaction_items", ("transaction_id", "product_id", "product_price", "quantity")))

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        from anomaly_cli.ml import runner

        outcome = runner.Outcome()
        yield from runner.scan(ctx.conn, ctx.schema, ctx.window.since, ctx.window.until, ctx.end,
                               settings(ctx.params), outcome, ctx.currency)
        ctx.stats.count(outcome.judged)  # transactions scored
        for reason, n in outcome.skipped.items():
            ctx.stats.skip(reason, n)
        if outcome.not_evaluated:
            ctx.stats.not_evaluated(outcome.not_evaluated)
        for name, value in outcome.notes.items():
            ctx.stats.note(name, value)
        if outcome.high is not None:  # the report's chart: the highest score of each hour against "high"
            for hour in sorted(outcome.hourly):
                score = round(outcome.hourly[hour], 4)
                ctx.plot("highest_score_per_hour", t=hour, value=score, expected=round(outcome.high, 4),
                         flagged=score >= outcome.high)


def settings(params: dict[str, Any]) -> Any:
    """The runner's settings from the check's parameters."""
    from anomaly_cli.ml.runner import Settings

    return Settings(history=timedelta(days=params["history"]), train_span=timedelta(days=params["train_days"]),
                    max_sample=params["max_sample"], min_amount=params["min_amount"],
                    critical_amount=params["critical_amount"],
                    model_path=None if params["model"] is None else Path(params["model"]).expanduser())
