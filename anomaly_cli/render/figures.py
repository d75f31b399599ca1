"""What each check's chart shows: its measured aggregates (`CheckOutcome.charts`, recorded by the
check with ctx.plot) against what it expected, with the findings marked on them.

sales, checkout, failed and rates plot what they judged, bucket by bucket. price and spam judge
in SQL and read back only what they flag, so their findings are their measurements: one dot per
flagged item (deviation, sized by revenue impact) and per burst (transactions, sized by amount).
A check this module does not know gets a line per series that has `t` and `value` points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from anomaly_cli.model import CheckOutcome, Finding, Severity
from anomaly_cli.render.charts import FLAG, Dots, Plot

MAX_MARKS = 2000  # findings remembered per check for its chart (the table has its own cap)
SEVERITY_COLOURS = {Severity.CRITICAL: "#b71c1c", Severity.HIGH: "#e65100", Severity.MEDIUM: "#f9a825",
                    Severity.LOW: "#607d8b"}
Figure = Plot | Dots


def mark(finding: Finding) -> tuple[Any, ...] | None:
    """The little of a finding its check's chart needs (kept instead of the finding)."""
    f = finding.fields
    if finding.check == "price" and isinstance(f.get("transaction_date"), datetime):
        return (f["transaction_date"], float(f["deviation_pct"]), float(f["revenue_impact"] or 0), f["direction"],
                f"{f['product_name']}: {f['deviation_pct']}% ({f['direction']}), impact {f['revenue_impact']}")
    if finding.check == "spam":
        return (f["window_start"], int(f["transactions"]), float(f["total_amount"] or 0), finding.severity,
                f"{f['customer_name']} (ID {f['customer_id']}): {f['transactions']} transactions, "
                f"{f['failed']} failed, from {f['window_start']:%Y-%m-%d %H:%M:%S}")
    if isinstance(f.get("bucket_start"), datetime) and isinstance(f.get("bucket_end"), datetime):
        return (f["bucket_start"], f["bucket_end"], str(f.get("status", "")), f"[{finding.severity}] {finding.message}")
    return None


CAPTIONS = {"rates": "Status rates per bucket (% of transactions) with their warning and critical levels, "
                     "incidents shaded; one panel per status"}


def caption(check: str, drawn: Sequence[Figure]) -> str:
    return CAPTIONS.get(check) or drawn[0].title


def figures(outcome: CheckOutcome, marks: Sequence[tuple[Any, ...]], currency: str) -> list[Figure]:
    """The chart(s) of one check; empty when it measured nothing to draw."""
    series: Mapping[str, list[dict[str, Any]]] = outcome.charts or {}
    build = {"sales": _sales, "checkout": _checkout, "failed": _failed, "rates": _rates, "price": _price,
             "spam": _spam}.get(outcome.check, _generic)
    return [f for f in build(outcome, series, marks, currency) if f.count]


def _sales(outcome: CheckOutcome, series: Mapping[str, list[dict[str, Any]]], marks: Sequence[Any],
           currency: str) -> list[Figure]:
    points = series.get("volume", [])
    unit = str(outcome.params.get("bucket", "day"))
    return [Plot(
        title=f"Successful transactions per {unit}, expected band (median ± {outcome.params.get('sensitivity')} σ)",
        y_label="transactions",
        lines={"transactions": [(p["t"], p["value"]) for p in points]},
        expected=[(p["t"], p["expected"]) for p in points],
        band=[(p["t"], p["expected"] - p["band"], p["expected"] + p["band"]) for p in points],
        flagged=[(p["t"], p["value"], f"{p['t']:%Y-%m-%d %H:%M}: {p['value']} against {p['expected']:.0f} expected")
                 for p in points if p["flagged"]],
    )]


def _checkout(outcome: CheckOutcome, series: Mapping[str, list[dict[str, Any]]], marks: Sequence[Any],
              currency: str) -> list[Figure]:
    points = series.get("checkouts", [])
    return [Plot(
        title="Checkouts per hour against the expected count (median of the baselines)",
        y_label="checkouts",
        lines={"checkouts": [(p["t"], p["value"]) for p in points]},
        expected=[(p["t"], p["expected"]) for p in points],
        flagged=[(p["t"], p["value"], f"{p['t']:%Y-%m-%d %H:%M}: {p['value']:g} against {p['expected']:.1f}")
                 for p in points if p["flagged"]],
    )]


def _failed(outcome: CheckOutcome, series: Mapping[str, list[dict[str, Any]]], marks: Sequence[Any],
            currency: str) -> list[Figure]:
    points = series.get("failure_rate", [])
    return [Plot(
        title=f"Failure rate per {outcome.params.get('bucket', 'bucket')} against the baseline rate, "
              "incidents shaded",
        y_label="failed %",
        lines={"failure rate": [(p["t"], p["value"]) for p in points]},
        expected=[(p["t"], p["expected"]) for p in points],
        spans=[(m[0], m[1], m[3]) for m in marks],
    )]


def _rates(outcome: CheckOutcome, series: Mapping[str, list[dict[str, Any]]], marks: Sequence[Any],
           currency: str) -> list[Figure]:
    """One panel per status: its per-minute rate, warning and critical levels, its incidents."""
    points = series.get("rates", [])
    panels = []
    for rule in series.get("thresholds", []):
        status = rule["status"]
        named = [m for m in marks if status in m[2].split("+")
                 or (status == "non_approved" and m[2] in ("mixed", "approved_drop"))]
        panels.append(Plot(
            title=f"{status.replace('_', ' ')}: rate per bucket (% of transactions)", height=170,
            y_label=f"{status} %",
            lines={status: [(p["t"], p[status]) for p in points if status in p]},
            levels=[(rule["warning"], f"warning {rule['warning']:g}%", "#f9a825"),
                    (rule["critical"], f"critical {rule['critical']:g}%", FLAG)],
            spans=[(m[0], m[1], m[3]) for m in named],
        ))
    return panels


def _price(outcome: CheckOutcome, series: Mapping[str, list[dict[str, Any]]], marks: Sequence[Any],
           currency: str) -> list[Figure]:
    return [Dots(
        title=f"Flagged items: deviation from the catalog price, sized by revenue impact ({currency})",
        y_label="deviation %",
        dots=[(t, dev, impact, "#c62828" if direction == "discount" else "#1565c0", tip)
              for t, dev, impact, direction, tip in marks],
        legend=[("discount", "#c62828"), ("markup", "#1565c0")],
    )]


def _spam(outcome: CheckOutcome, series: Mapping[str, list[dict[str, Any]]], marks: Sequence[Any],
          currency: str) -> list[Figure]:
    return [Dots(
        title=f"Bursts on a timeline: transactions in the burst, sized by amount ({currency})",
        y_label="transactions",
        dots=[(t, n, amount, SEVERITY_COLOURS[severity], tip) for t, n, amount, severity, tip in marks],
        legend=[(str(s), SEVERITY_COLOURS[s]) for s in sorted(Severity, reverse=True)],
        zero_line=False,
    )]


def _generic(outcome: CheckOutcome, series: Mapping[str, list[dict[str, Any]]], marks: Sequence[Any],
             currency: str) -> list[Figure]:
    figures: list[Figure] = []
    for name, points in series.items():
        timed = [p for p in points if isinstance(p.get("t"), datetime) and isinstance(p.get("value"), int | float)]
        if timed:
            figures.append(Plot(
                title=name.replace("_", " "), y_label=name,
                lines={name: [(p["t"], float(p["value"])) for p in timed]},
                expected=[(p["t"], float(p["expected"])) for p in timed if p.get("expected") is not None],
                flagged=[(p["t"], float(p["value"]), f"{p['t']:%Y-%m-%d %H:%M}") for p in timed if p.get("flagged")],
                spans=[(m[0], m[1], m[3]) for m in marks if len(m) == 4],
            ))
    return figures
