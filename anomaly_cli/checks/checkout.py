"""checkout: hours whose checkouts fall far below their four baselines (yesterday, last week, averages)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.model import Finding
from anomaly_cli.params import Param
from anomaly_cli.stats import normal_tail, severity_by_drop
from anomaly_cli.wording import CENT, clock, long_date, percent

HOUR = timedelta(hours=1)
BASELINES = ("yesterday", "same_day_last_week", "avg_last_week", "avg_last_month")
MIN_BASELINES = 2  # fewer known baselines than this and an hour is not judged


@dataclass(frozen=True, slots=True)
class Hour:
    """One row of the checkout table: the hour's checkouts today and its four baselines."""

    ts: datetime | None
    today: float | None
    yesterday: float | None
    same_day_last_week: float | None
    avg_last_week: float | None
    avg_last_month: float | None

    @property
    def baselines(self) -> list[float]:
        return [v for v in (self.yesterday, self.same_day_last_week, self.avg_last_week, self.avg_last_month)
                if v is not None]


@dataclass(frozen=True, slots=True)
class Rules:
    drop: float = 0.5
    min_expected: float = 5.0
    sensitivity: float = 3.0

    @property
    def alpha(self) -> float:
        return normal_tail(self.sensitivity)


def lower_tail(k: int, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam), summed from where the terms are largest (log-space start)."""
    if k < 0:
        return 0.0
    if lam <= 0:
        return 1.0

    def pmf(j: int) -> float:
        return math.exp(j * math.log(lam) - lam - math.lgamma(j + 1))

    if k < lam:  # the terms fall from k downwards
        term = total = pmf(k)
        for j in range(k, 0, -1):
            term *= j / lam
            total += term
            if term <= total * 1e-16:
                break
        return min(total, 1.0)
    # k at or above the mean: 1 - P(X > k), whose terms fall from k + 1 upwards
    term = upper = pmf(k + 1)
    j = k + 1
    while term > upper * 1e-16:
        term *= lam / (j + 1)
        upper += term
        j += 1
    return max(0.0, 1.0 - upper)


def skip_reason(hour: Hour) -> str | None:
    if hour.ts is None:
        return "no_time"
    if hour.today is None:
        return "no_today"
    if len(hour.baselines) < MIN_BASELINES:
        return "too_few_baselines"
    return None


def expected_for(hour: Hour) -> float:
    """The median of the known baselines: one odd day (a holiday last week) cannot move it much."""
    return float(median(hour.baselines))


def is_drop(today: float, expected: float, rules: Rules) -> bool:
    """today < (1 - drop) x expected, expected >= min_expected, and that few checkouts would happen
    by chance (Poisson at the expected count) less often than the sensitivity's normal tail."""
    return (expected >= rules.min_expected and today < (1 - rules.drop) * expected
            and lower_tail(math.floor(today), expected) <= rules.alpha)


def decimal(value: float | None) -> Decimal | None:
    """An average (or expected count) as a Decimal with 2 places."""
    if value is None:
        return None
    return Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_HALF_UP)


def number(value: float | None) -> int | Decimal | None:
    """A count as an int when whole (as counts are), else as a Decimal with 2 places."""
    if value is not None and float(value).is_integer():
        return int(value)
    return decimal(value)


def judge(hour: Hour, rules: Rules) -> Finding | None:
    """The finding for a judgeable hour whose checkouts dropped, else None."""
    assert hour.ts is not None and hour.today is not None
    expected = expected_for(hour)
    if not is_drop(hour.today, expected, rules):
        return None
    exact = Decimal(repr(expected))
    drop_pct = ((exact - Decimal(repr(float(hour.today)))) / exact * 100).quantize(CENT, rounding=ROUND_HALF_UP)
    fields = {
        "bucket_start": hour.ts,
        "bucket_end": hour.ts + HOUR,
        "today": number(hour.today),
        "expected": decimal(expected),
        "drop_pct": drop_pct,
        "yesterday": number(hour.yesterday),
        "same_day_last_week": number(hour.same_day_last_week),
        "avg_last_week": decimal(hour.avg_last_week),
        "avg_last_month": decimal(hour.avg_last_month),
    }
    return Finding(check=CheckoutCheck.name, key=f"checkout:{hour.ts.isoformat()}",
                   severity=severity_by_drop(drop_pct), message=template_line(fields), fields=fields)


def template_line(fields: dict[str, Any]) -> str:
    """'Checkouts fell to 0 from 08:00 to 09:00 on July 12, 2025 against 9.57 expected (...) - a 100.0% drop.'"""
    start, end = fields["bucket_start"], fields["bucket_end"]
    stop = "24:00" if end.date() != start.date() else clock(end)
    known = [f"{label} {fields[name]}" for name, label in (
        ("yesterday", "yesterday"), ("same_day_last_week", "same day last week"),
        ("avg_last_week", "last week's average"), ("avg_last_month", "last month's average"))
        if fields[name] is not None]
    return (f"Checkouts fell to {fields['today']} from {clock(start)} to {stop} on {long_date(start)} against "
            f"{fields['expected']} expected ({', '.join(known)}) - a {percent(fields['drop_pct'])} drop.")


@register
class CheckoutCheck(Check):
    """Hours whose checkouts fall far below their baselines (yesterday, last week, averages).

    Reads the hourly checkout table (filled by 'anomaly load checkout'): per hour the checkouts
    today and four baselines, yesterday, the same day last week, the average of last week and of
    last month. The expected count is the median of the known baselines, so one odd day among them
    moves it little. An hour is flagged when today is below (1 - --drop) times the expected count,
    the expected count is at least --min-expected (so 0 against 0.4 at 03:00 is not a drop), and
    that few checkouts would happen by chance, at a Poisson rate of the expected count, less often
    than the normal tail at --sensitivity standard deviations (3 means 0.135 %). Zero hours are
    judged like any other. Hours with fewer than 2 known baselines, or no count today, are
    skipped and counted; only complete hours (ending by --until and by now) are judged.

    Severity by the drop against the expected count: 90 % or more critical, 60 % or more high,
    30 % or more medium, otherwise low. One finding per hour; drop_pct is a percentage with two
    decimals, expected the median with two.
    """

    name = "checkout"
    llm_advice = "the checkout flow for the hours named"
    order = 60
    optional = True  # reads a table a shop database may not have
    params = (
        Param("drop", 0.5, "fraction below the expected count that counts as a drop",
              kind=float, exclusive_minimum=0, maximum=1),
        Param("min_expected", 5.0, "smallest expected hourly count that is judged", kind=float,
              exclusive_minimum=0),
        Param("sensitivity", 3.0, "significance in standard deviations (higher reports fewer)",
              kind=float, exclusive_minimum=0),
    )
    fields = ("bucket_start", "bucket_end", "today", "expected", "drop_pct", "yesterday", "same_day_last_week",
              "avg_last_week", "avg_last_month")
    columns = (
        Column("bucket_start", "Hour"),
        Column("today", "Today", "right"),
        Column("expected", "Expected", "right"),
        Column("drop_pct", "Drop %", "right"),
        Column("yesterday", "Yesterday", "right"),
        Column("same_day_last_week", "Last wk day", "right"),
        Column("avg_last_week", "Avg wk", "right"),
        Column("avg_last_month", "Avg month", "right"),
    )
    needs = {"checkout": ("ts", "today", *BASELINES)}

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        p = ctx.params
        rules = Rules(p["drop"], p["min_expected"], p["sensitivity"])
        from anomaly_cli.db import count_missing, table

        # Counted by a query of their own, never judged.
        no_time = count_missing(ctx.conn, table(ctx.schema, "checkout").c.ts)
        ctx.stats.skip("no_time", no_time)
        ctx.stats.count(0)
        for hour in measure(ctx):
            reason = skip_reason(hour)
            if reason is not None:
                ctx.stats.skip(reason)
                continue
            ctx.stats.count()
            finding = judge(hour, rules)
            ctx.plot("checkouts", t=hour.ts, value=hour.today, expected=expected_for(hour), flagged=finding is not None)
            if finding is not None:
                yield finding
        if not ctx.stats.judged:
            ctx.stats.not_evaluated("no complete hour with a count and two baselines in the window")


def measure(ctx: CheckContext) -> Iterator[Hour]:
    """The complete hours in the window, in time order (rows without a time: see _findings)."""
    import sqlalchemy as sa

    from anomaly_cli.db import table, window_bounds

    t = table(ctx.schema, "checkout")
    # An hour is complete when it has ended: ts + 1 h <= the end of the window (and now).
    bounds = [t.c.ts <= ctx.end - HOUR, *window_bounds(t.c.ts, ctx.window.since, None)]
    stmt = sa.select(t.c.ts, t.c.today, *(t.c[name] for name in BASELINES)).where(*bounds).order_by(t.c.ts)
    for row in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        yield Hour(row[0], *(None if v is None else float(v) for v in row[1:]))
