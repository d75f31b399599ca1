"""failed: spikes in the failed-payment rate, merged into incidents and scoped broad or concentrated."""

from __future__ import annotations

import enum
import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.errors import UsageError
from anomaly_cli.model import Finding, Severity
from anomaly_cli.params import Param
from anomaly_cli.stats import normal_tail
from anomaly_cli.wording import CENT, clock, long_date, percent

EPOCH = datetime(1970, 1, 1)
DAY = 86400
# A bucket joins a candidate incident when failures this unlikely at the baseline rate are seen in it.
ELEVATED_P = 0.05
# Fewer baseline transactions than this and the baseline rate is too uncertain to judge against.
MIN_BASELINE = 100
RANGE_CHUNK = 100  # incident time ranges per breakdown query, to keep the SQL text bounded
LIST_FIELDS = ("transaction_id", "customer_id", "customer_name", "products")


class BucketSize(enum.StrEnum):
    MIN15 = "15min"
    HOUR = "hour"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return {"15min": 900, "hour": 3600, "day": DAY}[self.value]


@dataclass(frozen=True, slots=True)
class BucketCount:
    """One measured bucket: start in epoch seconds, all transactions, failed ones, unknown statuses."""

    start: int
    total: int
    failed: int
    unknown: int = 0


@dataclass(frozen=True, slots=True)
class Rules:
    min_volume: int = 10
    min_failures: int = 5
    min_ratio: float = 2.0
    sensitivity: float = 3.0

    @property
    def alpha(self) -> float:
        return normal_tail(self.sensitivity)


@dataclass
class Incident:
    """Consecutive elevated buckets judged together; expected = failures expected at their baselines."""

    members: list[BucketCount] = field(default_factory=list)  # consecutive, empty buckets included
    expected: float = 0.0
    reported: bool = True  # False for a candidate in the history before --since

    @property
    def start(self) -> int:
        return self.members[0].start

    @property
    def total(self) -> int:
        return sum(b.total for b in self.members)

    @property
    def failed(self) -> int:
        return sum(b.failed for b in self.members)

    @property
    def expected_rate(self) -> float:
        return self.expected / self.total if self.total else 0.0

    def add(self, bucket: BucketCount, p0: float) -> None:
        self.members.append(bucket)
        self.expected += bucket.total * p0

    def end(self, size: int) -> int:
        return self.members[-1].start + size


@dataclass
class Tally:
    """What the judge saw, for the summary notes."""

    judged: int = 0
    no_baseline: int = 0
    unknown_status: int = 0


def upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact enough for any n (log-space start, then term ratios)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0

    def pmf(j: int) -> float:
        return math.exp(math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                        + j * math.log(p) + (n - j) * math.log1p(-p))

    odds = p / (1 - p)
    if k > n * p:  # terms fall from k upwards: sum them until they no longer matter
        term = total = pmf(k)
        for j in range(k, n):
            term *= (n - j) / (j + 1) * odds
            total += term
            if term <= total * 1e-16:
                break
        return min(total, 1.0)
    # k at or below the mean: 1 - P(X <= k-1), whose terms fall from k-1 downwards
    term = lower = pmf(k - 1)
    for j in range(k - 1, 0, -1):
        term *= j / (n - j + 1) / odds
        lower += term
        if term <= lower * 1e-16:
            break
    return max(0.0, 1.0 - lower)


def is_elevated(failed: int, total: int, p0: float, rules: Rules) -> bool:
    """May this bucket belong to an incident? Rate at least min_ratio x baseline and P < ELEVATED_P."""
    return (failed > 0 and failed >= rules.min_ratio * p0 * total
            and upper_tail(failed, total, p0) < ELEVATED_P)


def is_anomalous(incident: Incident, rules: Rules) -> bool:
    """The incident test: volume, a few failures, the practical ratio floor and significance."""
    p0 = incident.expected_rate
    return (incident.total >= rules.min_volume and incident.failed >= rules.min_failures
            and incident.failed >= rules.min_ratio * incident.expected
            and upper_tail(incident.failed, incident.total, p0) <= rules.alpha)


def detect(buckets: Iterable[BucketCount], *, size: int, history_days: int, judge_from: int | None,
           rules: Rules, tally: Tally | None = None,
           plot: Callable[..., None] | None = None) -> Iterator[Incident]:
    """Judge buckets in time order; yield the anomalous incidents that start at or after judge_from.

    The baseline of a bucket is the pooled failure rate (smoothed by one failure and one success)
    of the buckets in the previous history_days, leaving out buckets that belong to an anomalous
    incident or to the candidate still open. Elevated buckets form one candidate while at most one
    thin bucket (under min_volume transactions, or none) separates them; the candidate is reported
    when, pooled, it passes is_anomalous. Buckets before judge_from are judged the same way, to keep their anomalies out
    of the baseline, but never reported.
    """
    tally = tally if tally is not None else Tally()
    baseline: deque[BucketCount] = deque()
    base_total = base_failed = 0
    run: Incident | None = None
    # A thin bucket after the candidate: it joins if the next bucket is elevated (in fine buckets
    # an outage has moments with one or two transactions that happen to succeed).
    held: tuple[BucketCount, float] | None = None

    def keep(bucket: BucketCount) -> None:
        nonlocal base_total, base_failed
        if bucket.total:
            baseline.append(bucket)
            base_total += bucket.total
            base_failed += bucket.failed

    def close() -> Iterator[Incident]:
        nonlocal run, held
        incident, run = run, None
        if incident is not None:
            if is_anomalous(incident, rules):
                if incident.reported:
                    yield incident
            else:  # a candidate that did not hold up is ordinary traffic after all
                for bucket in incident.members:
                    keep(bucket)
        if held is not None:
            keep(held[0])
            held = None

    for bucket in buckets:
        in_window = judge_from is None or bucket.start >= judge_from
        if run is not None:
            # A candidate ends where the history gives way to the audited window, and at a gap of
            # two buckets; a single empty bucket counts as a thin one it may bridge.
            follows = run.end(size) if held is None else held[0].start + size
            if in_window != run.reported or bucket.start > follows + size:
                yield from close()
            elif bucket.start == follows + size:
                if held is None:
                    held = (BucketCount(follows, 0, 0), 0.0)
                else:
                    yield from close()
        while baseline and baseline[0].start < bucket.start - history_days * DAY:
            old = baseline.popleft()
            base_total -= old.total
            base_failed -= old.failed
        p0 = (base_failed + 1) / (base_total + 2)
        judgeable = base_total >= MIN_BASELINE
        if in_window:
            tally.unknown_status += bucket.unknown
            if judgeable:
                tally.judged += 1
                if plot is not None and bucket.total:
                    plot("failure_rate", t=from_epoch(bucket.start), value=100 * bucket.failed / bucket.total,
                         expected=100 * p0)
            else:
                tally.no_baseline += 1
        if judgeable and is_elevated(bucket.failed, bucket.total, p0, rules):
            if run is None:
                run = Incident(reported=in_window)
            if held is not None:
                run.add(*held)
                held = None
            run.add(bucket, p0)
        elif run is not None and held is None and bucket.total < rules.min_volume:
            held = (bucket, p0)
        else:
            yield from close()
            keep(bucket)
    yield from close()


def scope_for(failed: int, distinct_customers: int, top_failures: int) -> str:
    """concentrated when the top customer has at least half the failures or at most 2 customers failed."""
    if distinct_customers <= 2 or 2 * top_failures >= failed:
        return "concentrated"
    return "broad"


def severity_for(failure_rate: Decimal, scope: str) -> Severity:
    """Broad: rate >= 50 % critical, >= 25 % high, else medium; concentrated one level lower."""
    level = Severity.CRITICAL if failure_rate >= 50 else Severity.HIGH if failure_rate >= 25 else Severity.MEDIUM
    return Severity(level - 1) if scope == "concentrated" else level


def to_epoch(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(seconds=1)


def from_epoch(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def as_percent(fraction: float) -> Decimal:
    return (Decimal(repr(fraction)) * 100).quantize(CENT)


def span(start: datetime, end: datetime) -> str:
    """'on September 1, 2025 from 14:00 to 16:00', 'on September 1, 2025', or a range over days."""
    last = end - timedelta(seconds=1)
    if start.date() == last.date():
        if end - start == timedelta(days=1):
            return f"on {long_date(start)}"
        stop = "24:00" if end.date() != start.date() else clock(end)
        return f"on {long_date(start)} from {clock(start)} to {stop}"
    return f"from {long_date(start)} {clock(start)} to {long_date(end)} {clock(end)}"


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
    return Finding(check=FailedCheck.name, key=f"failed:{start.isoformat()}",
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
    return Finding(check=FailedCheck.name, key=f"failed:txn:{txn.transaction_id}", severity=Severity.LOW,
                   message=message, fields=fields)


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
        from anomaly_cli.db import count_missing, table

        no_date = count_missing(ctx.conn, table(ctx.schema, "transactions").c.transaction_date)
        ctx.stats.skip("no_date", no_date)
        hi = to_epoch(ctx.end) // size * size  # only complete buckets
        judge_from = lo = None
        if ctx.window.since is not None:
            judge_from = -(-to_epoch(ctx.window.since) // size) * size
            lo = ctx.window.since - timedelta(days=p["history"])
        tally = Tally()
        # The bucket stream is drained before the next query: MySQL cannot interleave open results.
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


def _bucket(ctx: CheckContext, size: int) -> Any:
    from anomaly_cli.db import epoch_seconds, table

    t = table(ctx.schema, "transactions")
    epoch = epoch_seconds(t.c.transaction_date)
    # epoch - epoch % size: integer arithmetic on every engine (MySQL's '/' divides as DECIMAL).
    return t, epoch - epoch % size


def measure_buckets(ctx: CheckContext, size: int, lo: datetime | None, hi: datetime) -> Iterator[BucketCount]:
    """Per bucket in [lo, hi): all transactions, failed ones, and ones with an unknown status."""
    import sqlalchemy as sa

    t, bucket = _bucket(ctx, size)
    status = t.c.status
    where = [t.c.transaction_date < hi]
    if lo is not None:
        where.append(t.c.transaction_date >= lo)
    # Grouping on a subquery column: PostgreSQL would not match a repeated expression with binds.
    sub = sa.select(
        bucket.label("bucket"),
        sa.case((status == ctx.schema.failed_status, 1), else_=0).label("failed"),
        sa.case((status.in_([ctx.schema.failed_status, ctx.schema.success_status]), 0), else_=1).label("unknown"),
    ).where(*where).subquery()
    stmt = (sa.select(sub.c.bucket, sa.func.count(), sa.func.sum(sub.c.failed), sa.func.sum(sub.c.unknown))
            .group_by(sub.c.bucket).order_by(sub.c.bucket))
    for start, total, failed, unknown in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        yield BucketCount(int(start), int(total), int(failed), int(unknown))


def measure_customers(ctx: CheckContext, size: int,
                      incidents: list[Incident]) -> tuple[dict[int, Counter[Any]], dict[Any, str | None]]:
    """Failures per incident and customer (GROUP BY bucket, customer on failed rows), and the names."""
    import sqlalchemy as sa

    from anomaly_cli.db import table

    owner = {b.start: incident.start for incident in incidents for b in incident.members}
    counts: dict[int, Counter[Any]] = {incident.start: Counter() for incident in incidents}
    names: dict[Any, str | None] = {}
    c = table(ctx.schema, "customers")
    for i in range(0, len(incidents), RANGE_CHUNK):
        chunk = incidents[i:i + RANGE_CHUNK]
        t, bucket = _bucket(ctx, size)
        date = t.c.transaction_date
        ranges = [sa.and_(date >= from_epoch(x.start), date < from_epoch(x.end(size))) for x in chunk]
        sub = (sa.select(bucket.label("bucket"), t.c.customer_id, c.c.customer_name)
               .select_from(t.outerjoin(c, t.c.customer_id == c.c.customer_id))
               .where(t.c.status == ctx.schema.failed_status, sa.or_(*ranges)).subquery())
        stmt = (sa.select(sub.c.bucket, sub.c.customer_id, sa.func.max(sub.c.customer_name), sa.func.count())
                .group_by(sub.c.bucket, sub.c.customer_id))
        for start, customer_id, name, n in ctx.conn.execute(stmt):
            counts[owner[int(start)]][customer_id] += int(n)
            names[customer_id] = name
    return counts, names


def measure_failed_transactions(ctx: CheckContext) -> Iterator[FailedTransaction]:
    """Failed transactions in the window with their product names in item order, streamed."""
    import sqlalchemy as sa

    from anomaly_cli.db import table, window_bounds

    t = table(ctx.schema, "transactions")
    c = table(ctx.schema, "customers")
    ti = table(ctx.schema, "transaction_items")
    where = [t.c.status == ctx.schema.failed_status, t.c.transaction_date.is_not(None),
             *window_bounds(t.c.transaction_date, ctx.window.since, ctx.window.until)]
    stmt = (sa.select(t.c.transaction_id, t.c.transaction_date, t.c.customer_id, c.c.customer_name,
                      sa.func.coalesce(ti.c.product_name, ti.c.product_id), ti.c.item_id)
            .select_from(t.outerjoin(c, t.c.customer_id == c.c.customer_id)
                         .outerjoin(ti, ti.c.transaction_id == t.c.transaction_id))
            .where(*where)
            .order_by(t.c.transaction_date, t.c.transaction_id, ti.c.item_id))
    current: list[Any] | None = None
    for txn_id, when, customer_id, name, product, item_id in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        if current is None or current[0] != txn_id:
            if current is not None:
                yield FailedTransaction(*current[:4], tuple(current[4]))
            current = [txn_id, when, customer_id, name, []]
        if item_id is not None:
            current[4].append(product)
    if current is not None:
        yield FailedTransaction(*current[:4], tuple(current[4]))
