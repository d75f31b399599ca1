"""The behaviour check's benchmark row: where its time and memory go at a million transactions.

    .venv/bin/python -m bench.behaviour                    # 1M transactions, SQLite
    .venv/bin/python -m bench.behaviour --rows 3000 --data-dir /tmp/b   # a smoke run

In process, on the shop of bench/generate.py (the last 7 days scored, as `scan behaviour
--since 7d` would): the feature query alone (the one statement, every row fetched and
converted), the fit, and the scoring and judging. Then end to end in new processes (timed
wall clock, peak memory from the child's own rusage, as bench/run.py does): `scan behaviour`
fitting at run time, `train behaviour`, and `scan behaviour --model FILE`.
Results go to bench/results/behaviour-<timestamp>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import generate
import bench.processes as run_module
from bench.processes import Spawner, anomaly_command, timed_process

TARGET_SECONDS, TARGET_MB = 60.0, 300.0
RESULTS = Path(__file__).resolve().parent / "results"


def in_process(url: str, since: datetime, until: datetime) -> dict[str, Any]:
    """Feature query, fit and scoring times of one run-time fit, measured apart."""
    import sqlalchemy as sa

    from anomaly_cli.config import default_schema
    from anomaly_cli.ml import runner, sql
    from anomaly_cli.ml.features import vector
    from anomaly_cli.ml.judge import Scored, episodes
    from anomaly_cli.ml.model import fit

    schema, settings = default_schema(), runner.Settings()
    lo, train_from = since - settings.history, since - settings.train_span
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        started, cpu = time.perf_counter(), time.process_time()
        history = sql.count_history(conn, schema, train_from, since)
        step = max(1, math.ceil(history / settings.max_sample))
        context = runner.shop_context(conn, schema, train_from, since)
        stmt = sql.feature_statement(schema, lo, until, since, sample_step=step, train_from=train_from)
        training, window = [], []
        for r in sql.stream(conn, stmt):
            (training if r.transaction_date < since else window).append(r)
        feature_seconds, feature_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    model = fit([vector(r, context) for r in training], context, {})
    fit_seconds, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    scored = []
    for i in range(0, len(window), runner.SCORE_CHUNK):
        chunk = window[i:i + runner.SCORE_CHUNK]
        vectors = [vector(r, context) for r in chunk]
        scored += [Scored(r, v, s) for r, v, s in zip(chunk, vectors, model.scores(vectors))]
    found = list(episodes(iter(scored), model.cutoffs["low"]))
    model.contributions([e.top.vector for e in found])
    score_seconds, score_cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    # CPU time beside wall clock: on a shared machine the wall clock measures the neighbours too.
    return {"feature_query_s": round(feature_seconds, 2), "fit_s": round(fit_seconds, 2),
            "scoring_s": round(score_seconds, 2), "feature_query_cpu_s": round(feature_cpu, 2),
            "fit_cpu_s": round(fit_cpu, 2), "scoring_cpu_s": round(score_cpu, 2), "training_rows": len(training), "scored_rows": len(window),
            "episodes_above_low": len(found)}


def end_to_end(url: str, since: datetime, until: datetime, workdir: Path) -> dict[str, Any]:
    base = anomaly_command()
    window = ["--since", since.isoformat(), "--until", until.isoformat()]
    model = workdir / "behaviour.model"
    out: dict[str, Any] = {}
    runs = {
        "scan_fit": [*base, "scan", "behaviour", "--db", url, *window, "--format", "json",
                     "--output", str(workdir / "fit.json"), "--fail-on", "never"],
        "train": [*base, "train", "behaviour", "--db", url, "--model", str(model), "--until", since.isoformat()],
        "scan_model": [*base, "scan", "behaviour", "--db", url, *window, "--model", str(model), "--format",
                       "json", "--output", str(workdir / "model.json"), "--fail-on", "never"],
    }
    for name, cmd in runs.items():
        seconds, peak_mb, code, stderr, cpu = timed_process(cmd, workdir)
        out[name] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "peak_mb": round(peak_mb, 1),
                     "exit_code": code, "error": stderr.strip().splitlines()[-1] if code not in (0, 1) else None}
    findings = json.loads((workdir / "fit.json").read_text())["checks"][0]["summary"]
    out["scan_fit"]["findings"] = findings.get("findings")
    out["scan_fit"]["by_severity"] = findings.get("by_severity")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=7, help="days scored (the window before the data's end)")
    parser.add_argument("--data-dir", type=Path, default=generate.DATA_DIR)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    made = generate.ensure("sqlite", args.rows, args.seed, data_dir=args.data_dir, log=lambda m: print(m, file=sys.stderr))
    assert made is not None
    url = made.url
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT max(transaction_date) FROM transactions")).scalar()
    engine.dispose()
    until = datetime.fromisoformat(str(last)) + timedelta(seconds=1)
    since = until - timedelta(days=args.days)
    run_module.SPAWN = Spawner()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            row: dict[str, Any] = {"engine": "sqlite", "rows": args.rows, "since": since.isoformat(),
                                   "until": until.isoformat(), **in_process(url, since, until)}
            row.update(end_to_end(url, since, until, Path(tmp)))
    finally:
        run_module.SPAWN.close()
    row["load_average"] = os.getloadavg()[0]
    e2e = row["scan_fit"]
    row["targets"] = {"seconds": TARGET_SECONDS, "peak_mb": TARGET_MB,
                      "pass": e2e["seconds"] <= TARGET_SECONDS and e2e["peak_mb"] <= TARGET_MB
                      and row["scan_model"]["peak_mb"] <= TARGET_MB}
    load = os.getloadavg()[0]
    print(f"behaviour, sqlite, {args.rows:,} transactions ({row['scored_rows']:,} scored, "
          f"{row['training_rows']:,} fitted on; load average {load:.1f})")
    print(f"  feature query {row['feature_query_s']} s ({row['feature_query_cpu_s']} s CPU), fit {row['fit_s']} s "
          f"({row['fit_cpu_s']} s CPU), scoring {row['scoring_s']} s ({row['scoring_cpu_s']} s CPU)")
    for name in ("scan_fit", "train", "scan_model"):
        r = row[name]
        print(f"  {name:<10} e2e {r['seconds']:>6} s  cpu {r['cpu_seconds']:>6} s  peak {r['peak_mb']:>6} MB"
              f"  exit {r['exit_code']}" + (f"  {r['error']}" if r["error"] else ""))
    print(f"  target <= {TARGET_SECONDS:.0f} s and <= {TARGET_MB:.0f} MB: {'PASS' if row['targets']['pass'] else 'FAIL'}")
    path = args.json or RESULTS / f"behaviour-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    print(f"  written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
