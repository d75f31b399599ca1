"""Judging scored transactions: episodes, risk levels with business rules, explained findings.

Pure Python on what the model said; no database, no numpy.

- An episode is a run of consecutive transactions of one customer that each score at or above
  the `low` cut-off; a transaction of theirs below it ends the run. Its score is its highest.
- Risk from the episode's score and the model's cut-offs (anomaly_cli.ml.model), then the
  business rules: an episode rated high whose total reaches `critical_amount` is critical;
  one rated low or medium whose total stays under `min_amount` is not reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from anomaly_cli.ml.features import FEATURES, describe
from anomaly_cli.ml.sql import Raw
from anomaly_cli.model import Finding, Severity
from anomaly_cli.wording import grouped

TOP_FEATURES = 3
LABELS = {
    "amount": "amount", "amount_vs_usual": "amount", "amount_z": "amount",
    "transactions_1h": "transactions in 1 h", "transactions_24h": "transactions in 24 h",
    "transactions_7d": "transactions in 7 d", "amount_24h_vs_usual": "amount in 24 h",
    "seconds_since_previous": "time since previous", "gap_vs_usual": "time since previous",
    "hour_share": "time of day", "weekday_share": "weekday", "failed_share_24h": "failed in 24 h",
    "items": "items", "distinct_products": "distinct products", "new_products": "never-bought products",
    "price_deviation": "price vs catalog", "tenure_days": "customer for", "rise_streak": "rising amounts in a row",
}


@dataclass(frozen=True, slots=True)
class Scored:
    raw: Raw
    vector: Sequence[float]
    score: float


@dataclass
class Episode:
    customer_id: Any
    start: datetime
    end: datetime
    transactions: int
    total_cents: int
    top: Scored  # the transaction with the highest score: the one explained

    @property
    def score(self) -> float:
        return self.top.score


def episodes(items: Iterator[Scored], low: float) -> Iterator[Episode]:
    """Fold scored transactions (ordered by customer, then time) into episodes."""
    current: Episode | None = None
    for item in items:
        r = item.raw
        if current is not None and (r.customer_id != current.customer_id or item.score < low):
            yield current
            current = None
        if item.score < low:
            continue
        if current is None:
            current = Episode(r.customer_id, r.transaction_date, r.transaction_date, 0, 0, item)
        current.end = r.transaction_date
        current.transactions += 1
        current.total_cents += r.amount
        if item.score > current.top.score:
            current.top = item
    if current is not None:
        yield current


def risk(score: float, cutoffs: Mapping[str, float]) -> Severity | None:
    if score > cutoffs["critical"]:
        return Severity.CRITICAL
    for name, severity in (("high", Severity.HIGH), ("medium", Severity.MEDIUM), ("low", Severity.LOW)):
        if score >= cutoffs[name]:
            return severity
    return None


def apply_rules(level: Severity | None, total: Decimal, min_amount: Decimal,
                critical_amount: Decimal) -> Severity | None:
    """The business rules on top of the model's risk (None: not reported)."""
    if level is None:
        return None
    if level is Severity.HIGH and total >= critical_amount:
        return Severity.CRITICAL
    if level < Severity.HIGH and total < min_amount:
        return None
    return level


# Which side of the typical value is unusual: +1 higher, -1 lower, 0 either. A customer more
# regular than most (always the same hour) is not a reason to suspect them.
DIRECTION = {"hour_share": -1, "weekday_share": -1, "tenure_days": -1, "seconds_since_previous": 0,
             "gap_vs_usual": 0, "price_deviation": 0}


def top_features(contributions: Sequence[float], x: Sequence[float] | None = None,
                 baseline: Sequence[float] | None = None, k: int = TOP_FEATURES) -> list[int]:
    """Indices of the features that raised the score most (at least one, ties by feature order)."""
    def unusual_side(j: int) -> bool:
        if x is None or baseline is None:
            return True
        direction = DIRECTION.get(FEATURES[j], 1)
        return direction == 0 or (x[j] - baseline[j]) * direction > 0

    ranked = sorted(range(len(contributions)), key=lambda j: (-contributions[j], j))
    ranked = [j for j in ranked if unusual_side(j)] + [j for j in ranked if not unusual_side(j)]
    chosen: list[int] = []
    seen: set[str] = set()
    for j in ranked:
        label = LABELS[FEATURES[j]]
        # Three ways of saying "amount" are one reason, not three.
        if label in seen or (chosen and (contributions[j] <= 0 or not unusual_side(j))):
            continue
        seen.add(label)
        chosen.append(j)
        if len(chosen) == k:
            break
    return chosen


def explain(episode: Episode, contributions: Sequence[float], hours: Sequence[int] | None,
            baseline: Sequence[float] | None = None) -> list[dict[str, Any]]:
    out = []
    for j in top_features(contributions, episode.top.vector, baseline):
        value, usual = describe(FEATURES[j], episode.top.raw, hours)
        out.append({"name": LABELS[FEATURES[j]], "value": value, "usual": usual})
    return out


def _number(value: Any, currency: str) -> str:
    if isinstance(value, float) and value >= 100:  # money: grouped as the rest of the tool groups it
        return grouped(value, currency)
    return f"{value:,}" if isinstance(value, float | int) else str(value)


def _phrase(feature: Mapping[str, Any], currency: str) -> str:
    text = f"{feature['name']} {_number(feature['value'], currency)}"
    return text if feature["usual"] is None else f"{text} vs usual {_number(feature['usual'], currency)}"


def finding(episode: Episode, severity: Severity, name: str | None, features: list[dict[str, Any]],
            model_id: str, currency: str = "₹", check: str = "behaviour") -> Finding:
    total = (Decimal(episode.total_cents) / 100).quantize(Decimal("0.01"))
    fields = {
        "customer_id": episode.customer_id,
        "customer_name": name,
        "episode_start": episode.start,
        "episode_end": episode.end,
        "transactions": episode.transactions,
        "total_amount": total,
        "score": round(episode.score, 4),
        "risk": str(severity),
        "features": features,
        "model": model_id,
    }
    return Finding(check=check, key=f"{check}:{episode.customer_id}:{episode.start.isoformat()}",
                   severity=severity, message=template_line(fields, currency), fields=fields)


def template_line(fields: Mapping[str, Any], currency: str = "₹") -> str:
    """The deterministic sentence: who, when, how much, how risky, and why."""
    start, end = fields["episode_start"], fields["episode_end"]
    when = f"on {start:%B} {start.day}, {start.year} at {start:%H:%M}"
    if end != start:
        when += f" to {end:%B} {end.day} {end:%H:%M}" if end.date() != start.date() else f"-{end:%H:%M}"
    n = fields["transactions"]
    reasons = "; ".join(_phrase(f, currency) for f in fields["features"])
    return (f"Customer {fields['customer_name'] or 'unknown'} (ID: {fields['customer_id']}) made {n} "
            f"transaction{'s' if n != 1 else ''} {when} totalling {currency}{grouped(fields['total_amount'], currency)} "
            f"unlike their usual behaviour: {reasons} - {fields['risk'].upper()} risk "
            f"(score {fields['score']:.2f})")
