"""sales: days (or hours) whose successful sales fall far below their own seasonal history.

One concern per module: buckets (sizes, measured buckets, their slots of the week), wording
(findings and sentences), sql (what is read from the database).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.checks.sales.buckets import (WEEK_SECONDS, BucketSize, Measured, _zone, fill, index_of, slots,
                                              start_of)
from anomaly_cli.checks.sales.sql import KEY_INDEX, fresh, index_key, last_data, measure, read
from anomaly_cli.checks.sales.wording import NAME, drop_pct, make_finding, sales_amount, template_line
from anomaly_cli.errors import UsageError
from anomaly_cli.model import Finding
from anomaly_cli.params import Param
from anomaly_cli.volume import Basis, Direction, Flag, Settings, VolumeJudge
from anomaly_cli.volume_dst import may_not_exist

__all__ = ["BucketSize", "Direction", "Measured", "SalesCheck", "drop_pct", "fill", "index_of", "sales_amount",
           "slots", "template_line"]

# Data whose last row is older than this is a copy, not a live shop (see run).
STALE_AFTER = timedelta(days=7)


@register
class SalesCheck(Check):
    """Days (or hours) whose successful transactions fall far below (or rise above) their usual volume.

    Successful transactions are counted per --bucket (day or hour); a bucket with no sales counts
    as zero. Each complete bucket is compared with the same slot of the week (the weekday; for
    hours the weekday and hour) in the previous --history weeks, scaled to the shop's current
    level: expected = median of those buckets x (the last two weeks' days against their weekdays'
    medians, a weighted median of the ratios), so growth or a decline is followed within days. The spread is
    count-aware, Var = expected + c^2 x expected^2 (Poisson plus a negative-binomial part), with
    c measured robustly (1.4826 x MAD about the expectation) from the recent residuals of all
    buckets, widened for its own sampling error (c^2 x (t/z)^2, t the Student t bar of as many
    degrees of freedom as residuals; before a week of them, c^2 from every slot's weeks) and for
    the uncertainty of a median of few weeks. A bucket is flagged when it lies more than
    --sensitivity sigmas below the expectation (above it for --direction spike, either way for
    both), or, however noisy the shop, when it holds under --collapse (10 %) of an expectation of
    at least --min-expected (for days, of the upper end of the expectation's two-sigma interval,
    at most 1.5 x: a median of noisy weeks can read a third low); a Poisson test at the expected
    count must agree. Flagged buckets stay
    out of later baselines, so one outage never hides the next.

    Hours are also judged given today's level so far: a busy day lifts every hour of it, so the
    expectation is multiplied by (today's earlier unflagged sales + a) / (their expectations + a),
    a = 1 / c^2 of the day totals, and a negative-binomial tail test with the hour's own spread
    (plus that level's uncertainty) decides: three lost hours of a day running at 3 x its usual
    volume are reported even where they reach the usual volume of those hours. A low hour on a day
    that runs low all along (its total above 15 % of expected) is no drop by the sigma rules;
    under --collapse of its expectation it is held, and reported when the run of consecutive low
    hours it belongs to is improbable given today's level (one negative-binomial test of their
    sum) or its day proves collapsed (1 sale against 26 on a day at 34 % is chance). Hours under
    --collapse of an expectation given today too small for the collapse rule (0 against 8) join
    such a run too; a run holding one is reported only as a collapse of its sum (at least
    --min-expected expected, under --collapse of it held, and the same test): a four-hour midday
    blackout of a small shop. Hours expecting under a fifth of --min-expected (2 sales: nights),
    or whose slot held as little in two of its weeks, never join. A day whose total so far is a
    proven collapse (under 15 % and, by a Poisson test, below the lowest level the
    days' spread reaches) reports all its low meaningful hours, from its first. The day's first
    hour with a meaningful expectation has nothing of today to go by: it is held against the
    upper end of its interval, like a day, and reported when the next hour is a drop too.

    A lasting change is reported once. Two one-sided CUSUMs of each day's log ratio to its
    expectation (k = 0.11, half of a 20 % shift; one day counts at most 3 log-sds, a collapse not
    at all) suspect it once past a third of their bar of 5 log-sds: the level factor is then held
    where it was, so the change is not absorbed day by day. It is a shift once the least-squares
    split of the last weeks leaves a week after it, a two-sample test of log(count / weekday
    median) puts that side --sensitivity standard errors from up to four weeks before it and the
    two sides' medians lie 20 % apart: one finding spans it from the split ("sales settled 45.0%
    lower ... the new normal from here"), the history is rescaled to the new level, and a dead
    day inside it (under --collapse of the new level too) stays a finding of its own. A low day
    held while a change its way is past the bar but not confirmed (a small, noisy shop's halving
    can stay under --sensitivity for weeks) is judged again at the level that change suggests,
    once a week of its days, few of them in the collapse zone and no significant trend among
    them, says there is one (a fall to nothing is none): a day at 10 % of the old level, 20 % of
    the new one, is no finding, and so no finding a week against the old level; 1 sale against
    38 at the new level still is. Hours take their trend and their shifts from the day totals (a
    low day is 24 low hours, not a shift). With fewer than --min-history comparable
    weeks (a new shop, the first weeks of the data), a bucket is compared with the best available baseline, all recent
    days (for hours the same hour of recent days), else the last few, never above the most its own
    slot has held, and with so wide a spread that only near-total outages are reported; the
    finding and the summary's `baseline` and `confidence` say so.

    Hours are slotted on the stored wall clock (a shop that stores local time keeps Monday 09:00
    across a daylight-saving change; an empty 02:00 on a common spring-forward Sunday is not
    judged, `dst_gap` in the summary); a database that stores UTC gives --timezone Europe/Berlin
    and hours are slotted by the shop's local hour of the week.

    Not judged: the current incomplete bucket (a morning run does not report today as down), and
    anything when the window holds no transactions of any status (data not loaded is not an
    outage: the check is not evaluated). Severity by the drop (or rise) against the expectation:
    90 % or more critical, 60 % or more high, 30 % or more medium, otherwise low. Revenue is shown
    beside its expectation but not judged: a few large orders make it too noisy. Rows without a
    date, or whose date or amount cannot be read, are skipped and counted; a sale without an
    amount counts as a transaction and adds nothing to revenue (counted too); other statuses are
    ignored. With --since, the --history weeks before it are read for the baseline, and --since is
    rounded down to the start of its bucket.

    Example: Wednesdays held 120, 98, 131, 110 and 125 sales, median 120; last week ran at 1.1 x
    its slot medians, so 132 are expected; with c = 0.3 the sigma is sqrt(132 + 0.09 x 132^2) =
    40.8, and a Wednesday with 9 sales is a drop (under 10 % of 132) though 3 sigmas reach below 0.
    """

    name = NAME
    llm_target = "[DATE]: [TRANSACTIONS] transactions, [AMOUNT] sales - low performance"
    llm_advice = "checkout, payment gateway and site health for the periods named"
    order = 20
    # The date index serves --since and the newest-row probe; SQLite's expression index the
    # whole-history pass (sql.index_key).
    indexes = (("transactions", ("transaction_date", "status", "total_amount")),)  # covering
    expression_indexes = (("sqlite", "transactions", KEY_INDEX, index_key),)
    params = (
        Param("bucket", BucketSize.DAY, "size of the buckets sales are counted in: day or hour",
              kind=BucketSize),
        Param("history", 8, "weeks of history each bucket is compared with (same weekday, and hour)",
              kind=int, minimum=1, maximum=520),
        Param("min_history", 3, "comparable past buckets needed for the seasonal baseline (fewer: a fallback)",
              kind=int, minimum=1),
        Param("sensitivity", 3.0, "flag buckets beyond this many robust standard deviations",
              kind=float, exclusive_minimum=0),
        Param("direction", Direction.DROP, "what to flag: drop, spike or both", kind=Direction),
        Param("min_expected", 10.0, "smallest expected count the --collapse rule applies to",
              kind=float, exclusive_minimum=0),
        Param("collapse", 0.1, "a bucket under this fraction of a meaningful expectation is always a drop",
              kind=float, exclusive_minimum=0, maximum=1),
        Param("timezone", "", "the shop's time zone when the database stores UTC (hour buckets follow "
              "its local hour of the week across daylight-saving changes)", kind=str, parse_fn=_zone),
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
        start = index_of(ctx.window.since, size) if ctx.window.since is not None else None
        load_from = start - p["history"] * period if start is not None else None
        # Without --since the pass reads the whole table and needs no end: it goes first, and
        # may prove the data fresh, which spares last_data's max() (a scan without a date index).
        groups = read(ctx, size, None, None) if load_from is None else None
        if ctx.window.until is None:
            last = None if groups is not None and fresh(groups, ctx.now - STALE_AFTER) else last_data(ctx)
            if last is not None and last < ctx.now - STALE_AFTER:
                # A copy or an export, not a live shop: the days after its last row are not
                # outages. (A live blackout is reported for STALE_AFTER before this applies.)
                moment = last
                stats.note("data_ends", f"{last:%Y-%m-%d %H:%M}; judged up to there (give --until to judge later)")
        end = index_of(moment, size)  # the first incomplete bucket: judged buckets end by `moment`
        if start_of(end, size) < moment and (start is None or start <= end):
            stats.skip("incomplete")
        if groups is None:
            groups = read(ctx, size, load_from, end)

        settings = Settings.for_bucket(size.seconds, history=p["history"], min_history=p["min_history"],
                                       sensitivity=p["sensitivity"], direction=Direction(p["direction"]),
                                       min_expected=p["min_expected"], collapse=p["collapse"])
        judge = VolumeJudge(settings)
        seen_rows = False
        held: list[Finding] = []  # findings before the window's first row: dropped if it has none
        flags: list[Flag] = []
        without_amount = 0
        bases: Counter[str] = Counter()
        for bucket in fill(measure(ctx, groups, size, load_from, end, stats), end):
            slot, daily = slots(bucket.index, size, p.get("timezone", ""))
            if size is BucketSize.HOUR and not p.get("timezone") and not bucket.rows \
                    and may_not_exist(start_of(bucket.index, size)):
                stats.skip("dst_gap", start is None or bucket.index >= start)  # clocks sprang forward
                continue
            verdict, done = judge.feed(bucket.index, slot, daily, bucket.transactions, bucket.revenue_cents)
            flags += done
            if start is None or bucket.index >= start:
                seen_rows = seen_rows or bucket.rows > 0
                without_amount += bucket.without_amount
                if verdict.expectation is None:
                    stats.skip("short_history")
                else:
                    stats.count()
                    bases[verdict.expectation.basis.value] += 1
                if verdict.expectation is not None:
                    e = verdict.expectation
                    ctx.plot("volume", t=start_of(bucket.index, size), value=bucket.transactions, expected=e.count,
                             band=p["sensitivity"] * e.sigma, flagged=verdict.kind is not None)
            for finding in self._report(flags, start, size, ctx.currency):
                if seen_rows:
                    yield from held
                    held.clear()
                    yield finding
                else:
                    held.append(finding)
            flags.clear()
        flags += judge.finish()
        if seen_rows:
            yield from sorted([*held, *self._report(flags, start, size, ctx.currency)],
                              key=lambda f: f.fields["bucket_start"])
        stats.note("without_amount", without_amount)
        if not seen_rows:
            # No rows of any status: more likely data not loaded (yet) than a shop with no
            # customers at all, so nothing is reported and the summary says why.
            stats.judged = 0
            unusable = {r: n for r, n in stats.skipped.items() if r in ("no_date", "bad_date") and n}
            if start is not None and start >= end:
                stats.not_evaluated(f"the window holds no complete {size.value}")
            elif unusable and start is None:
                reasons = ", ".join(f"{r.replace('_', ' ')}: {n}" for r, n in unusable.items())
                stats.not_evaluated(f"all rows unusable ({reasons})")
            else:
                since = f"from {start_of(start, size):%Y-%m-%d %H:%M} " if start is not None else ""
                stats.not_evaluated(f"no transactions {since}before {start_of(end, size):%Y-%m-%d %H:%M}")
        elif not stats.judged:
            stats.not_evaluated(f"insufficient history: no earlier {size.value}s to compare with")
        else:
            # What the buckets were compared with, and so how far to trust the verdicts.
            stats.note("baseline", dict(bases))
            stats.note("confidence", "high" if set(bases) == {Basis.SEASONAL.value} else
                       "low" if Basis.RECENT.value in bases else "medium")

    @staticmethod
    def _report(flags: list[Flag], start: int | None, size: BucketSize, currency: str) -> list[Finding]:
        """Findings for final flags that end in the window (a shift may begin before it)."""
        return [make_finding(f, size, currency) for f in flags if start is None or f.end > start]
