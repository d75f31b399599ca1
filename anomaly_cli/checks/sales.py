"""sales: days (or hours) whose successful sales fall far below their own seasonal history."""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.errors import UsageError
from anomaly_cli.model import CheckStats, Finding
from anomaly_cli.params import Param
from anomaly_cli.stats import severity_by_drop
from anomaly_cli.wording import CENT, clock, long_date

EPOCH = datetime(1970, 1, 1)
WEEK_SECONDS = 7 * 86400
# Data whose last row is older than this is a copy, not a live shop (see _findings).
STALE_AFTER = timedelta(days=7)
MAD_SCALE = 1.4826  # turns a median absolute deviation into a standard deviation (normal data)
HUNDRED = Decimal(100)
TENTH = Decimal("0.1")


class BucketSize(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"

    @property
    def seconds(self) -> int:
        return 86400 if self is BucketSize.DAY else 3600


class Direction(enum.StrEnum):
    DROP = "drop"
    SPIKE = "spike"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Measured:
    """One bucket as the database aggregated it (index = epoch seconds // bucket size)."""

    index: int
    transactions: int  # successful transactions
    revenue_cents: int  # their total_amount, in whole cents (NULL amounts left out)
    without_amount: int  # successful transactions with a NULL amount
    rows: int  # rows of any status: tells an empty window from a window with no sales


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a bucket is expected to hold, from its comparable history."""

    transactions: float  # median count
    revenue_cents: float  # median revenue
    sigma: float  # robust standard deviation of count - median, never below the Poisson sqrt(median)
    size: int  # comparable buckets it was computed from


@dataclass(frozen=True, slots=True)
class Verdict:
    baseline: Baseline | None  # None: too little history to judge
    kind: Direction | None  # DROP or SPIKE when flagged, else None


def median_error(n: int) -> float:
    """Var(x - median of n past values) / Var(x): a median of few values is itself uncertain."""
    return 2.0 if n == 1 else 1.5 if n == 2 else 1 + math.pi / (2 * n)


def baseline(history: Sequence[tuple[int, int]], dispersion: float | None) -> Baseline:
    """Median of (transactions, revenue_cents) pairs and the sigma a new count is judged by.

    spread = sqrt(max(median, 1)) x dispersion: counts vary at least like a Poisson variable, so
    a flat history does not make every small dip significant. Without a pooled dispersion yet,
    the history's own spread: max(1.4826 x MAD, sqrt(max(median, 1))). sigma widens the spread
    by the median's own uncertainty (a prediction interval), which matters with 3 to 5 buckets.
    """
    counts = [c for c, _ in history]
    mid = median(counts)
    root = math.sqrt(max(mid, 1.0))
    if dispersion is None:
        spread = max(MAD_SCALE * median(abs(c - mid) for c in counts), root)
    else:
        spread = root * dispersion
    sigma = spread * math.sqrt(median_error(len(counts)))
    return Baseline(float(mid), float(median(r for _, r in history)), sigma, len(history))


def assess(transactions: int, base: Baseline, sensitivity: float, direction: Direction) -> Direction | None:
    """DROP or SPIKE when the count is beyond sensitivity x sigma from the median, else None."""
    deviation = transactions - base.transactions
    if direction is not Direction.SPIKE and -deviation > sensitivity * base.sigma:
        return Direction.DROP
    if direction is not Direction.DROP and deviation > sensitivity * base.sigma:
        return Direction.SPIKE
    return None


def drop_pct(transactions: int, expected: float) -> Decimal:
    """Signed: positive for a drop, negative for a rise; an expectation below 1 counts as 1."""
    return (Decimal(str(expected)) - transactions) / Decimal(str(max(expected, 1.0))) * HUNDRED


class SeasonalJudge:
    """Judges consecutive buckets, each against the same phase of the previous `history` periods.

    Fed every bucket in order (gaps filled with zeros), it keeps per phase (weekday, or weekday
    and hour) the last `history` buckets. A flagged bucket stays in that trailing window but is
    left out of later baselines, so one outage never lowers the bar for the weeks after it.

    Three to eight comparable buckets are too few to measure spread reliably (their MAD is often
    near zero by chance), so the spread is pooled over all phases: every unflagged bucket leaves
    its residual against its own median, in units of sqrt(median) and corrected for the median's
    own uncertainty, and 1.4826 x MAD of the last period x history residuals (at least 1: the
    Poisson floor) scales every phase's sqrt(median).
    """

    def __init__(self, period: int, history: int, min_history: int, sensitivity: float,
                 direction: Direction) -> None:
        self.period, self.history, self.min_history = period, history, min_history
        self.sensitivity, self.direction = sensitivity, direction
        self._past: dict[int, deque[tuple[int, int, bool]]] = {}
        self._residuals: deque[float] = deque(maxlen=period * history)
        # The pool moves slowly, so it is measured once a day of buckets (hourly: 1344 residuals).
        self._refresh_every = max(1, period // 7)
        self._fresh: float | None = None
        self._added = 0

    def dispersion(self) -> float | None:
        """How many Poisson sigmas one robust sigma is (>= 1); None before a period of residuals."""
        if len(self._residuals) < self.period:
            return None
        if self._fresh is None or self._added >= self._refresh_every:
            mid = median(self._residuals)
            self._fresh = max(1.0, MAD_SCALE * median(abs(z - mid) for z in self._residuals))
            self._added = 0
        return self._fresh

    def judge(self, index: int, transactions: int, revenue_cents: int) -> Verdict:
        past = self._past.setdefault(index % self.period, deque(maxlen=self.history))
        usable = [(count, revenue) for count, revenue, flagged in past if not flagged]
        base: Baseline | None = None
        kind: Direction | None = None
        if len(usable) >= self.min_history:
            base = baseline(usable, self.dispersion())
            kind = assess(transactions, base, self.sensitivity, self.direction)
        if usable and kind is None:
            mid = median(count for count, _ in usable)
            scale = math.sqrt(max(mid, 1.0) * median_error(len(usable)))
            self._residuals.append((transactions - mid) / scale)
            self._added += 1
        # Appended after judging: a bucket is never part of its own baseline.
        past.append((transactions, revenue_cents, kind is not None))
        return Verdict(base, kind)


def fill(rows: Iterable[Measured], end: int) -> Iterator[Measured]:
    """Every bucket from the first measured one up to `end` (exclusive), gaps as zero buckets.

    A day with no rows is absent from a GROUP BY, yet it is the strongest signal there is.
    """
    following: int | None = None
    for row in rows:
        if row.index >= end:
            continue
        if following is not None:
            yield from (Measured(i, 0, 0, 0, 0) for i in range(following, row.index))
        yield row
        following = row.index + 1
    if following is not None:
        yield from (Measured(i, 0, 0, 0, 0) for i in range(following, end))


def start_of(index: int, size: BucketSize) -> datetime:
    return EPOCH + timedelta(seconds=index * size.seconds)


def index_of(moment: datetime, size: BucketSize) -> int:
    """The bucket holding `moment` (floor division, as the database's epoch - epoch % size)."""
    return int((moment - EPOCH).total_seconds()) // size.seconds


def sales_amount(value: Decimal, currency: str) -> str:
    """The seed's amounts: ₹333,200 when whole, ₹3,570.50 otherwise."""
    amount = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{currency}{amount:,.0f}" if amount == amount.to_integral_value() else f"{currency}{amount:,.2f}"


def template_line(fields: dict[str, Any], size: BucketSize, kind: Direction, currency: str) -> str:
    """The seed's sentence: 'September 15, 2025: 17 transactions, ₹333,200 sales - low performance'."""
    start: datetime = fields["bucket_start"]
    when = long_date(start) if size is BucketSize.DAY else f"{long_date(start)} {clock(start)}"
    verdict = "low performance" if kind is Direction.DROP else "unusually high sales"
    return (f"{when}: {fields['transactions']} transactions, "
            f"{sales_amount(fields['revenue'], currency)} sales - {verdict}")


def make_finding(bucket: Measured, verdict: Verdict, size: BucketSize, currency: str) -> Finding:
    assert verdict.baseline is not None and verdict.kind is not None
    base = verdict.baseline
    start = start_of(bucket.index, size)
    change = drop_pct(bucket.transactions, base.transactions)
    fields = {
        "bucket_start": start,
        "bucket_end": start_of(bucket.index + 1, size),
        "transactions": bucket.transactions,
        "revenue": (Decimal(bucket.revenue_cents) / HUNDRED).quantize(CENT),
        "expected_transactions": Decimal(str(base.transactions)).quantize(TENTH, rounding=ROUND_HALF_UP),
        "expected_revenue": (Decimal(str(base.revenue_cents)) / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP),
        "drop_pct": change.quantize(CENT, rounding=ROUND_HALF_UP),
    }
    return Finding(
        check=SalesCheck.name,
        key=f"sales:{size.value}:{start.isoformat()}",
        severity=severity_by_drop(change),
        message=template_line(fields, size, verdict.kind, currency),
        fields=fields,
    )


@register
class SalesCheck(Check):
    """Days (or hours) whose successful transactions fall far below their own seasonal history.

    Successful transactions are counted per --bucket (day or hour); a bucket with no sales counts
    as zero. Each complete bucket is compared with the same weekday (for hours: the same weekday
    and hour) in each of the previous --history weeks, so a quiet Sunday is compared with Sundays
    while a Wednesday as quiet as a Sunday stands out. The expectation is the median of those
    comparable buckets. The robust sigma is the square root of that median (a Poisson floor, so a
    flat history does not make every small dip significant) times a dispersion of at least 1:
    1.4826 x MAD of the recent residuals of all buckets, pooled because 3 to 8 comparable buckets
    are too few to measure spread on their own; it is widened for the uncertainty of a median of
    few buckets. A bucket is flagged when it lies more than --sensitivity sigmas below the median
    (above it for --direction spike, either way for both). Flagged buckets stay out of later
    baselines, so one outage never hides the next.

    Not judged: buckets with fewer than --min-history comparable buckets, the current incomplete
    bucket (a morning run does not report today as down), and anything when the window holds no
    transactions of any status (data not loaded is not an outage). Severity by the drop (or
    rise) against the median: 90 % or more critical, 60 % or more high, 30 % or more medium,
    otherwise low. Revenue is shown beside its median but not judged: a few large orders make it
    too noisy. Rows without a date are skipped and counted; a sale without an amount counts as a
    transaction and adds nothing to revenue (counted too); other statuses are ignored. With
    --since, the --history weeks before it are read for the baseline, and --since is rounded down
    to the start of its bucket.
    """

    name = "sales"
    llm_target = "[DATE]: [TRANSACTIONS] transactions, [AMOUNT] sales - low performance"
    llm_advice = "checkout, payment gateway and site health for the periods named"
    order = 20
    indexes = (("transactions", ("transaction_date", "status", "total_amount")),)  # covering
    params = (
        Param("bucket", BucketSize.DAY, "size of the buckets sales are counted in: day or hour",
              kind=BucketSize),
        Param("history", 8, "weeks of history each bucket is compared with (same weekday, and hour)",
              kind=int, minimum=1, maximum=520),
        Param("min_history", 3, "comparable past buckets needed before a bucket is judged",
              kind=int, minimum=1),
        Param("sensitivity", 3.0, "flag buckets beyond this many robust standard deviations",
              kind=float, exclusive_minimum=0),
        Param("direction", Direction.DROP, "what to flag: drop, spike or both", kind=Direction),
    )
    fields = ("bucket_start", "bucket_end", "transactions", "revenue", "expected_transactions",
              "expected_revenue", "drop_pct")
    columns = (
        Column("bucket_start", "Bucket"),
        Column("transactions", "Txns", "right"),
        Column("expected_transactions", "Expected", "right"),
        Column("revenue", "Revenue", "right"),
        Column("drop_pct", "Drop %", "right"),
    )
    needs = {"transactions": ("transaction_date", "status", "total_amount")}

    @classmethod
    def validate(cls, params: dict[str, Any]) -> None:
        if params["min_history"] > params["history"]:
            raise UsageError(f"--min-history {params['min_history']} is more than --history {params['history']}: "
                             "no bucket could ever be judged")

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        p = ctx.params
        stats = ctx.stats
        stats.count(0)
        size: BucketSize = BucketSize(p["bucket"])
        period = WEEK_SECONDS // size.seconds
        moment = ctx.end
        if ctx.window.until is None:
            last = last_data(ctx)
            if last is not None and last < ctx.now - STALE_AFTER:
                # A copy or an export, not a live shop: the days after its last row are not
                # outages. (A live blackout is reported for STALE_AFTER before this applies.)
                moment = last
                stats.note("data_ends", f"{last:%Y-%m-%d %H:%M}; judged up to there (give --until to judge later)")
        end = index_of(moment, size)  # the first incomplete bucket: judged buckets end by `moment`
        start = index_of(ctx.window.since, size) if ctx.window.since is not None else None
        if start_of(end, size) < moment and (start is None or start <= end):
            stats.skip("incomplete")
        load_from = start - p["history"] * period if start is not None else None

        judge = SeasonalJudge(period, p["history"], p["min_history"], p["sensitivity"], Direction(p["direction"]))
        seen_rows = False
        held: list[Finding] = []  # findings before the window's first row: dropped if it has none
        without_amount = 0
        measured = measure(ctx, size, load_from, end, stats)
        for bucket in fill(measured, end):
            verdict = judge.judge(bucket.index, bucket.transactions, bucket.revenue_cents)
            if start is not None and bucket.index < start:
                continue  # history only: judged so that its own anomalies stay out of baselines
            seen_rows = seen_rows or bucket.rows > 0
            without_amount += bucket.without_amount
            if verdict.baseline is None:
                stats.skip("short_history")
                continue
            stats.count()
            ctx.plot("volume", t=start_of(bucket.index, size), value=bucket.transactions,
                     expected=verdict.baseline.transactions, band=p["sensitivity"] * verdict.baseline.sigma,
                     flagged=verdict.kind is not None)
            if verdict.kind is None:
                continue
            finding = make_finding(bucket, verdict, size, ctx.currency)
            if seen_rows:
                yield from held
                held.clear()
                yield finding
            else:
                held.append(finding)
        stats.note("without_amount", without_amount)
        if not seen_rows:
            # No rows of any status: more likely data not loaded (yet) than a shop with no
            # customers at all, so nothing is reported and the summary says why.
            stats.judged = 0
            if start is not None and start >= end:
                stats.not_evaluated(f"the window holds no complete {size.value}")
            else:
                since = f"from {start_of(start, size):%Y-%m-%d %H:%M} " if start is not None else ""
                stats.not_evaluated(f"no transactions {since}before {start_of(end, size):%Y-%m-%d %H:%M}")
        elif not stats.judged:
            stats.not_evaluated("not enough history before the window to judge any "
                                f"{size.value} (--min-history {p['min_history']} weeks)")


def last_data(ctx: CheckContext) -> datetime | None:
    """The newest transaction date, of any status (an index on the date makes this instant)."""
    import sqlalchemy as sa

    from anomaly_cli.db import table

    t = table(ctx.schema, "transactions")
    return ctx.conn.execute(sa.select(sa.func.max(t.c.transaction_date))).scalar()


def measure(ctx: CheckContext, size: BucketSize, load_from: int | None, end: int,
            stats: CheckStats) -> Iterator[Measured]:
    """Per-bucket aggregates from the database, in bucket order; sales without a date only counted."""
    import sqlalchemy as sa

    from anomaly_cli.db import cents, count_missing, epoch_seconds, table

    t = table(ctx.schema, "transactions")
    epoch = epoch_seconds(t.c.transaction_date)
    success = t.c.status == ctx.schema.success_status
    bounds = [t.c.transaction_date < start_of(end, size)]  # nothing after the last complete bucket
    if load_from is not None:
        bounds.append(t.c.transaction_date >= start_of(load_from, size))
    rows = (
        sa.select(
            # The bucket's start as epoch - epoch % size: integer arithmetic on every engine,
            # where a division could round (or turn into a decimal) differently.
            (epoch - epoch % size.seconds).label("bucket"),
            sa.case((success, 1), else_=0).label("ok"),
            sa.case((success, cents(t.c.total_amount)), else_=None).label("cents"),
            sa.case((sa.and_(success, t.c.total_amount.is_(None)), 1), else_=0).label("no_amount"),
        )
        .where(*bounds)
        .subquery()
    )
    stats.skip("no_date", count_missing(ctx.conn, t.c.transaction_date, success))
    # Grouping by the subquery's column, not the expression: PostgreSQL would not match two
    # copies of an expression with separately bound parameters.
    stmt = (
        sa.select(rows.c.bucket, sa.func.sum(rows.c.ok), sa.func.sum(rows.c.cents),
                  sa.func.sum(rows.c.no_amount), sa.func.count())
        .group_by(rows.c.bucket)
        .order_by(rows.c.bucket)
    )
    for bucket, ok, revenue, no_amount, count in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        yield Measured(int(bucket) // size.seconds, int(ok or 0), int(revenue or 0), int(no_amount or 0),
                       int(count))
