"""rates: per-minute status rates judged by the seed's rules and a z-score, merged into incidents.

One concern per module: rules (thresholds and score), baseline (buckets, pooling, the trailing
baseline), judge (one unit), incidents (merging units), wording (naming and sentences), sql.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from anomaly_cli.buckets import from_epoch, to_epoch
from anomaly_cli.checks import Check, CheckContext, Column, register
from anomaly_cli.checks.rates import collapse
from anomaly_cli.checks.rates.baseline import Gap, Unit, fill, pool
from anomaly_cli.checks.rates.incidents import Tally, detect
from anomaly_cli.checks.rates.rules import (
    COMBINED, DEFAULT_THRESHOLDS, MIN_BASELINE_UNITS, Rules, Source, parse_thresholds, thresholds_text, with_combined,
)
from anomaly_cli.checks.rates.sql import measure
from anomaly_cli.checks.rates.wording import describe
from anomaly_cli.errors import UsageError
from anomaly_cli.model import Finding
from anomaly_cli.params import Param
from anomaly_cli.volume import Direction

@register
class RatesCheck(Check):
    """Status-rate incidents: failed, denied, reversed... rates far above their recent baseline.

    Transactions are counted per --bucket minutes and status, from the per-minute status_counts
    table (--source counts, filled by 'anomaly load counts') or from the shop's transactions table
    (--source transactions: the success status counts as approved, the failed status as failed,
    others by their lower-cased name). Absent minutes count as zero, but a silence of over 6 hours
    is taken for missing data and everything starts over after it. A bucket with fewer than
    --min-volume transactions is pooled with the following ones, over at most 15 minutes; a pool
    still short of it is not judged.

    Each status's rate in a bucket is scored as in the seed: its critical level in --thresholds
    +50 or its warning level +30, and z >= 3 +40 or z >= 2 +25, at most 100. z = (rate - baseline
    rate - 1/2n) / sd: the baseline is the most recent buckets, up to a day old, that were not
    anomalous and held --min-volume, covering --baseline minutes (so neither the bucket under test
    nor the incident it belongs to is ever in it); sd is the larger of the baseline's per-bucket
    standard deviation and the binomial sqrt(p(1-p)/n) for the bucket's n; 1/2n is the continuity
    correction of a count. The combined non-approved rate is scored the same way, its levels the
    sums of the status levels unless --thresholds names non_approved. A status is anomalous in a
    bucket when its score reaches --min-score (70: the warning level with z >= 3, or the critical
    level with z >= 2) and the bucket holds at least --min-count of it; statuses without
    thresholds count only in the combined rate.

    Anomalous buckets, with at most --max-gap buckets between them, form one incident whatever
    status is anomalous in each, so statuses alternating in one outage make one incident. It is
    named after the status anomalous in the most buckets, or two joined by a plus when the second
    is anomalous in at least half as many, otherwise mixed; leading and trailing buckets where only
    other statuses were anomalous are left out of it. An approved-volume collapse is an incident of
    its own, status approved_drop: approvals per minute at least --approved-drop below the
    baseline pace (+30, +50 halfway from there to zero) with z >= 2 or 3 as above, whether the
    total holds or falls. It must be sudden: it is judged right after a bucket that held
    --min-volume transactions, and then for as long as it lasts, and only where a bucket normally
    holds --min-volume (so the thinning evening is never a drop).

    Severity by persistence, as in the seed: 15, 30, 45 and 60 minutes are low, medium, high and
    critical; one level lower, not below low, when the score stayed under 75; at least medium
    with a score of 90. A single anomalous bucket is not an incident. Incidents shorter than 15
    minutes are reported, as medium, only when intense: a score of 90, at least 3 anomalous
    buckets, and over the incident at least twice the critical level of the status named (for
    approved_drop, at most a quarter of the expected approvals). count is the named status's
    transactions over the incident (all non-approved for mixed, approvals for approved_drop);
    rate and expected_rate are percentages of total; score is the highest bucket score;
    persistence_minutes runs from bucket_start to bucket_end. Every incident overlapping the
    window is reported; the day before --since is read for the baseline, and only complete
    buckets are judged.

    The volume side sees what a trailing hour cannot: a fall over several hours. Approvals per
    quarter hour are compared with the same quarter hour of the week in earlier weeks (median
    scaled to the current level, a count-aware spread, --sensitivity... as in 'scan sales'), or,
    with fewer than 3 earlier weeks, with the same quarter hour of the recent days (yesterday
    when that is all), where only a fall under 10 % of the expectation counts. Only quarter hours
    expected to hold --min-volume approvals are judged (the night is not). Flagged quarter hours
    make one approved_drop incident (approved_spike with --direction spike or both), which starts
    at the first of the quarter hours just before it that were already below half their
    expectation, so a gradual fall is reported from where it began; score 100 when it fell under
    10 %, else 70. An incident the sudden-collapse rule already reports is not repeated. Up to 8
    weeks before --since are read for it.
    """

    name = "rates"
    llm_advice = "the processor's status for the statuses and times named"
    order = 50
    optional = True  # reads a table a shop database may not have
    params = (
        Param("source", Source.COUNTS, "where to count: counts (status_counts table) or transactions",
              kind=Source),
        Param("bucket", 1, "bucket size in minutes", kind=int, minimum=1, maximum=1440),
        Param("baseline", 60, "minutes of earlier, non-anomalous buckets a bucket is compared with",
              kind=int, minimum=1),
        Param("min_volume", 100, "fewest transactions a bucket (or pool of buckets) needs to be judged",
              kind=int, minimum=1),
        Param("min_count", 3, "fewest transactions of a status for it to be anomalous in a bucket",
              kind=int, minimum=1),
        Param("min_score", 70, "bucket score (0-100) at which a status is anomalous", kind=int,
              minimum=1, maximum=100),
        Param("max_gap", 2, "buckets without an anomaly that do not split an incident", kind=int, minimum=0),
        Param("thresholds", DEFAULT_THRESHOLDS, "warning/critical rates in percent per status",
              kind=str, parse_fn=thresholds_text),
        Param("approved_status", "approved", "the status of approved transactions", kind=str),
        Param("approved_drop", 0.5, "fall of the approved pace below its baseline that counts as a drop",
              kind=float, exclusive_minimum=0, maximum=0.99),
        Param("direction", Direction.DROP, "approval volume against earlier days: flag a drop, spike or both",
              kind=Direction),
    )
    fields = ("bucket_start", "bucket_end", "status", "count", "total", "rate", "expected_rate", "score",
              "persistence_minutes")
    columns = (
        Column("bucket_start", "From"),
        Column("bucket_end", "To"),
        Column("status", "Status"),
        Column("count", "Count", "right"),
        Column("total", "Total", "right"),
        Column("rate", "Rate %", "right"),
        Column("expected_rate", "Expected %", "right"),
        Column("score", "Score", "right"),
        Column("persistence_minutes", "Minutes", "right"),
    )
    needs = {"status_counts": ("ts", "status", "count")}

    @classmethod
    def needs_for(cls, params: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        """The tables this run reads: it depends on --source."""
        if Source(params["source"]) is Source.TRANSACTIONS:
            return {"transactions": ("transaction_date", "status")}
        return dict(cls.needs)

    @classmethod
    def validate(cls, params: dict[str, Any]) -> None:
        try:
            parse_thresholds(params["thresholds"])
        except ValueError as exc:
            raise UsageError(f"--thresholds: {exc}") from None
        if params["baseline"] < MIN_BASELINE_UNITS * params["bucket"]:
            raise UsageError(f"--baseline {params['baseline']} minutes holds fewer than {MIN_BASELINE_UNITS} "
                             f"buckets of {params['bucket']} minutes", hint="give a longer --baseline")

    @staticmethod
    def rules(params: dict[str, Any]) -> Rules:
        size = params["bucket"] * 60
        return Rules(
            thresholds=with_combined(parse_thresholds(params["thresholds"])),
            approved=params["approved_status"].strip().lower(),
            min_volume=params["min_volume"],
            min_count=params["min_count"],
            min_score=params["min_score"],
            approved_drop=params["approved_drop"],
            baseline_seconds=params["baseline"] * 60,
            gap_seconds=params["max_gap"] * size,
            bucket_seconds=size,
        )

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        p = ctx.params
        stats = ctx.stats
        size = p["bucket"] * 60
        rules = self.rules(p)
        moment = ctx.end
        end = to_epoch(moment) // size * size  # only complete buckets
        report_from = load_from = None
        if ctx.window.since is not None:
            report_from = to_epoch(ctx.window.since)
            # From midnight of the day before: enough for the baseline, and the same pools on every run.
            load_from = (report_from // 86400 - 1) * 86400
        tally = Tally()
        buckets = measure(ctx, Source(p["source"]), rules.approved, size, load_from, end, stats)
        units = plotted(ctx, pool(fill(buckets, size), size, rules.min_volume), rules, report_from)
        incidents = list(detect(units, rules, report_from=report_from, tally=tally))
        stats.count(tally.units_judged)
        stats.skip("low_volume", tally.units_low_volume)
        stats.skip("no_baseline", tally.units_without_baseline)
        if not tally.units_judged:
            stats.not_evaluated("no bucket with enough volume and a baseline in the window")
        not_reported = 0
        findings = []
        since = ctx.window.since
        for incident in incidents:
            finding = describe(incident, rules)
            if finding is None:
                not_reported += 1  # too short, too mild, or a single bucket
            elif since is None or finding.fields["bucket_end"] > since:
                findings.append(finding)
        stats.note("incidents_not_reported", not_reported)
        # The volume side: approvals against the same time on earlier days (gradual collapses).
        # Where it and the sudden-collapse rule report one collapse, the earlier start is kept.
        volume_end = to_epoch(moment) // collapse.WINDOW * collapse.WINDOW
        for finding in collapse.find(ctx, Source(p["source"]), rules, Direction(p.get("direction", Direction.DROP)),
                                     report_from, volume_end):
            start, stop = finding.fields["bucket_start"], finding.fields["bucket_end"]
            same = [f for f in findings if f.fields["status"] == finding.fields["status"]
                    and f.fields["bucket_start"] < stop and start < f.fields["bucket_end"]]
            if any(f.fields["bucket_start"] <= start for f in same):
                continue
            findings = [f for f in findings if f not in same] + [finding]
        findings.sort(key=lambda f: (f.fields["bucket_start"], f.fields["status"]))
        yield from findings


def plotted(ctx: CheckContext, units: Iterable[Unit | Gap], rules: Rules, report_from: int | None
            ) -> Iterator[Unit | Gap]:
    """The units unchanged; each one's status rates (percent) kept for the report's chart."""
    if ctx.charts is None:
        yield from units
        return
    for status, rule in rules.thresholds.items():
        ctx.plot("thresholds", status=status, warning=rule.warning, critical=rule.critical)
    for unit in units:
        if isinstance(unit, Unit) and unit.total and (report_from is None or unit.start >= report_from):
            ctx.plot("rates", t=from_epoch(unit.start),
                     **{s: 100 * (unit.total - unit.counts[rules.approved] if s == COMBINED else unit.counts[s])
                        / unit.total for s in rules.thresholds})
        yield unit
