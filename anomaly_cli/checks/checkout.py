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
from anomaly_cli.stats import normal_tail, poisson_upper_tail, severity_by_drop
from anomaly_cli.stats import poisson_lower_tail as lower_tail
from anomaly_cli.volume import Basis, Direction, Settings, VolumeJudge
from anomaly_cli.wording import CENT, clock, long_date, percent

HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1)
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
    direction: Direction = Direction.DROP

    @property
    def alpha(self) -> float:
        return normal_tail(self.sensitivity)


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


def is_drop(today: float, expected: float, rules: Rules, weekday: float | None = None) -> bool:
    """today < (1 - drop) x expected, expected >= min_expected, and that few checkouts would happen
    by chance (Poisson at the expected count) less often than the sensitivity's normal tail.

    `weekday` is the same hour of the same weekday last week: when known, today must be below
    (1 - drop) x it too, because three of the four baselines ignore the weekday (a Monday 02:00 or
    a Sunday morning is quieter than the week's average without anything being wrong).
    """
    return (expected >= rules.min_expected and today < (1 - rules.drop) * expected
            and (weekday is None or today < (1 - rules.drop) * weekday)
            and lower_tail(math.floor(today), expected) <= rules.alpha)


def is_spike(today: float, expected: float, rules: Rules, weekday: float | None = None) -> bool:
    """The mirror of is_drop: today above expected / (1 - drop) (twice it by default), also above
    the same weekday's hour when known, and a Poisson upper tail below the sensitivity's."""
    bar = 1 / (1 - rules.drop) if rules.drop < 1 else math.inf
    return (expected >= rules.min_expected and today > bar * expected
            and (weekday is None or today > bar * weekday)
            and poisson_upper_tail(math.ceil(today), expected) <= rules.alpha)


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


def judge(hour: Hour, rules: Rules, history: tuple[float, Direction | None] | None = None) -> Finding | None:
    """The finding for a judgeable hour whose checkouts dropped (or rose, by --direction), else None.

    `history` is the verdict of the table's own weeks for this hour of the week (expected count and
    direction), when there are enough of them: it then decides, the row's baselines only inform.
    """
    assert hour.ts is not None and hour.today is not None
    if history is not None:
        expected, kind = history
        if kind is None:
            return None
    else:
        expected = expected_for(hour)
        weekday = hour.same_day_last_week
        kind = None
        if rules.direction is not Direction.SPIKE and is_drop(hour.today, expected, rules, weekday):
            kind = Direction.DROP
        elif rules.direction is not Direction.DROP and is_spike(hour.today, expected, rules, weekday):
            kind = Direction.SPIKE
        if kind is None:
            return None
    expected = max(expected, 0.01)
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
                   severity=severity_by_drop(drop_pct), message=template_line(fields, kind), fields=fields)


def template_line(fields: dict[str, Any], kind: Direction = Direction.DROP) -> str:
    """'Checkouts fell to 0 from 08:00 to 09:00 on July 12, 2025 against 9.57 expected (...) - a 100.0% drop.'"""
    start, end = fields["bucket_start"], fields["bucket_end"]
    stop = "24:00" if end.date() != start.date() else clock(end)
    known = [f"{label} {fields[name]}" for name, label in (
        ("yesterday", "yesterday"), ("same_day_last_week", "same day last week"),
        ("avg_last_week", "last week's average"), ("avg_last_month", "last month's average"))
        if fields[name] is not None]
    if kind is Direction.SPIKE:
        return (f"Checkouts rose to {fields['today']} from {clock(start)} to {stop} on {long_date(start)} against "
                f"{fields['expected']} expected ({', '.join(known)}) - a {percent(-fields['drop_pct'])} rise.")
    return (f"Checkouts fell to {fields['today']} from {clock(start)} to {stop} on {long_date(start)} against "
            f"{fields['expected']} expected ({', '.join(known)}) - a {percent(fields['drop_pct'])} drop.")


@register
class CheckoutCheck(Check):
    """Hours whose checkouts fall far below (or rise above) what that hour of the week usually holds.

    Reads the hourly checkout table (filled by 'anomaly load checkout'): per hour the checkouts
    today and four baselines, yesterday, the same day last week, the average of last week and of
    last month. Once the table itself holds --min-history earlier weeks of the same hour of the
    week (loaded day after day), that history decides, as in 'scan sales --bucket hour': the median
    of those hours scaled to the current level, a count-aware spread (Poisson plus a
    negative-binomial part measured from the table), --sensitivity sigmas, and any hour under 10 %
    of an expectation of at least --min-expected is a drop however noisy the hours are.

    Before that, the row's own baselines decide. The expected count is their median, so one odd
    day among them moves it little. An hour is a drop when today is below (1 - --drop) times the
    expected count and, when the same day last week is known, below (1 - --drop) times that too
    (three of the four baselines ignore the weekday: a Monday 02:00 or a Sunday morning is quieter
    than the week's average without anything being wrong); the expected count must be at least
    --min-expected (so 0 against 0.4 at 03:00 is not a drop), and that few checkouts must happen by
    chance, at a Poisson rate of the expected count, less often than the normal tail at
    --sensitivity standard deviations (3 means 0.135 %). --direction spike (or both) mirrors the
    rule: above expected / (1 - --drop). Zero hours are judged like any other; a fall over several
    hours is one finding per hour, the first naming its start. Hours with fewer than 2 known
    baselines, or no count today, are skipped and counted; only complete hours (ending by --until
    and by now) are judged; with none, the check is not evaluated.

    Severity by the drop against the expected count: 90 % or more critical, 60 % or more high,
    30 % or more medium, otherwise low. One finding per hour; drop_pct is a percentage with two
    decimals (negative for a rise), expected the median with two.
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
        Param("direction", Direction.DROP, "what to flag: drop, spike or both", kind=Direction),
        Param("history", 8, "weeks of the table's own history an hour is compared with", kind=int, minimum=1),
        Param("min_history", 3, "earlier weeks of the same hour needed before they decide",
              kind=int, minimum=1),
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
        direction = Direction(p.get("direction", Direction.DROP))
        rules = Rules(p["drop"], p["min_expected"], p["sensitivity"], direction)
        weeks, min_history = p.get("history", 8), p.get("min_history", 3)
        from anomaly_cli.checks._rows import count_unusable_dates
        from anomaly_cli.db import table

        # Rows without a usable time, anywhere: counted by a query of their own, never judged.
        unusable = count_unusable_dates(ctx.conn, table(ctx.schema, "checkout").c.ts)
        ctx.stats.skip("no_time", unusable.get("no_date", 0))
        if unusable.get("bad_date"):
            ctx.stats.skip("bad_time", unusable["bad_date"])
        ctx.stats.count(0)
        judge_own = VolumeJudge(Settings.for_bucket(3600, history=weeks, min_history=min(min_history, weeks),
                                                    sensitivity=rules.sensitivity, direction=direction,
                                                    min_expected=rules.min_expected))
        since = ctx.window.since
        seasonal = 0
        for hour in measure(ctx, None if since is None else since - timedelta(weeks=weeks)):
            history: tuple[float, Direction | None] | None = None
            if hour.ts is not None and hour.today is not None:
                index = int((hour.ts - EPOCH).total_seconds()) // 3600
                verdict, _ = judge_own.feed(index, (index + 72) % 168, index % 24, hour.today)
                e = verdict.expectation
                if e is not None and e.basis is Basis.SEASONAL:
                    history = (e.count, verdict.kind)
            if since is not None and hour.ts is not None and hour.ts < since:
                continue  # history only
            reason = skip_reason(hour)
            if reason is not None and not (history is not None and reason == "too_few_baselines"):
                ctx.stats.skip(reason)
                continue
            ctx.stats.count()
            seasonal += history is not None
            finding = judge(hour, rules, history)
            ctx.plot("checkouts", t=hour.ts, value=hour.today,
                     expected=history[0] if history is not None else expected_for(hour), flagged=finding is not None)
            if finding is not None:
                yield finding
        ctx.stats.note("judged_by_own_history", seasonal)
        if not ctx.stats.judged:
            ctx.stats.not_evaluated("no complete hour with a count and two baselines in the window")


def measure(ctx: CheckContext, since: datetime | None) -> Iterator[Hour]:
    """The complete hours from `since` (the window's start less the history weeks), in time order."""
    import sqlalchemy as sa

    from anomaly_cli.db import epoch_seconds, table, window_bounds
    from anomaly_cli.sqlfn import MONEY_LIMIT, is_bad_number, usable_date

    t = table(ctx.schema, "checkout")
    # An hour is complete when it has ended: ts + 1 h <= the end of the window (and now). Only
    # usable times: the others are counted once, anywhere, by count_unusable_dates in run().
    bounds = [usable_date(t.c.ts), t.c.ts <= ctx.end - HOUR, *window_bounds(t.c.ts, since, None)]
    sqlite = ctx.conn.dialect.name == "sqlite"
    # On SQLite the time is read as epoch seconds: no converter sees the stored text.
    when = epoch_seconds(t.c.ts) if sqlite else t.c.ts
    # A value that is no number below MONEY_LIMIT (SQLite: 'abc', a blob, 1e308) makes the hour
    # unjudgeable: found in the same pass, and never read (abs(v) >= limit on other engines).
    columns = [t.c.today, *(t.c[name] for name in BASELINES)]
    bad = sa.or_(*(sa.and_(c.is_not(None), is_bad_number(c, MONEY_LIMIT)) for c in columns))
    stmt = (sa.select(when, sa.case((bad, 1), else_=0), *(sa.case((bad, None), else_=c) for c in columns))
            .where(*bounds).order_by(t.c.ts))
    for row in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        ts = row[0]
        if sqlite and ts is not None:
            ts = EPOCH + timedelta(seconds=int(ts))
        elif sqlite:  # a usable time SQLite still cannot place
            ctx.stats.skip("bad_time")
            continue
        if row[1]:
            ctx.stats.skip("bad_value")
            continue
        try:
            values = [None if v is None else float(v) for v in row[2:]]
        except (TypeError, ValueError):  # defensive: a value the test above let through
            ctx.stats.skip("bad_value")
            continue
        yield Hour(ts, *values)
