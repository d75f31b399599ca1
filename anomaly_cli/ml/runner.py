"""One behavioural run: measure (SQL), fit or load the model, score in chunks, judge, explain.

Memory is bounded by the training sample (at most `max_sample` vectors), one chunk of scored
rows, and the episodes found; never by the table.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_cli.ml import sql
from anomaly_cli.ml.features import Context, vector
from anomaly_cli.ml.judge import Episode, Scored, apply_rules, episodes, explain, finding, risk
from anomaly_cli.model import Finding, Severity

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from anomaly_cli.config import SchemaMap
    from anomaly_cli.ml.model import BehaviourModel

MIN_TRAINING = 200  # fewer history rows than this make percentile cut-offs meaningless
SCORE_CHUNK = 5000
DEFAULT_WINDOW = timedelta(days=7)  # scored before today when no --since is given


@dataclass
class Settings:
    history: timedelta = timedelta(days=90)  # how far back "the customer's usual" looks
    train_span: timedelta = timedelta(days=28)  # the fit's sample comes from this span before the window
    max_sample: int = 50_000
    min_amount: Decimal = Decimal("500.00")
    critical_amount: Decimal = Decimal("100000.00")
    model_path: Path | None = None


@dataclass
class Outcome:
    """What the run did besides its findings (filled while they stream)."""

    judged: int = 0
    not_evaluated: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    hourly: dict[datetime, float] = field(default_factory=dict)  # highest score per hour (the report's chart)
    high: float | None = None  # the model's high cut-off
    skipped: dict[str, int] = field(default_factory=dict)  # transactions left out, by reason (sql.count_unusable)


def shop_context(conn: Connection, schema: SchemaMap, lo: datetime | None, before: datetime | None) -> Context:
    """How the shop's transactions spread over 3-hour bins and weekdays in [lo, before)."""
    import sqlalchemy as sa

    from anomaly_cli.db import epoch_seconds, table, window_bounds
    from anomaly_cli.sqlfn import int_div

    t = table(schema, "transactions")
    ts = epoch_seconds(t.c.transaction_date)
    bin_ = int_div(ts % sql.DAY, sql.BIN_SECONDS).label("bin")
    weekday = ((int_div(ts, sql.DAY) + 3) % sql.WEEKDAYS).label("weekday")
    bins, days = [1.0] * sql.BINS, [1.0] * sql.WEEKDAYS  # add-one: no bin has share 0
    stmt = (sa.select(bin_, weekday, sa.func.count())
            .where(*sql.usable(t),
                   *window_bounds(t.c.transaction_date, lo, before))
            .group_by(bin_, weekday))
    for b, d, n in conn.execute(stmt):
        bins[int(b)] += int(n)
        days[int(d)] += int(n)
    return Context(tuple(x / sum(bins) for x in bins), tuple(x / sum(days) for x in days))


def _sample_step(conn: Connection, schema: SchemaMap, lo: datetime | None, before: datetime | None,
                 max_sample: int) -> tuple[int, int]:
    history = sql.count_history(conn, schema, lo, before)
    return history, max(1, math.ceil(history / max_sample))


def _fit(vectors: Sequence[Sequence[float]] | array, context: Context, lo: datetime | None,
         before: datetime | None, history: int) -> BehaviourModel:
    from anomaly_cli.ml.model import fit

    if isinstance(vectors, array):  # a flat buffer of the training vectors, row after row
        import numpy as np

        from anomaly_cli.ml.features import FEATURES

        vectors = np.frombuffer(vectors, dtype=np.float64).reshape(-1, len(FEATURES))

    window = {"since": None if lo is None else lo.isoformat(), "until": None if before is None else before.isoformat()}
    return fit(vectors, context, {"data_window": window, "history_rows": history})


def train(conn: Connection, schema: SchemaMap, before: datetime, settings: Settings) -> BehaviourModel | None:
    """Fit on a sample of the `train_span` before `before`, measured against `history` before that;
    None when there are too few transactions."""
    train_from, lo = before - settings.train_span, before - settings.train_span - settings.history
    history, step = _sample_step(conn, schema, train_from, before, settings.max_sample)
    if history < MIN_TRAINING:
        return None
    context = shop_context(conn, schema, train_from, before)
    stmt = sql.feature_statement(schema, lo, before, before, sample_step=step, train_from=train_from,
                                 failed_status=schema.failed_status)
    vectors = [vector(r, context) for r in sql.stream(conn, stmt)]
    return _fit(vectors, context, train_from, before, history)


def scan(conn: Connection, schema: SchemaMap, since: datetime | None, until: datetime | None, end: datetime,
         settings: Settings, outcome: Outcome, currency: str = "₹") -> Iterator[Finding]:
    """Findings for the transactions dated in [since, until), one per anomalous customer episode."""
    from anomaly_cli.ml.model import load

    if since is None:
        # From a midnight: every run of one day fits on the same rows, so the model, its
        # cut-offs and the findings of a cron job's hourly runs agree (a window sliding with the
        # clock changed the sample, and one transaction more moved a fifth of the findings).
        since = end.replace(hour=0, minute=0, second=0, microsecond=0) - DEFAULT_WINDOW
        outcome.notes["scored_since"] = since.isoformat()
    lo = since - settings.history
    train_from = since - settings.train_span
    # Counted first: a second query cannot run while a streamed result is open on MariaDB.
    outcome.skipped = sql.count_unusable(conn, schema, since, until)
    model = load(settings.model_path) if settings.model_path is not None else None
    step: int | None = None
    if model is None:
        history, step = _sample_step(conn, schema, train_from, since, settings.max_sample)
        if history < MIN_TRAINING:
            outcome.not_evaluated = f"insufficient history: {history} transactions before the window " \
                                    f"(at least {MIN_TRAINING} needed to fit; or give --model)"
            return
        context = shop_context(conn, schema, train_from, since)
    else:
        context = model.context
    stmt = sql.feature_statement(schema, lo, until, since, sample_step=step, train_from=train_from,
                                 failed_status=schema.failed_status)
    # Flat doubles: 50,000 vectors are 7 MB here, against ~32 MB as lists of Python floats.
    training = array("d")
    found: list[tuple[Episode, Severity]] = []
    rows = sql.stream(conn, stmt)
    for r in rows:
        if r.transaction_date < since:
            training.extend(vector(r, context))
            continue
        if model is None:
            model = _fit(training, context, train_from, since, history)
            training = array("d")
        found.extend(_judge(_scored(_chain(r, rows), model, context, outcome), model, settings))
        break
    if model is None:  # history but nothing to score
        outcome.not_evaluated = "no transactions in the window"
        return
    outcome.high = model.cutoffs["high"]
    outcome.notes.update(model=model.id, cutoffs={k: round(v, 4) for k, v in model.cutoffs.items()},
                         training_rows=model.meta.get("training_rows"))
    if outcome.judged == 0:
        outcome.not_evaluated = "no transactions in the window"
        return
    yield from _findings(conn, schema, found, model, lo, since, currency)


def _chain(first: sql.Raw, rest: Iterator[sql.Raw]) -> Iterator[sql.Raw]:
    yield first
    yield from rest


def _scored(rows: Iterator[sql.Raw], model: BehaviourModel, context: Context, outcome: Outcome) -> Iterator[Scored]:
    chunk: list[sql.Raw] = []

    def flush() -> Iterator[Scored]:
        vectors = [vector(r, context) for r in chunk]
        for r, v, s in zip(chunk, vectors, model.scores(vectors)):
            hour = r.transaction_date.replace(minute=0, second=0, microsecond=0)
            if s > outcome.hourly.get(hour, 0.0):
                outcome.hourly[hour] = s
            yield Scored(r, v, s)
        outcome.judged += len(chunk)
        chunk.clear()

    for r in rows:
        chunk.append(r)
        if len(chunk) == SCORE_CHUNK:
            yield from flush()
    yield from flush()


def _judge(items: Iterator[Scored], model: BehaviourModel, settings: Settings) -> Iterator[tuple[Episode, Severity]]:
    for episode in episodes(items, model.cutoffs["low"]):
        total = Decimal(episode.total_cents) / 100
        level = apply_rules(risk(episode.score, model.cutoffs), total, settings.min_amount, settings.critical_amount)
        if level is not None:
            yield episode, level


def _findings(conn: Connection, schema: SchemaMap, found: list[tuple[Episode, Severity]], model: BehaviourModel,
              lo: datetime | None, since: datetime, currency: str) -> Iterator[Finding]:
    """Explain and name the episodes; queried after the feature stream is closed (MariaDB allows
    one open result per connection)."""
    customers = sorted({e.customer_id for e, _ in found})
    names = sql.customer_names(conn, schema, customers)
    hours = sql.usual_hours(conn, schema, customers, lo, since)
    explained = model.contributions([e.top.vector for e, _ in found])
    for (episode, level), contributions in zip(found, explained):
        yield finding(episode, level, names.get(episode.customer_id),
                      explain(episode, contributions, hours.get(episode.customer_id), model.baseline),
                      model.id, currency)
