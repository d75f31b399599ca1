"""Precision and recall from reviewers' labels (`anomaly alerts label KEY --fraud|--false-positive`).

Pure functions over (check, label, score) records:
- precision among labelled alerts, fraud / (fraud + false_positive);
- its bounds when unlabelled alerts are unknown: every one a false positive (lower) or every
  one fraud (upper), over all alerts;
- for scored checks (behaviour): precision among the top-k labelled alerts by score, and the
  lowest score threshold whose labelled alerts reach a target precision, with the recall of
  labelled fraud at that threshold (the share of known fraud it still catches). True recall
  would need the fraud nobody flagged, which labels of alerts cannot give.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# The behaviour check's line ends "... - HIGH risk (score 0.63)": the stored alert keeps it.
SCORE = re.compile(r"\(score (\d+(?:\.\d+)?)\)")
TOP_K = (5, 10, 20, 50)


@dataclass(frozen=True, slots=True)
class Labelled:
    check: str
    label: str | None  # 'fraud', 'false_positive' or None
    score: float | None


def score_of(message: str) -> float | None:
    found = SCORE.findall(message or "")
    return float(found[-1]) if found else None


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def summary(records: Sequence[Labelled]) -> dict[str, Any]:
    fraud = sum(r.label == "fraud" for r in records)
    false = sum(r.label == "false_positive" for r in records)
    unknown = len(records) - fraud - false
    return {"alerts": len(records), "fraud": fraud, "false_positive": false, "unlabelled": unknown,
            "precision": _ratio(fraud, fraud + false),
            "precision_bounds": [_ratio(fraud, len(records)), _ratio(fraud + unknown, len(records))]}


def top_k(records: Sequence[Labelled], ks: Iterable[int] = TOP_K) -> dict[str, float]:
    """Precision of the k highest-scored labelled alerts, for each k there are enough of."""
    ranked = sorted((r for r in records if r.label and r.score is not None), key=lambda r: -r.score)
    return {f"top_{k}": round(sum(r.label == "fraud" for r in ranked[:k]) / k, 4)
            for k in ks if k <= len(ranked)}


def suggest_threshold(records: Sequence[Labelled], target: float) -> dict[str, Any] | None:
    """The lowest score at which labelled alerts scored at or above it reach `target` precision."""
    ranked = sorted((r for r in records if r.label and r.score is not None), key=lambda r: -r.score)
    total_fraud = sum(r.label == "fraud" for r in ranked)
    best, fraud = None, 0
    for i, r in enumerate(ranked, 1):
        fraud += r.label == "fraud"
        # A threshold sits between distinct scores: only where the next score is lower.
        if i < len(ranked) and ranked[i].score == r.score:
            continue
        if fraud / i >= target:
            best = {"threshold": r.score, "precision": round(fraud / i, 4),
                    "recall_of_labelled_fraud": _ratio(fraud, total_fraud), "alerts_at_or_above": i}
    return best


def evaluate(records: Iterable[Labelled], target: float) -> dict[str, dict[str, Any]]:
    by_check: dict[str, list[Labelled]] = {}
    for r in records:
        by_check.setdefault(r.check, []).append(r)
    out = {}
    for check, rows in sorted(by_check.items()):
        result = summary(rows)
        if any(r.score is not None for r in rows):
            result["precision_at"] = top_k(rows)
            result["suggested_threshold"] = suggest_threshold(rows, target)
        out[check] = result
    return out


def lines(results: dict[str, dict[str, Any]], target: float) -> list[str]:
    """The plain-text report: one line per check, one more for a scored check."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.0%}"

    out = []
    for check, r in results.items():
        lo, hi = r["precision_bounds"]
        out.append(f"{check}: {r['alerts']} alerts, {r['fraud']} fraud, {r['false_positive']} false positive, "
                   f"{r['unlabelled']} unlabelled; precision {pct(r['precision'])} "
                   f"(between {pct(lo)} and {pct(hi)} counting unlabelled as unknown)")
        if "precision_at" in r:
            tops = ", ".join(f"top {k[4:]} {pct(v)}" for k, v in r["precision_at"].items()) or "too few labels"
            t = r["suggested_threshold"]
            suggestion = (f"score >= {t['threshold']:.2f} gives precision {pct(t['precision'])} and catches "
                          f"{pct(t['recall_of_labelled_fraud'])} of labelled fraud ({t['alerts_at_or_above']} alerts)"
                          if t else f"no score threshold reaches {pct(target)} precision")
            out.append(f"{check}: precision by score: {tops}; for {pct(target)} precision: {suggestion}")
    return out
