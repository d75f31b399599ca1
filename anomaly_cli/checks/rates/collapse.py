"""rates: the volume side, approvals per quarter hour against the same time on earlier days.

The trailing baseline (judge.py) compares a bucket with the last hour, so it sees sudden falls;
a fall from thousands a quarter hour to almost nothing over several hours moves the last hour
down with it. Here each quarter hour's approvals are judged by the shared volume judgement
(anomaly_cli/volume.py): the same quarter hour of the week over earlier weeks when there are
enough of them, else the same quarter hour of the recent days (yesterday, when that is all there
is). Flagged quarter hours, a quarter hour apart at most, make one incident; its start is moved
back over the quarter hours just before it that were already below half their expectation, so
a gradual fall is reported from where it began.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anomaly_cli.buckets import clock_span, fill, from_epoch
from anomaly_cli.checks.rates.rules import Rules, Source
from anomaly_cli.checks.rates.wording import severity_for
from anomaly_cli.model import Finding
from anomaly_cli.stats import as_percent
from anomaly_cli.volume import Direction, Settings, VolumeJudge

if TYPE_CHECKING:
    from anomaly_cli.checks import CheckContext

WINDOW = 900  # seconds: a quarter hour
GAP = 6 * 3600  # a longer silence is missing data (as in baseline.fill), not zeros
STATUS = {Direction.DROP: "approved_drop", Direction.SPIKE: "approved_spike"}


@dataclass(frozen=True, slots=True)
class Window:
    start: int  # epoch seconds
    approved: int
    total: int


@dataclass(slots=True)
class Judged:
    window: Window
    expected: float  # approvals
    expected_total: float
    kind: Direction | None


class _Gap:
    """A silence longer than GAP."""


def judge_windows(windows: Iterable[Window], rules: Rules, direction: Direction, *,
                  history: int = 8) -> Iterator[Judged]:
    """Every window with an expectation, in time order (long silences skipped, short ones zeros)."""
    settings = Settings.for_bucket(WINDOW, history=history, direction=direction, min_expected=rules.min_volume,
                                   min_recent=1)
    judge = VolumeJudge(settings)
    per_day = 86400 // WINDOW
    for item in fill(windows, lambda w: w.start, lambda s: Window(s, 0, 0), WINDOW, max_gap=GAP, gap=_Gap):
        if isinstance(item, _Gap):
            continue
        index = item.start // WINDOW
        verdict, _ = judge.feed(index, (index + 3 * per_day) % (7 * per_day), index % per_day,
                                item.approved, item.total)
        e = verdict.expectation
        if e is not None:
            yield Judged(item, e.count, e.extra, verdict.kind)


def incidents(judged: Iterable[Judged]) -> Iterator[list[Judged]]:
    """Flagged windows at most one window apart, each incident with the windows before it that
    were already past half way (below half the expectation for a drop, over twice it for a rise)."""
    lead: list[Judged] = []  # consecutive unflagged windows past half way, just before this one
    lead_side: Direction | None = None
    current: list[Judged] = []
    kind: Direction | None = None
    quiet: list[Judged] = []  # an unflagged window after the incident: bridged if another follows
    for j in judged:
        if current:
            if j.kind is kind:
                current += [*quiet, j]
                quiet = []
                continue
            if j.kind is None and not quiet:
                quiet = [j]
                continue
            yield current
            current, quiet = [], []
        if j.kind is not None:
            current = [*lead, j] if lead and lead_side is j.kind else [j]
            kind, lead = j.kind, []
            continue
        side = (Direction.DROP if j.window.approved < 0.5 * j.expected else
                Direction.SPIKE if j.expected > 0 and j.window.approved > 2 * j.expected else None)
        if side is None:
            lead = []
        elif lead and lead_side is side:
            lead.append(j)
        else:
            lead, lead_side = [j], side
    if current:
        yield current


def describe(members: list[Judged], rules: Rules) -> Finding:
    flagged = [m for m in members if m.kind is not None]
    kind = flagged[0].kind
    assert kind is not None
    start, end = members[0].window.start, members[-1].window.start + WINDOW
    count = sum(m.window.approved for m in members)
    total = sum(m.window.total for m in members)
    expected = sum(m.expected for m in members)
    expected_total = sum(m.expected_total for m in members)
    collapsed = any(m.window.approved < 0.1 * m.expected for m in flagged) if kind is Direction.DROP else \
        any(m.window.approved > 10 * m.expected for m in flagged)
    score = 100 if collapsed else 70
    minutes = (end - start) // 60
    severity = severity_for(minutes, score, len(flagged), True)
    fields: dict[str, Any] = {
        "bucket_start": from_epoch(start),
        "bucket_end": from_epoch(end),
        "status": STATUS[kind],
        "count": count,
        "total": total,
        "rate": as_percent(count / total) if total else as_percent(0.0),
        "expected_rate": as_percent(min(1.0, expected / expected_total)) if expected_total else as_percent(0.0),
        "score": score,
        "persistence_minutes": minutes,
    }
    windows = len(members)
    verb = "fell" if kind is Direction.DROP else "rose"
    message = (f"Approved transactions {verb} to {count / windows:,.0f} per 15 minutes (expected "
               f"{expected / windows:,.0f} at this time on earlier days) "
               f"{clock_span(fields['bucket_start'], fields['bucket_end'])} - {minutes} minutes, score {score}.")
    return Finding(check="rates", key=f"rates:{fields['status']}:{fields['bucket_start'].isoformat()}",
                   severity=severity or severity_for(15, 90, 3, True), message=message, fields=fields)  # type: ignore[arg-type]


def find(ctx: CheckContext, source: Source, rules: Rules, direction: Direction, report_from: int | None,
         end: int, history: int = 8) -> list[Finding]:
    """The volume-side findings of the window (incidents ending after report_from)."""
    lo = None if report_from is None else report_from - history * 7 * 86400
    judged = judge_windows(measure(ctx, source, rules.approved, lo, end), rules, direction, history=history)
    out = []
    for members in incidents(judged):
        if report_from is None or members[-1].window.start + WINDOW > report_from:
            out.append(describe(members, rules))
    return out


def measure(ctx: CheckContext, source: Source, approved: str, lo: int | None, hi: int) -> Iterator[Window]:
    """Approvals and all transactions per quarter hour (GROUP BY the window), in time order."""
    import sqlalchemy as sa

    from anomaly_cli.db import epoch_seconds, table

    if source is Source.COUNTS:
        t = table(ctx.schema, "status_counts")
        ts, amount, ok = t.c.ts, t.c.count, sa.func.lower(t.c.status) == approved
    else:
        t = table(ctx.schema, "transactions")
        ts, amount, ok = t.c.transaction_date, sa.literal(1), t.c.status == ctx.schema.success_status
    epoch = epoch_seconds(ts)
    where = [ts < from_epoch(hi)]
    if lo is not None:
        where.append(ts >= from_epoch(lo))
    sub = sa.select((epoch - epoch % WINDOW).label("window"), sa.case((ok, amount), else_=0).label("ok"),
                    amount.label("n")).where(*where).subquery()
    stmt = (sa.select(sub.c.window, sa.func.sum(sub.c.ok), sa.func.sum(sub.c.n))
            .group_by(sub.c.window).order_by(sub.c.window))
    for start, ok_n, n in ctx.conn.execution_options(yield_per=1000).execute(stmt):
        if start is not None:  # a time SQLite cannot read: counted by the main query's caller
            yield Window(int(start), int(ok_n or 0), int(n or 0))

