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
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import generate
from bench.reference import reference_sql

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ENGINES = ("sqlite", "mariadb", "postgresql")
HELP_TARGET_S = 0.2
TINY_TARGET_S = 0.25  # a scan of a tiny database: start-up and imports
TINY_ROWS = 200
REFERENCE_TARGET = 1.5  # SQLite: e2e <= 1.5 x the hand-written query (bench/reference.py)
SERVER_TARGET = 1.5  # PostgreSQL: e2e <= 1.5 x the check's own SQL replayed raw
MEMORY_TARGET_MB = 200.0
FETCH = 1000  # rows per fetchmany, as the checks' yield_per
# Statements that inspect the schema or set up the session; only reads of the audited tables replay.
NOT_REPLAYED = re.compile(r"^\s*(PRAGMA|SHOW|SET|DESCRIBE|EXPLAIN)\b|information_schema|pg_catalog", re.I)
LEAKY_PREFIXES = ("ANOMALY_", "MYSQL_")  # a developer's own settings must not steer the subprocess
LEAKY_NAMES = ("OPENAI_API_KEY", "AI_API_KEY", "OPENAI_BASE_URL")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Query:
    sql: str  # the first 160 characters
    seconds: float
    cpu_seconds: float  # of this process (the client); the server's own work is not in it
    rows: int


@dataclass
class Row:
    """One check (or `all`) on one engine, with or without the check indexes."""

    engine: str
    rows: int
    check: str
    indexes: str  # "without" | "with"
    seconds: float | None = None  # end to end: a new process, default options, JSON to a file
    raw_seconds: float | None = None  # the check's reads replayed through the plain driver
    ratio: float | None = None  # seconds / raw_seconds
    # The hand-written query for the same job (bench/reference.py), through the plain driver.
    ref_seconds: float | None = None
    ref_ratio: float | None = None  # seconds / ref_seconds
    ref_cpu_seconds: float | None = None
    ref_cpu_ratio: float | None = None  # cpu_seconds / ref_cpu_seconds (SQLite: all work is the client's)
    peak_mb: float | None = None  # max RSS of the end-to-end process
    inprocess_seconds: float | None = None  # run_checks in this process, findings consumed
    # CPU seconds (user + system) of the same runs: on SQLite all the work is the client's, so
    # their ratio is what the wall-clock ratio would be on an idle machine.
    cpu_seconds: float | None = None
    raw_cpu_seconds: float | None = None
    cpu_ratio: float | None = None
    findings: int | None = None
    exit_code: int | None = None
    error: str | None = None
    queries: list[Query] = field(default_factory=list)
    covers: list[str] = field(default_factory=list)  # the checks this run executes


@dataclass
class Target:
    name: str
    passed: bool | None  # None: not measured in this run
    detail: str


# --------------------------------------------------------------------------------------- processes


PYCACHE: Path | None = None  # set by main(): where the child processes keep their bytecode


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES) and k not in LEAKY_NAMES}
    if PYCACHE is not None:
        # An installed package has its bytecode compiled; a checkout run with PYTHONDONTWRITEBYTECODE
        # would compile anomaly_cli on every start. Keep it beside the data, out of the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


# The child's peak memory must be its own: Linux starts a child's ru_maxrss at the high-water
# mark of the process that spawned it (exec keeps the larger), and this process grows while it
# runs checks in-process. So children are spawned by a small helper that never grows.
SPAWNER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["stderr"], "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(job["cmd"], cwd=job["cwd"], env=job["env"], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    print(json.dumps([seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status),
                      usage.ru_utime + usage.ru_stime]), flush=True)
"""


class Spawner:
    """A lean helper process that runs commands and reports (seconds, max RSS KiB, exit code, CPU)."""

    def __init__(self) -> None:
        # -S: no site packages, so the helper stays at a few MB.
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", SPAWNER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, cmd: Sequence[str], cwd: Path, stderr: Path) -> tuple[float, int, int, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        job = {"cmd": list(cmd), "cwd": str(cwd), "env": clean_env(), "stderr": str(stderr)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        seconds, maxrss, code, cpu = json.loads(self.proc.stdout.readline())
        return seconds, maxrss, code, cpu

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


SPAWN: Spawner | None = None  # started by main()


def timed_process(cmd: Sequence[str], cwd: Path) -> tuple[float, float, int, str, float]:
    """(wall seconds, peak RSS in MB, exit code, stderr, CPU seconds) of one child process."""
    assert SPAWN is not None, "main() starts the spawner"
    stderr = cwd / "stderr.txt"
    # wait4 in the helper: the child's own rusage (ru_maxrss is KiB on Linux).
    seconds, maxrss, code, cpu = SPAWN.run(cmd, cwd, stderr)
    return seconds, maxrss / 1024, code, stderr.read_text(encoding="utf-8", errors="replace"), cpu


def anomaly_command() -> list[str]:
    """The console script next to this interpreter, else `python -m anomaly_cli`."""
    script = Path(sys.executable).with_name("anomaly")
    return [str(script)] if script.exists() else [sys.executable, "-m", "anomaly_cli"]


def time_help(workdir: Path, runs: int = 5) -> list[dict[str, Any]]:
    out = []
    launchers = {"console script": anomaly_command(), "python -m": [sys.executable, "-m", "anomaly_cli"]}
    for label, launcher in launchers.items():
        for args in (["--help"], ["scan", "price", "--help"]):
            timings = [timed_process(launcher + args, workdir) for _ in range(runs)]
            out.append({"command": " ".join(["anomaly" if label == "console script" else "python -m anomaly_cli"]
                                            + args), "seconds": round(min(t[0] for t in timings), 3),
                        "cpu_seconds": round(min(t[4] for t in timings), 3)})
    return out


def time_tiny(workdir: Path, data_dir: Path, runs: int = 5) -> list[dict[str, Any]]:
    """`scan <check>` of a tiny shop (TINY_ROWS transactions), best of `runs`: start-up and imports."""
    made = generate.ensure("sqlite", TINY_ROWS, 7, data_dir=data_dir, server_url=None, create=True,
                           log=lambda _: None)
    assert made is not None
    out = []
    for check in ("price", "sales", "spam", "failed"):
        cmd = anomaly_command() + ["scan", check, "--db", made.url, "--format", "json",
                                   "--output", str(workdir / "tiny.json")]
        timings = [timed_process(cmd, workdir) for _ in range(runs)]
        failed = [t for t in timings if t[2] not in (0, 1)]
        out.append({"command": f"anomaly scan {check} (tiny database)", "seconds": round(min(t[0] for t in timings), 3),
                    "cpu_seconds": round(min(t[4] for t in timings), 3),
                    "error": " ".join(failed[0][3].split())[-200:] if failed else None})
    return out


def end_to_end(check: str, url: str, workdir: Path) -> tuple[float, float, float, int, int | None, str | None]:
    """`anomaly scan <check> --db URL --format json --output FILE` in a new process, as a user runs it."""
    output = workdir / f"{check}.json"
    output.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "anomaly_cli", "scan", check, "--db", url, "--format", "json",
           "--output", str(output)]
    seconds, peak_mb, code, stderr, cpu = timed_process(cmd, workdir)
    if code not in (0, 1):  # 1 only says that findings exist
        return seconds, cpu, peak_mb, code, None, " ".join(stderr.split())[-300:] or f"exit code {code}"
    document = json.loads(output.read_text(encoding="utf-8"))
    return seconds, cpu, peak_mb, code, sum(c["summary"]["findings"] for c in document["checks"]), None


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
            conn.rollback()
    finally:
        conn.close()
    return sum(q.seconds for q in queries), sum(q.cpu_seconds for q in queries), queries


# --------------------------------------------------------------------------------------- indexes


class _Extra:
    """A pseudo check carrying --extra-index declarations (apply_indexes reads name and indexes)."""

    name = "bench-extra"
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()


def parse_extra(specs: Sequence[str]) -> type[_Extra]:
    pairs = []
    for spec in specs:
        table, _, columns = spec.partition(":")
        if not table or not columns:
            raise SystemExit(f"--extra-index {spec!r}: expected TABLE:COL[,COL...]")
        pairs.append((table, tuple(columns.split(","))))
    return type("BenchExtra", (_Extra,), {"indexes": tuple(pairs)})


def drop_bench_indexes(url: str) -> list[str]:
    """Back to 'without': drop every ix_anomaly_* index the benchmark or `db indexes` created."""
    import sqlalchemy as sa

    from anomaly_cli.indexes import PREFIX

    engine = sa.create_engine(url)
    dropped = []
    try:
        with engine.begin() as conn:
            inspector = sa.inspect(conn)
            quote = conn.dialect.identifier_preparer.quote
            for table in generate.TABLES:
                for index in inspector.get_indexes(table):
                    if (index["name"] or "").startswith(PREFIX):
                        on = f" ON {quote(table)}" if conn.dialect.name in ("mysql", "mariadb") else ""
                        conn.execute(sa.text(f"DROP INDEX {quote(index['name'])}{on}"))
                        dropped.append(index["name"])
    finally:
        engine.dispose()
    return dropped


def apply(url: str, checks: Sequence[type], analyze: bool) -> tuple[float, list[str]]:
    from anomaly_cli.config import default_schema
    from anomaly_cli.db import connect, parse_url
    from anomaly_cli.indexes import apply_indexes

    started = time.perf_counter()
    with connect(parse_url(url), read_only=False) as conn:
        executed = apply_indexes(conn, default_schema(), checks)
        conn.commit()
        if analyze:
            analyze_tables(conn)
    return time.perf_counter() - started, executed


def analyze_tables(conn: Any) -> None:
    import sqlalchemy as sa

    if conn.dialect.name in ("mysql", "mariadb"):
        conn.execute(sa.text(f"ANALYZE TABLE {', '.join(generate.TABLES)}")).fetchall()
    else:
        conn.execute(sa.text("ANALYZE"))
    conn.commit()


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
            workdir: Path, args: argparse.Namespace) -> Row:
    """One row: in-process capture (which also warms the caches), end to end, raw replay."""
    from anomaly_cli.config import default_schema

    row = Row(engine, rows, label, phase, covers=[c.name for c in checks])
    statements: list[tuple[str, Any]] = []
    if not args.no_raw:
        row.inprocess_seconds, row.findings, captured = capture(url, checks, workdir)
        tables = [default_schema()[t].name for t in generate.TABLES]
        statements = [(s, p) for s, p in captured if reads_audited(s, tables)]
    runs = []
    for _ in range(args.repeat):
        seconds, cpu, peak_mb, code, findings, error = end_to_end(label, url, workdir)
        row.exit_code, row.error = code, error
        row.peak_mb = max(row.peak_mb or 0.0, peak_mb)
        if error is not None:
            break
        row.findings = findings
        runs.append((seconds, cpu))
    if runs:
        row.seconds, row.cpu_seconds = min(s for s, _ in runs), min(c for _, c in runs)
    if statements:
        raw = [replay(url, statements) for _ in range(args.repeat)]
        row.raw_seconds = min(r[0] for r in raw)
        row.raw_cpu_seconds = min(r[1] for r in raw)
        row.queries = min(raw, key=lambda r: r[0])[2]
    if row.seconds is not None and row.raw_seconds:
        row.ratio = row.seconds / row.raw_seconds
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
                           create=not args.skip_generate, log=say)
    if made is None:
        say(f"{engine}: skipped, no generated database (run without --skip-generate)")
        report["status"] = "skipped: no generated database"
        return
    say(f"{engine}: {made.url} ({'reused' if made.reused else f'generated in {made.seconds:.1f} s'}, "
        f"{made.items:,} items)")
    report.update(status="ran", url=made.url, generated_seconds=round(made.seconds, 2), reused=made.reused,
                  items=made.items)
    checks, skipped = runnable_checks(made.url, selected, workdir)
    for name, why in skipped.items():
        say(f"{engine}: check {name} skipped: {why}")
    report["skipped_checks"] = skipped
    extra = parse_extra(args.extra_index)
    phases = ["without", "with"] if args.indexes == "both" else [args.indexes]
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
            row = measure(engine, args.rows, made.url, label, group, phase, workdir, args)
            results.append(row)
            say(f"{engine} {phase:>7} {label:<6} " + (f"error: {row.error}" if row.error else
                f"e2e {fmt(row.seconds)} s, in-process {fmt(row.inprocess_seconds)} s, "
                f"raw {fmt(row.raw_seconds)} s, peak {fmt(row.peak_mb, 0)} MB, {row.findings} findings"))


# --------------------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def reference_ok(row: Row, cpu: bool = False) -> bool | None:
    """SQLite: e2e within REFERENCE_TARGET x the hand-written query (wall clock, or CPU time)."""
    ratio = row.ref_cpu_ratio if cpu else row.ref_ratio
    return None if ratio is None else ratio <= REFERENCE_TARGET


def server_ok(row: Row) -> bool | None:
    """PostgreSQL: e2e within SERVER_TARGET x the check's own SQL replayed raw."""
    return None if row.ratio is None else row.ratio <= SERVER_TARGET


def evaluate(results: list[Row], help_times: list[dict[str, Any]], tiny: list[dict[str, Any]]) -> list[Target]:
    targets = []
    slow_help = [h for h in help_times if h["seconds"] > HELP_TARGET_S]
    targets.append(Target(
        f"--help in <= {HELP_TARGET_S} s (best of 5)", (not slow_help) if help_times else None,
        "; ".join(f"{h['command']}: {h['seconds']:.3f} s ({h['cpu_seconds']:.3f} s CPU)" for h in help_times)
        or "not measured"))
    slow_tiny = [h for h in tiny if h["seconds"] > TINY_TARGET_S or h["error"]]
    targets.append(Target(
        f"a scan of a tiny database ({TINY_ROWS} transactions) in <= {TINY_TARGET_S} s (best of 5)",
        (not slow_tiny) if tiny else None,
        "; ".join(f"{h['command']}: {h['seconds']:.3f} s ({h['cpu_seconds']:.3f} s CPU)"
                  + (f" error: {h['error']}" if h["error"] else "") for h in tiny) or "not measured"))

    for cpu in (False, True):
        measured = [r for r in results if r.engine == "sqlite" and reference_ok(r, cpu) is not None]
        failing = [r for r in measured if not reference_ok(r, cpu)]
        sizes = ", ".join(f"{s:,}" for s in sorted({r.rows for r in measured})) or "-"
        seconds = "cpu_seconds" if cpu else "seconds"
        ref = "ref_cpu_seconds" if cpu else "ref_seconds"
        targets.append(Target(
            f"SQLite: price, sales, spam, failed e2e <= {REFERENCE_TARGET} x the hand-written query, "
            + ("on CPU time (what an idle machine would show)" if cpu else "wall clock")
            + f" (target at 1M; measured at {sizes})",
            (not failing) if measured else None,
            "; ".join(f"{r.check} ({r.indexes} indexes): {fmt(getattr(r, seconds))} s vs "
                      f"{fmt(getattr(r, ref))} s = {fmt(getattr(r, seconds) / getattr(r, ref))}x"
                      for r in (failing or measured))))

    measured = [r for r in results if r.engine == "postgresql" and r.check != "all" and server_ok(r) is not None]
    failing = [r for r in measured if not server_ok(r)]
    targets.append(Target(
        f"PostgreSQL: every check e2e <= {SERVER_TARGET} x its own SQL replayed raw",
        (not failing) if measured else None,
        "; ".join(f"{r.check} ({r.indexes}): {fmt(r.seconds)} s vs {fmt(r.raw_seconds)} s = {fmt(r.ratio)}x"
                  for r in (failing or measured)) or "not measured"))

    measured = [r for r in results if r.peak_mb is not None]
    heavy = [r for r in measured if r.peak_mb > MEMORY_TARGET_MB]
    worst = max(measured, key=lambda r: r.peak_mb, default=None)
    targets.append(Target(
        f"peak memory <= {MEMORY_TARGET_MB:.0f} MB for every run (target at 1M and 10M)",
        (not heavy) if measured else None,
        "; ".join(f"{r.engine} {r.check} ({r.indexes}): {r.peak_mb:.0f} MB" for r in heavy)
        or (f"largest: {worst.engine} {worst.check} {worst.peak_mb:.0f} MB" if worst else "not measured")))

    details, verdicts = [], []
    for key in sorted({(r.engine, r.indexes) for r in results}):
        group = [r for r in results if (r.engine, r.indexes) == key]
        every = next((r for r in group if r.check == "all"), None)
        singles = [r for r in group if r.check != "all"]
        if every is None or every.seconds is None or any(r.seconds is None for r in singles):
            continue
        if sorted(r.check for r in singles) != sorted(every.covers):
            details.append(f"{key[0]} ({key[1]}): not compared, --checks left some out")
            continue
        total = sum(r.seconds for r in singles if r.seconds is not None)
        verdicts.append(every.seconds <= total)
        details.append(f"{key[0]} ({key[1]}): all {every.seconds:.2f} s vs sum {total:.2f} s")
    targets.append(Target("scan all no slower than the sum of the checks one by one",
                          all(verdicts) if verdicts else None, "; ".join(details) or "not measured"))
    return targets


def table(results: list[Row]) -> str:
    header = ("engine", "rows", "indexes", "check", "e2e s", "ref s", "ref ratio", "e2e cpu", "ref cpu",
              "cpu ratio", "raw s", "raw ratio", "peak MB", "findings", "target")
    lines = [header]
    word = {True: "PASS", False: "FAIL", None: "-"}
    for r in results:
        if r.error:
            verdict = f"error: {r.error[:60]}"
        elif r.engine == "sqlite" and r.ref_ratio is not None:
            verdict = f"{word[reference_ok(r)]}/{word[reference_ok(r, True)]}"  # wall clock / CPU time
        elif r.engine == "postgresql" and r.check != "all":
            verdict = word[server_ok(r)]
        else:
            verdict = "-"
        lines.append((r.engine, f"{r.rows:,}", r.indexes, r.check, fmt(r.seconds), fmt(r.ref_seconds),
                      fmt(r.ref_ratio), fmt(r.cpu_seconds), fmt(r.ref_cpu_seconds), fmt(r.ref_cpu_ratio),
                      fmt(r.raw_seconds), fmt(r.ratio), fmt(r.peak_mb, 0),
                      "-" if r.findings is None else str(r.findings), verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
            for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


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
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: sqlite,mariadb,postgresql")
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
    parser.add_argument("--seed", type=int, default=7, help="data generator seed (default 7)")
    parser.add_argument("--data-dir", type=Path, default=generate.DATA_DIR, help="SQLite database cache")
    parser.add_argument("--mariadb-url", default=generate.SERVERS["mariadb"], help="MariaDB server URL")
    parser.add_argument("--postgresql-url", default=generate.SERVERS["postgresql"], help="PostgreSQL server URL")
    args = parser.parse_args(argv)
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in args.engine_list if e not in ENGINES]
    if bad:
        parser.error(f"unknown engine(s) {', '.join(bad)}; use {', '.join(ENGINES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
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
    global PYCACHE, SPAWN
    generate.prepare_data_dir(args.data_dir)
    PYCACHE = args.data_dir / "pycache"
    SPAWN = Spawner()
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
            SPAWN.close()
    targets = evaluate(results, help_times, tiny)
    elapsed = time.perf_counter() - started

    print(table(results))
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
