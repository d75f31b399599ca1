"""freshness: monitored tables whose newest row is older than their own rhythm allows (a stalled feed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.checks._rows import newest, oldest
from anomaly_cli.model import Finding, Severity
from anomaly_cli.params import Param, parse_duration
from anomaly_cli.wording import clock, long_date

EPOCH = datetime(1970, 1, 1)
HOUR = 3600
WEEK_HOURS = 168
# The monitored tables and their time column (logical names).
TABLES = {"transactions": "transaction_date", "status_counts": "ts", "checkout": "ts"}
# A newest row older than this, with no --max-age, is a copy or an export, not a live feed.
STALE_AFTER = timedelta(days=7)


def _max_age_text(raw: Any) -> str:
    """The param's parse function: a validated duration, kept as text for the params echo."""
    if raw is None or str(raw).strip() == "":
        return ""
    return f"{int(parse_duration(raw).total_seconds())}s"


@dataclass(frozen=True, slots=True)
class Rhythm:
    """How many distinct row times a table usually writes in each hour of the week."""

    per_slot: dict[int, float]  # hour of the week (0 = Monday 00:00) -> median distinct times
    weeks: int  # weeks of history the medians come from (0: pooled over every hour)

    def expected_rows(self, since: datetime, until: datetime) -> float:
        """Rows expected between two moments, hour by hour at each hour's usual rate."""
        total, moment = 0.0, since
        while moment < until:
            following = min(until, moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
            share = (following - moment).total_seconds() / HOUR
            total += self.per_slot.get(slot_of(moment), 0.0) * share
            moment = following
        return total


def slot_of(moment: datetime) -> int:
    return moment.weekday() * 24 + moment.hour


def learn(hours: dict[datetime, int], first: datetime, newest: datetime) -> Rhythm:
    """Median distinct times per hour of the week over the complete hours from `first` to `newest`;
    with less than a week of them, every hour gets the median of all (a pooled, cruder rhythm)."""
    start = first.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)  # the first whole hour
    end = newest.replace(minute=0, second=0, microsecond=0)  # the newest hour may still be filling
    slots: dict[int, list[int]] = {}
    moment = start
    while moment < end:
        slots.setdefault(slot_of(moment), []).append(hours.get(moment, 0))
        moment += timedelta(hours=1)
    seen = [n for values in slots.values() for n in values]
    if not seen:
        return Rhythm({}, 0)
    weeks = min(len(v) for v in slots.values()) if len(slots) == WEEK_HOURS else 0
    if weeks == 0:
        pooled = float(median(seen))
        return Rhythm({s: pooled for s in range(WEEK_HOURS)}, 0)
    return Rhythm({s: float(median(v)) for s, v in slots.items()}, weeks)


def severity_for(times: float) -> Severity:
    """By how many times the reporting bar has passed: once medium, 3 x high, 9 x critical (with the
    default bar of 7 expected gaps: 7, 21 and 63 gaps; with --max-age: 1, 3 and 9 times it)."""
    return Severity.CRITICAL if times >= 9 else Severity.HIGH if times >= 3 else Severity.MEDIUM


def template_line(fields: dict[str, Any]) -> str:
    """'No new rows in status_counts since 14:32 on July 12, 2025: 2 h 5 min, about 125 expected gaps of 60 s.'"""
    newest: datetime = fields["newest"]
    age = int(fields["age_seconds"])
    hours, minutes = divmod(age // 60, 60)
    took = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    gap = fields["expected_gap_seconds"]
    return (f"No new rows in {fields['table']} since {clock(newest)} on {long_date(newest)}: {took}, "
            f"{age / gap:.0f} times the expected gap of {gap:,} s.")


@register
class FreshnessCheck(Check):
    """Monitored tables whose newest row is far older than their own rhythm allows (a stalled feed).

    For each monitored table present (transactions, status_counts, checkout; a missing table is
    skipped, never an error), the newest row time is compared with the end of the window (now,
    or --until). How often a table normally writes is learned from its own last --history weeks:
    the median number of distinct row times in each hour of the week (Monday 09:00 apart from
    Sunday 03:00), or, with less than a week of history, the median of all hours. The rows the
    table should have written since its newest one are summed hour by hour at those rates; the
    expected gap is the age divided by them. A table is reported when at least --gaps (7) expected
    gaps have passed: by chance at a steady rate this happens about once in a thousand times
    (e^-7). A night when the feed normally writes nothing adds nothing, so a quiet night is not a
    stall. With --max-age (e.g. 30m, 2h) the expected gap is that age instead, learned nothing.

    Severity by the expected gaps passed: 7 or more medium, 21 or more high, 63 or more critical
    (with --max-age: once, 3 times and 9 times that age).
    Not evaluated: a table with no rows or too little history to learn a rate (give --max-age),
    and a table whose newest row is more than a week old with no --max-age (a copy, not a live
    feed; the other volume checks judge such a database up to its last row). Fields: table,
    newest, age_seconds, expected_gap_seconds.
    """

    name = "freshness"
    llm_target = "No new rows in [TABLE] since [TIME]: [AGE], [N] times the expected gap."
    llm_advice = "the job or feed that writes the table named"
    order = 5  # first: a stalled feed explains every other check's silence
    params = (
        Param("max_age", "", "report a table whose newest row is older than this (e.g. 30m, 2h) "
              "instead of learning its rhythm", kind=str, parse_fn=_max_age_text),
        Param("gaps", 7.0, "expected gaps that must have passed for a table to be reported",
              kind=float, exclusive_minimum=0),
        Param("history", 4, "weeks of each table's history its rhythm is learned from", kind=int, minimum=1),
    )
    fields = ("table", "newest", "age_seconds", "expected_gap_seconds")
    columns = (
        Column("table", "Table"),
        Column("newest", "Newest row"),
        Column("age_seconds", "Age (s)", "right"),
        Column("expected_gap_seconds", "Expected gap (s)", "right"),
    )
    needs: dict[str, tuple[str, ...]] = {}  # each table is looked for at run time: none is required
    indexes = tuple((table, (column,)) for table, column in TABLES.items())

    def run(self, ctx: CheckContext) -> Iterator[Finding]:

        from anomaly_cli.db import table as mapped

        p = ctx.params
        max_age = int(p["max_age"][:-1]) if p["max_age"] else None
        now = ctx.end
        if ctx.window.since is not None and ctx.window.since >= now:
            ctx.stats.not_evaluated("the window starts after it ends (or in the future): nothing to be fresh by")
            return
        from anomaly_cli import engines

        reasons: dict[str, str] = {}
        for key, column in TABLES.items():
            # The engines' own lookup: it sees views too (Parquet exports are views on DuckDB).
            if key not in ctx.schema.tables or engines.columns(ctx.conn, ctx.schema[key].name,
                                                              ctx.schema.db_schema) is None:
                ctx.stats.skip("missing_table")
                continue
            ts = mapped(ctx.schema, key).c[column]
            last = newest(ctx.conn, ts, ts <= now)
            if last is None:
                reasons[key] = "no rows"
                continue
            newest_row: datetime = last
            age = (now - newest_row).total_seconds()
            if max_age is not None:
                gap, gaps = float(max_age), age / max_age
                limit = 1.0  # an explicit age is its own bar
            else:
                if now - newest_row > STALE_AFTER:
                    reasons[key] = f"newest row {newest_row:%Y-%m-%d %H:%M} is over a week old: a copy, not a live feed"
                    continue
                hours = hour_counts(ctx, ts, newest_row - timedelta(weeks=p["history"]), newest_row)
                rhythm = learn(hours, first_time(ctx, ts, newest_row - timedelta(weeks=p["history"])), newest_row)
                # The report's chart: row times per hour over the last two days up to now.
                moment = (now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
                while moment < now:
                    ctx.plot(ctx.schema[key].name, t=moment, value=hours.get(moment, 0),
                             expected=rhythm.per_slot.get(slot_of(moment), 0.0))
                    moment += timedelta(hours=1)
                if not rhythm.per_slot:
                    reasons[key] = "too little history to learn how often it is written (give --max-age)"
                    continue
                expected = rhythm.expected_rows(newest_row, now)
                ctx.stats.note(f"{key}_history_weeks", rhythm.weeks)
                if expected <= 0:
                    ctx.stats.count()  # judged: nothing was due since its newest row
                    continue
                gap, gaps, limit = age / expected, expected, p["gaps"]
            ctx.stats.count()
            if gaps < limit:
                continue
            fields = {"table": ctx.schema[key].name, "newest": newest_row, "age_seconds": int(age),
                      "expected_gap_seconds": max(1, round(gap))}
            severity = severity_for(gaps / limit)
            yield Finding(check=self.name, key=f"freshness:{key}:{newest_row.isoformat()}", severity=severity,
                          message=template_line(fields), fields=fields)
        for key, why in reasons.items():
            ctx.stats.note(f"{key}_not_judged", why)
        if not ctx.stats.judged:
            ctx.stats.not_evaluated("; ".join(f"{k}: {v}" for k, v in reasons.items()) or "no monitored table found")


def first_time(ctx: CheckContext, ts: Any, since: datetime) -> datetime:
    first = oldest(ctx.conn, ts, ts >= since)
    return first if isinstance(first, datetime) else since


def hour_counts(ctx: CheckContext, ts: Any, since: datetime, until: datetime) -> dict[datetime, int]:
    """Distinct row times per hour (GROUP BY hour) from `since` up to `until`."""
    import sqlalchemy as sa

    from anomaly_cli.db import epoch_seconds

    epoch = epoch_seconds(ts)
    sub = sa.select((epoch - epoch % HOUR).label("hour"), ts.label("ts")).where(ts >= since, ts <= until).subquery()
    stmt = sa.select(sub.c.hour, sa.func.count(sa.distinct(sub.c.ts))).group_by(sub.c.hour)
    out: dict[datetime, int] = {}
    for hour, n in ctx.conn.execute(stmt):
        if hour is not None:  # a time SQLite cannot read: not part of the rhythm
            out[EPOCH + timedelta(seconds=int(hour))] = int(n)
    return out

