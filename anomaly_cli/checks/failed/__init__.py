"""failed: spikes in the failed-payment rate, merged into incidents and scoped broad or concentrated.

One concern per module: rules (sizes, thresholds, tests), incidents (the judge over buckets),
wording (findings and sentences), sql (what is read from the database).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from anomaly_cli.buckets import from_epoch, to_epoch
from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.checks.failed.incidents import Tally, detect
from anomaly_cli.checks.failed.rules import DAY, LIST_FIELDS, BucketSize, Rules
from anomaly_cli.checks.failed.sql import measure_buckets, measure_customers, measure_failed_transactions
from anomaly_cli.checks.failed.wording import describe, list_finding
from anomaly_cli.errors import UsageError
from anomaly_cli.model import Finding
from anomaly_cli.params import Param

@register
class FailedCheck(Check):
    """Spikes in the failed-payment rate, one finding per incident, scoped broad or concentrated.

    Transactions are counted per --bucket (15min, hour or day). Each bucket is compared with a
    baseline: the pooled failure rate, smoothed by one failure and one success, of the --history
    days before it (read from before --since as needed), leaving out buckets already judged
    anomalous and never including the bucket under test; with fewer than 100 baseline
    transactions a bucket is not judged. A bucket is elevated when its failure rate is at least
    --min-ratio times the baseline and that many failures would happen by chance less than 5 % of
    the time. Consecutive elevated buckets are pooled into one incident (one bucket with fewer
    than --min-volume transactions, or none, may sit between two of them), reported when together
    they hold at least --min-volume transactions and --min-failures failures, fail at least
    --min-ratio times the expected rate, and a one-sided exact binomial test puts the chance of
    that many failures below the normal tail at --sensitivity standard deviations (3 means
    0.135 %). So one failure out of two transactions at night is never a spike. A bucket is
    judged only when it is complete: it starts at or after --since and ends by --until and by now.

    scope is concentrated when one customer has at least half of the incident's failures or at
    most 2 customers failed (customer-side errors), otherwise broad (a gateway or checkout
    problem). Severity by the incident's failure rate: broad incidents at 50 % or more are
    critical, at 25 % or more high, otherwise medium; concentrated incidents one level lower.
    failure_rate and expected_rate are percentages with 2 decimals. Statuses other than the
    success and failed values count in total but not as failures. Rows without a date are
    skipped and counted. With --list every failed transaction in the window is also
    reported, as a low finding in the seed's line, with bucket_start = bucket_end = its time,
    ordered by time.
    """

    name = "failed"
    llm_target = ("Transaction Failed: [DATE TIME] - Customer: [NAME] (ID: [ID]) - Product: [PRODUCT], or for a "
                  "spike: what failed, when, how many of how many, and whether it looks like a gateway or a "
                  "customer problem")
    llm_advice = "the gateway's status and error codes for broad incidents; the customers named for concentrated ones"
    order = 40
    params = (
        Param("bucket", BucketSize.HOUR, "bucket size: 15min, hour or day", kind=BucketSize),
        Param("min_volume", 10, "fewest transactions an incident must hold", kind=int, minimum=1),
        Param("min_failures", 5, "fewest failed transactions an incident must hold", kind=int, minimum=1),
        Param("min_ratio", 2.0, "the failure rate must be at least this multiple of the baseline",
              kind=float, minimum=1),
        Param("sensitivity", 3.0, "significance in standard deviations (higher reports fewer)",
              kind=float, exclusive_minimum=0),
        Param("history", 28, "days of history the baseline pools", kind=int, minimum=1, maximum=3650),
        Param("list", False, "also list every failed transaction as a low finding", kind=bool),
    )
    fields = ("bucket_start", "bucket_end", "failed", "total", "failure_rate", "expected_rate",
              "distinct_customers", "scope")
    columns = (
        Column("bucket_start", "From"),
        Column("bucket_end", "To"),
        Column("failed", "Failed", "right"),
        Column("total", "Total", "right"),
        Column("failure_rate", "Rate %", "right"),
        Column("expected_rate", "Expected %", "right"),
        Column("distinct_customers", "Customers", "right"),
        Column("scope", "Scope"),
    )
    needs = {
        "transactions": ("transaction_id", "customer_id", "transaction_date", "status"),
        "customers": ("customer_id", "customer_name"),
    }
    indexes = (("transactions", ("transaction_date", "status", "total_amount")),)  # shared with sales

    @classmethod
    def needs_for(cls, params: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        # The items are read only to name the products of each listed failure.
        if not params.get("list"):
            return cls.needs
        return {**cls.needs, "transaction_items": ("item_id", "transaction_id", "product_id", "product_name")}

    @classmethod
    def validate(cls, params: dict[str, Any]) -> None:
        if params["history"] * DAY < 2 * params["bucket"].seconds:
            raise UsageError(f"--history {params['history']} day(s) holds fewer than two {params['bucket']} buckets",
                             hint="give a longer --history")

    @classmethod
    def fields_for(cls, params: dict[str, Any]) -> tuple[str, ...]:
        # --list adds per-transaction findings, with columns of their own in CSV.
        return cls.fields + LIST_FIELDS if params["list"] else cls.fields

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        p = ctx.params
        size = p["bucket"].seconds
        rules = Rules(p["min_volume"], p["min_failures"], p["min_ratio"], p["sensitivity"])
        hi = to_epoch(ctx.end) // size * size  # only complete buckets
        judge_from = lo = None
        if ctx.window.since is not None:
            judge_from = -(-to_epoch(ctx.window.since) // size) * size
            lo = ctx.window.since - timedelta(days=p["history"])
        tally = Tally()
        # Missing and unusable dates are counted, anywhere and once each, by measure_buckets.
        incidents = list(detect(measure_buckets(ctx, size, lo, from_epoch(hi)), size=size,
                                history_days=p["history"], judge_from=judge_from, rules=rules, tally=tally,
                                plot=ctx.plot))
        ctx.stats.count(tally.judged)
        ctx.stats.skip("no_baseline", tally.no_baseline)
        ctx.stats.note("unknown_status", tally.unknown_status)
        if not tally.judged:
            ctx.stats.not_evaluated("no complete bucket with a baseline in the window"
                                    if tally.no_baseline else "no transactions in the window")
        by_customer, names = measure_customers(ctx, size, incidents)
        for incident in incidents:
            yield describe(incident, size, by_customer[incident.start], names)
        if p["list"]:
            for txn in measure_failed_transactions(ctx):
                yield list_finding(txn)

