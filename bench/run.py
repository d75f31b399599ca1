"""Benchmark: every check and `scan all` end to end, as a user runs them, against hand-written SQL.

    .venv/bin/python -m bench.run                      # 1M transactions, every engine that answers
    .venv/bin/python -m bench.run --rows 10000000 --engines sqlite

See bench/README.md for what is measured and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import generate, processes
from bench.index_phase import apply, drop_bench_indexes, parse_extra
from bench.processes import Spawner, anomaly_command, scans, time_help, time_tiny, timed_process
from bench.reference import reference_sql
from bench.report import NOT_SQL_BOUND, TINY_ROWS, Query, Row, evaluate, fmt, pool_startups
from bench.report import table as results_table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ENGINES = ("sqlite", "mariadb", "postgresql", "duckdb")
FETCH = 1000  # rows per fetchmany, as the checks' yield_per
# Statements that inspect the schema or set up the session; only reads of the audited tables replay.
NOT_REPLAYED = re.compile(r"^\s*(PRAGMA|SHOW|SET|DESCRIBE|EXPLAIN)\b|information_schema|pg_catalog", re.I)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------- raw SQL


def capture(url: str, checks: Sequence[type], workdir: Path) -> tuple[float, int, list[tuple[str, Any]]]:
    """Run the checks in this process; (seconds, findings, every (statement, parameters) executed)."""
    import sqlalchemy as sa

    from anomaly_cli.config import load_settings
    from anomaly_cli.model import Window
    from anomaly_cli.scan import build_request, run_scan

    captured: list[tuple[str, Any]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        captured.append((statement, parameters))

    settings = load_settings(flags={"db.url": url}, check_params={c.name: c.params for c in checks},
                             environ={}, cwd=workdir)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", listener)
    try:
        started = time.perf_counter()
        report = run_scan(build_request(settings, [c.name for c in checks], Window(), now=datetime.now()))
        findings = sum(result.findings for result in report.results)
        seconds = time.perf_counter() - started
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", listener)
    return seconds, findings, captured


def reads_audited(statement: str, tables: Sequence[str]) -> bool:
    if NOT_REPLAYED.search(statement):
        return False
    return any(re.search(rf"\b{re.escape(t)}\b", statement, re.I) for t in tables)


def replay(url: str, statements: Sequence[tuple[str, Any]]) -> tuple[float, float, list[Query]]:
    """Each statement through a plain driver connection, every row fetched, no Python processing."""
    conn = generate.dbapi_connect(url, streaming=True)
    queries = []
    try:
        for sql, parameters in statements:
            cursor = conn.cursor()
            started, cpu = time.perf_counter(), time.process_time()
            cursor.execute(sql, parameters)  # parameters always: pymysql and psycopg unescape %% only then
            rows = 0
            while batch := cursor.fetchmany(FETCH):
                rows += len(batch)
            queries.append(Query(" ".join(sql.split())[:160], time.perf_counter() - started,
                                 time.process_time() - cpu, rows))
            cursor.close()
            if not url.startswith("duckdb"):  # DuckDB has no transaction open to end
                conn.rollback()
    finally:
        conn.close()
    return sum(q.seconds for q in queries), sum(q.cpu_seconds for q in queries), queries


# --------------------------------------------------------------------------------------- indexes


# --------------------------------------------------------------------------------------- runs


def runnable_checks(url: str, checks: Sequence[type], workdir: Path) -> tuple[list[type], dict[str, str]]:
    """The checks whose tables exist in the benchmark database (status_counts, checkout do not)."""
    import sqlalchemy as sa

    from anomaly_cli.config import load_settings

    settings = load_settings(flags={"db.url": url}, check_params={c.name: c.params for c in checks},
                             environ={}, cwd=workdir)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    ok, skipped = [], {}
    for cls in checks:
        params = settings.check_params(cls.name, cls.params)
        needs = cls.needs_for(params) if hasattr(cls, "needs_for") else cls.needs
        missing = [settings.schema[t].name for t in needs if settings.schema[t].name not in present]
        if missing:
            skipped[cls.name] = f"table {', '.join(missing)} not in the shop schema"
        else:
            ok.append(cls)
    return ok, skipped


def measure(engine: str, rows: int, url: str, label: str, checks: Sequence[type], phase: str,
            workdir: Path, args: argparse.Namespace, startup_url: str | None = None) -> Row:
    """One row: in-process capture (which also warms the caches), end to end, raw replay; with
    `startup_url` (a tiny database of the same engine), the same scan of it as the start-up."""
    from anomaly_cli.config import default_schema

    row = Row(engine, rows, label, phase, covers=[c.name for c in checks])
    statements: list[tuple[str, Any]] = []
    if not args.no_raw:
        row.inprocess_seconds, row.findings, captured = capture(url, checks, workdir)
        tables = [default_schema()[t].name for t in generate.TABLES]
        statements = [(s, p) for s, p in captured if reads_audited(s, tables)]
    timed_startup = startup_url is not None and label != "all" and label not in NOT_SQL_BOUND
    runs, startups = scans(label, url, startup_url if timed_startup else None, workdir, args.repeat)
    for seconds, cpu, peak_mb, code, findings, error in runs:
        row.exit_code, row.error = code, error
        row.peak_mb = max(row.peak_mb or 0.0, peak_mb)
        if error is None:
            row.findings = findings
    timed = [(r[0], r[1]) for r in runs if r[5] is None]
    if timed and row.error is None:
        row.seconds, row.cpu_seconds = min(s for s, _ in timed), min(c for _, c in timed)
    if startups:
        row.startup_seconds, row.startup_cpu_seconds = min(s for s, _ in startups), min(c for _, c in startups)
    elif timed_startup and row.error is None:
        say(f"{engine} {phase} {label}: every scan of the tiny database failed: no start-up, not judged")
    if statements:
        raw = [replay(url, statements) for _ in range(args.repeat)]
        row.raw_seconds = min(r[0] for r in raw)
        row.raw_cpu_seconds = min(r[1] for r in raw)
        row.queries = min(raw, key=lambda r: r[0])[2]
    if row.seconds is not None and row.raw_seconds:
        row.ratio = row.seconds / row.raw_seconds
        if row.startup_seconds is not None:
            row.work_ratio = (row.seconds - row.startup_seconds) / row.raw_seconds
    reference = reference_sql(engine, label)
    if reference is not None and row.seconds is not None:
        refs = [replay(url, [(reference, ())]) for _ in range(args.repeat)]
        row.ref_seconds, row.ref_cpu_seconds = min(r[0] for r in refs), min(r[1] for r in refs)
        row.ref_ratio = row.seconds / row.ref_seconds
        if engine == "sqlite" and row.cpu_seconds is not None and row.ref_cpu_seconds:
            row.ref_cpu_ratio = row.cpu_seconds / row.ref_cpu_seconds
    if engine == "sqlite" and row.cpu_seconds is not None and row.raw_cpu_seconds:
        # Only on SQLite is the query's CPU time the client's; a server's work is not in it.
        row.cpu_ratio = row.cpu_seconds / row.raw_cpu_seconds
    return row


def run_engine(engine: str, args: argparse.Namespace, selected: list[type], include_all: bool,
               workdir: Path, results: list[Row], report: dict[str, Any]) -> None:
    from anomaly_cli.checks import registry

    server = {"mariadb": args.mariadb_url, "postgresql": args.postgresql_url}.get(engine)
    if server is not None:
        problem = generate.server_problem(engine, server)
        if problem is not None:
            say(f"{engine}: skipped, the server does not answer ({problem})")
            report["status"] = f"skipped: server does not answer ({problem})"
            return
    say(f"{engine}: {'looking for' if args.skip_generate else 'preparing'} {args.rows:,} transactions ...")
    made = generate.ensure(engine, args.rows, args.seed, data_dir=args.data_dir, server_url=server,
                           create=not args.skip_generate, log=say, suffix=args.db_suffix)
    if made is None:
        say(f"{engine}: skipped, no generated database (run without --skip-generate)")
        report["status"] = "skipped: no generated database"
        return
    say(f"{engine}: {made.url} ({'reused' if made.reused else f'generated in {made.seconds:.1f} s'}, "
        f"{made.items:,} items)")
    report.update(status="ran", url=made.url, generated_seconds=round(made.seconds, 2), reused=made.reused,
                  items=made.items)
    startup_url = None
    if engine == "postgresql":
        # The start-up the PostgreSQL target sets aside: each check scanning a tiny database on
        # the same server (generated like the large one, in a second; always, like SQLite's).
        tiny = generate.ensure(engine, TINY_ROWS, args.seed, server_url=server, create=True,
                               log=lambda _: None, suffix=args.db_suffix)
        assert tiny is not None
        startup_url = report["startup_url"] = tiny.url
    checks, skipped = runnable_checks(made.url, selected, workdir)
    for name, why in skipped.items():
        say(f"{engine}: check {name} skipped: {why}")
    report["skipped_checks"] = skipped
    extra = parse_extra(args.extra_index)
    phases = ["without", "with"] if args.indexes == "both" else [args.indexes]
    if engine == "duckdb":
        phases = ["without"]  # a column store: the checks declare no index there
    for phase in phases:
        if phase == "without":
            dropped = drop_bench_indexes(made.url)
            if dropped:
                say(f"{engine}: dropped {', '.join(dropped)}")
        else:
            seconds, executed = apply(made.url, list(checks) + [extra], args.analyze)
            report["apply_seconds"], report["applied"] = round(seconds, 2), executed
            say(f"{engine}: applied {len(executed)} index(es) in {seconds:.1f} s" +
                "".join(f"\n    {s}" for s in executed))
        runs: list[tuple[str, Sequence[type]]] = [(c.name, [c]) for c in checks]
        if include_all:
            # `scan all` runs every check whose tables exist, whatever --checks selected.
            runs.append(("all", runnable_checks(made.url, list(registry().values()), workdir)[0]))
        for label, group in runs:
            row = measure(engine, args.rows, made.url, label, group, phase, workdir, args, startup_url)
            results.append(row)
            startup = "" if row.startup_seconds is None else f", start-up {fmt(row.startup_seconds)} s"
            say(f"{engine} {phase:>7} {label:<6} " + (f"error: {row.error}" if row.error else
                f"e2e {fmt(row.seconds)} s, in-process {fmt(row.inprocess_seconds)} s, "
                f"raw {fmt(row.raw_seconds)} s{startup}, peak {fmt(row.peak_mb, 0)} MB, {row.findings} findings"))
    pool_startups([r for r in results if r.engine == engine])


def select_checks(spec: str | None) -> tuple[list[type], bool]:
    from anomaly_cli.checks import registry

    checks = registry()
    if not spec:
        return list(checks.values()), True
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n != "all" and n not in checks]
    if unknown:
        raise SystemExit(f"unknown check(s): {', '.join(unknown)} (known: {', '.join(checks)}, all)")
    return [checks[n] for n in names if n != "all"] or list(checks.values()), "all" in names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="transactions to generate (default 1,000,000)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: sqlite,mariadb,postgresql,duckdb")
    parser.add_argument("--checks", default=None,
                        help="comma-separated check names, 'all' for scan all (default: every check and all)")
    parser.add_argument("--json", type=Path, default=None, help="results file (default bench/results/<time>.json)")
    parser.add_argument("--skip-generate", action="store_true", help="use existing benchmark databases only")
    parser.add_argument("--indexes", choices=("both", "without", "with"), default="both",
                        help="run without the check indexes, with them, or both (default)")
    parser.add_argument("--extra-index", action="append", default=[], metavar="TABLE:COL[,COL]",
                        help="also create this index in the 'with' phase (logical names; repeatable)")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE the tables after creating the indexes")
    parser.add_argument("--repeat", type=int, default=1, help="best of N end-to-end and raw runs (default 1)")
    parser.add_argument("--no-raw", action="store_true", help="only end to end and memory (no raw SQL replay)")
    parser.add_argument("--no-help-timing", action="store_true", help="skip timing anomaly --help and the tiny-database scans")
    parser.add_argument("--startup-only", action="store_true",
                        help="only time anomaly --help and the tiny-database scans (no engine runs)")
    parser.add_argument("--seed", type=int, default=7, help="data generator seed (default 7)")
    parser.add_argument("--data-dir", type=Path, default=generate.DATA_DIR, help="SQLite database cache")
    parser.add_argument("--mariadb-url", default=generate.SERVERS["mariadb"], help="MariaDB server URL")
    parser.add_argument("--postgresql-url", default=generate.SERVERS["postgresql"], help="PostgreSQL server URL")
    parser.add_argument("--db-suffix", default="", metavar="SUFFIX",
                        help="append _SUFFIX to the server databases' names (one copy per engineer on a shared server)")
    args = parser.parse_args(argv)
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in args.engine_list if e not in ENGINES]
    if bad:
        parser.error(f"unknown engine(s) {', '.join(bad)}; use {', '.join(ENGINES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.startup_only:
        if args.no_help_timing:
            parser.error("--startup-only and --no-help-timing leave nothing to measure")
        args.engine_list = []
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    if load_before > (os.cpu_count() or 1):
        say(f"warning: load average {load_before:.1f} on {os.cpu_count()} CPUs: timings will be noisy "
            "(consider --repeat 3)")
    started_at = datetime.now()
    started = time.perf_counter()
    selected, include_all = select_checks(args.checks)
    results: list[Row] = []
    engines: dict[str, dict[str, Any]] = {}
    generate.prepare_data_dir(args.data_dir)
    processes.PYCACHE = args.data_dir / "pycache"
    spawner = processes.SPAWN = Spawner()
    with tempfile.TemporaryDirectory(prefix="anomaly-bench-") as tmp:
        workdir = Path(tmp)  # empty: no anomaly.toml or .env steers the runs
        timed_process(anomaly_command() + ["scan", "--help"], workdir)  # compiles the bytecode once
        help_times = [] if args.no_help_timing else time_help(workdir)
        tiny = [] if args.no_help_timing else time_tiny(workdir, args.data_dir)
        try:
            for engine in args.engine_list:
                engines[engine] = {}
                run_engine(engine, args, selected, include_all, workdir, results, engines[engine])
        finally:
            spawner.close()
    if tiny:
        startup = min(t["cpu_seconds"] for t in tiny)
        for r in results:
            if r.engine == "sqlite" and r.cpu_seconds is not None and r.ref_cpu_seconds:
                r.work_cpu_ratio = (r.cpu_seconds - startup) / r.ref_cpu_seconds
    targets = evaluate(results, help_times, tiny)
    elapsed = time.perf_counter() - started

    print(results_table(results))
    print("(work ratio: SQLite, e2e CPU less the tiny-database scan's CPU, over the reference's CPU, not a target;\n"
          " PostgreSQL, e2e less start-up s, over raw s, the target: start-up s is the same scan of a tiny\n"
          " PostgreSQL database, best of the runs interleaved with the e2e ones)")
    print()
    for h in help_times + tiny:
        print(f"{h['command']:<40} {h['seconds']:.3f} s wall, {h['cpu_seconds']:.3f} s CPU")
    print()
    for t in targets:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[t.passed]
        print(f"{verdict}  {t.name}\n      {t.detail}")
    load_after = os.getloadavg()[0]
    print(f"\nbenchmark wall time {elapsed:.0f} s; load average {load_before:.1f} before, {load_after:.1f} after "
          f"({os.cpu_count()} CPUs)")

    document = {
        "tool": "anomaly-bench", "started_at": started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(elapsed, 1), "rows": args.rows, "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average": [round(load_before, 2), round(load_after, 2)]},
        "engines": engines, "help": help_times, "tiny": tiny,
        "targets": [asdict(t) for t in targets],
        "results": [_rounded(asdict(r)) for r in results],
    }
    path = args.json or RESULTS_DIR / f"{started_at:%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {path}")
    return 0


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
