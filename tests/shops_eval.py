"""Load a generated shop (tests/shops.py) as a user would, run the CLI on it, and score the findings.

Loading: `anomaly db init --db URL`, then plain INSERTs (SQLite) or COPY (PostgreSQL) of customers
and transactions. Running: `anomaly scan ... --format json --until <end of data>`.

Scoring, per bucket size (day, hour) against the shop's truth:
- required: a bucket whose normal expectation is meaningful (>= MEANINGFUL[size] successful sales)
  and whose planted expectation and actual count are both under 10 % of it (a day incident, an
  outage hour, a stalled hour);
  recall = required buckets covered by a finding's [bucket_start, bucket_end) / required buckets;
- a finding is a hit when it covers any planted bucket (planted expectation under 90 % of normal);
  a level-shift finding ("level shift" in its message) starting near the planted shift, decline or
  post-holiday lull is a `shift` finding; a finding on a bucket whose actual count was naturally
  under 20 % of its expectation is `neutral` (no method can tell it from an outage); anything else
  is a false positive, except in the shop's first week (`first_week`: a weekend never seen
  before cannot be told from an outage; counted apart, left out of precision). precision = hits + shift findings / (findings - neutral).

    python -m tests.shops_eval [sqlite|postgresql] [scenario-name-filter]   # prints the score table
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.shops import Scenario, Shop, generate

ROOT = Path(__file__).resolve().parent.parent
ANOMALY = str(ROOT / ".venv" / "bin" / "anomaly")
MEANINGFUL = {"day": 50.0, "hour": 15.0}
PG_ADMIN = os.environ.get("SHOPS_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANOMALY_", "MYSQL_"))}
    return subprocess.run([ANOMALY, *args], capture_output=True, text=True, env=env, timeout=600, check=False)


def load(shop: Shop, url: str, init: Any = None) -> None:
    """The seed schema through the tool (`init(url)`, default `anomaly db init` in a subprocess),
    then the rows as any script would insert them."""
    if init is not None:
        init(url)
    else:
        done = cli("db", "init", "--db", url)
        if done.returncode != 0:
            raise RuntimeError(f"db init failed: {done.stderr.strip()}")
    customers = [(i, f"Customer {i}") for i in range(1, shop.customers + 1)]
    rows = [(t, c, d.strftime("%Y-%m-%d %H:%M:%S") if isinstance(d, datetime) else d, st, a)
            for t, c, d, st, a in shop.rows]
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as db:
            db.executemany("INSERT INTO customers (customer_id, customer_name) VALUES (?, ?)", customers)
            db.executemany("INSERT INTO transactions (transaction_id, customer_id, transaction_date, status, "
                           "total_amount) VALUES (?, ?, ?, ?, ?)", rows)
        return
    import psycopg

    # A typed server column cannot hold garbage: the bad rows exist on SQLite only.
    rows = [r for r, raw in zip(rows, shop.rows, strict=True) if isinstance(raw[2], datetime) and isinstance(raw[4], float)]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as db, db.cursor() as cur:
        with cur.copy("COPY customers (customer_id, customer_name) FROM STDIN") as copy:
            for r in customers:
                copy.write_row(r)
        with cur.copy("COPY transactions (transaction_id, customer_id, transaction_date, status, total_amount) "
                      "FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)


def pg_database(name: str) -> str:
    """A fresh PostgreSQL database of this name (dropped first); its URL."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {name}")
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


def scan_json(url: str, check: str, until: datetime, *extra: str) -> tuple[dict[str, Any], str, int]:
    done = cli("scan", check, "--db", url, "--until", until.strftime("%Y-%m-%dT%H:%M"), "--format", "json",
               "--fail-on", "never", *extra)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"scan {check} exit {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout), done.stderr, done.returncode


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=None)


@dataclass
class Score:
    size: str
    required: int = 0
    covered: int = 0
    findings: int = 0
    hits: int = 0
    shift: int = 0
    neutral: int = 0
    first_week: int = 0
    false: list[dict[str, Any]] = field(default_factory=list)
    missed: list[tuple[datetime, float, float, float]] = field(default_factory=list)  # start, normal, planted, actual

    @property
    def recall(self) -> float:
        return self.covered / self.required if self.required else 1.0

    @property
    def precision(self) -> float:
        judged = self.findings - self.neutral - self.first_week
        return (self.hits + self.shift) / judged if judged else 1.0


def _near_change(shop: Shop, start: datetime) -> bool:
    spans = []
    if shop.shift_day is not None:
        spans.append((shop.shift_day - timedelta(days=3), shop.shift_day + timedelta(days=10)))
    for span in (shop.decline_span, shop.lull_span):
        if span is not None:
            spans.append((span[0] - timedelta(days=3), span[1]))
    return any(a <= start < b for a, b in spans)


def score(shop: Shop, findings: list[dict[str, Any]], size: str) -> Score:
    truth = shop.day_truth if size == "day" else shop.hour_truth
    step = timedelta(days=1) if size == "day" else timedelta(hours=1)
    out = Score(size)
    spans = [(_time(f["bucket_start"]), _time(f["bucket_end"])) for f in findings]
    for start, (normal, planted, actual) in sorted(truth.items()):
        if start + step > shop.end or normal < MEANINGFUL[size] or max(planted, actual) >= 0.1 * normal:
            continue
        out.required += 1
        if any(a <= start < b for a, b in spans):
            out.covered += 1
        else:
            out.missed.append((start, round(normal, 1), round(planted, 1), actual))
    for f, (a, b) in zip(findings, spans, strict=True):
        out.findings += 1
        inside = [t for s, t in truth.items() if a <= s < b]
        if any(t[1] < 0.9 * t[0] for t in inside):
            out.hits += 1
        elif "level shift" in f["message"] and _near_change(shop, a):
            out.shift += 1
        elif any(t[2] < 0.2 * t[0] for t in inside):
            out.neutral += 1
        elif a < min(truth) + timedelta(days=8):  # a UTC-stored shop starts with a partial day
            out.first_week += 1
        else:
            out.false.append(f)
    return out


def shift_findings(shop: Shop, findings: list[dict[str, Any]]) -> int:
    """Findings from three days before the planted shift on that are no planted incident: not a
    planted day (nor an hour of one), not a planted outage hour (whose day can stay above 90 %),
    unless it is the level shift itself (as test_volume_shops.py's shift test counts them)."""
    if shop.shift_day is None:
        return 0
    days = {s for s, t in shop.day_truth.items() if t[1] < 0.9 * t[0]}
    outages = {s for s, t in shop.hour_truth.items() if t[1] < 0.9 * t[0]}
    n = 0
    for f in findings:
        a, b = _time(f["bucket_start"]), _time(f["bucket_end"])
        incident = "level shift" not in f["message"] and (
            a in outages or any(a <= d < b or a.replace(hour=0) == d for d in days))
        if a >= shop.shift_day - timedelta(days=3) and not incident:
            n += 1
    return n


def sales_args(shop: Shop, size: str) -> list[str]:
    args = ["--bucket", size]
    if shop.scenario.storage == "utc" and size == "hour":
        args += ["--timezone", shop.scenario.zone]
    return args


def evaluate(shop: Shop, url: str) -> dict[str, Any]:
    """Every scan the brief names, scored; the raw findings kept for the notes."""
    result: dict[str, Any] = {"scenario": shop.scenario.name, "rows": len(shop.rows)}
    for size in ("day", "hour"):
        doc, _, _ = scan_json(url, "sales", shop.end, *sales_args(shop, size))
        check = doc["checks"][0]
        findings = check["findings"]
        result[size] = score(shop, findings, size)
        result[f"{size}_summary"] = check["summary"]
        result[f"{size}_shift_findings"] = shift_findings(shop, findings)
        result[f"{size}_findings"] = findings
    doc, _, _ = scan_json(url, "freshness", shop.end)
    result["freshness"] = doc["checks"][0]
    doc, _, _ = scan_json(url, "failed", shop.end, "--since", (shop.end - timedelta(days=28)).strftime("%Y-%m-%d"))
    result["failed"] = doc["checks"][0]
    return result


def default_scenarios(seeds: tuple[int, ...] = (1, 2, 3)) -> list[Scenario]:
    jan, oct_ = datetime(2025, 1, 6), datetime(2024, 10, 7)
    out: list[Scenario] = []
    for seed in seeds:
        out += [
            Scenario("flat247", seed, jan, 98, trend=1.04),
            Scenario("b2b", seed, jan, 98, storage="utc", trend=0.97),
            Scenario("nightowl", seed, jan, 98, shift=(63, 0.5)),
            Scenario("small", seed, jan, 98),
            Scenario("flat247", seed, oct_, 105, christmas=True, storage="utc"),
            Scenario("nightowl", seed, jan, 98, decline=(56, 28, 0.4), stall_hours=5),
            Scenario("b2b", seed, datetime(2025, 3, 31), 14, incidents_from=8, day_incidents=1, hour_incidents=1),
            Scenario("small", seed, jan, 98, bad_rows=300, shift=(70, 0.5)),
        ]
    return out


def main(engine: str = "sqlite", only: str = "", seeds: str = "1,2,3") -> None:
    import tempfile

    scenarios = [s for s in default_scenarios(tuple(int(x) for x in seeds.split(","))) if only in s.name]
    if only.startswith("big"):
        scenarios = [Scenario("big", int(x), datetime(2025, 1, 6), 70, stall_hours=3) for x in seeds.split(",")]
    print("scenario | engine | day recall | day prec | day findings (hit/shift/neutral/1stweek/FP) | day shift n | "
          "hour recall | hour prec | hour findings (hit/shift/neutral/1stweek/FP) | hour shift n | freshness | failed")
    for s in scenarios:
        shop = generate(s)
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/shop.db" if engine == "sqlite" else pg_database("newuser_shops")
            load(shop, url)
            r = evaluate(shop, url)
        cells = [s.name, engine]
        for size in ("day", "hour"):
            sc: Score = r[size]
            cells += [f"{sc.covered}/{sc.required}", f"{sc.precision:.2f}",
                      f"{sc.findings} ({sc.hits}/{sc.shift}/{sc.neutral}/{sc.first_week}/{len(sc.false)})", str(r[f"{size}_shift_findings"])]
        fr = r["freshness"]
        cells.append(f"{fr['summary'].get('status')} {[f['table'] for f in fr['findings']]}")
        cells.append(f"{len(r['failed']['findings'])}")
        print(" | ".join(cells), flush=True)
        for size in ("day", "hour"):
            sc = r[size]
            for m in sc.missed:
                print(f"    MISSED {size} {m[0]:%Y-%m-%d %a %H:%M} normal={m[1]} planted={m[2]} actual={m[3]:.0f}")
            for f in sc.false:
                print(f"    FP {size} {f['bucket_start']}..{f['bucket_end']} n={f['transactions']} "
                      f"exp={f['expected_transactions']} :: {f['message']}")
        if r["day_summary"].get("status") == "not_evaluated" or r["hour_summary"].get("status") == "not_evaluated":
            print(f"    NOT EVALUATED day={r['day_summary']} hour={r['hour_summary']}")


if __name__ == "__main__":
    main(*sys.argv[1:])
