"""A small run of the benchmark (3,000 transactions, SQLite): it works end to end and reports every check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from anomaly_cli.checks import registry

REPO = Path(__file__).resolve().parents[1]
SHOP_TABLES = {"customers", "products", "transactions", "transaction_items"}
REFERENCED = {"price", "sales", "spam", "failed"}  # checks with a hand-written query in bench/reference.py


def test_small_benchmark_reports_every_check(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--rows", "3000", "--engines", "sqlite", "--no-help-timing",
         "--data-dir", str(tmp_path / "data"), "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["rows"] == 3000
    engine = document["engines"]["sqlite"]
    assert engine["status"] == "ran" and engine["applied"]  # the 'with' phase created indexes

    # Checks reading tables outside the shop schema (rates, checkout) are skipped, and only they.
    skipped = set(engine["skipped_checks"])
    assert all(any(t not in SHOP_TABLES for t in registry()[name].needs) for name in skipped)
    expected = sorted(set(registry()) - skipped | {"all"})
    assert "price" in expected

    for phase in ("without", "with"):
        rows = {r["check"]: r for r in document["results"] if r["indexes"] == phase}
        assert sorted(rows) == expected
        for name, row in rows.items():
            assert row["error"] is None, f"{name}: {row['error']}"
            assert row["engine"] == "sqlite" and row["rows"] == 3000
            for key in ("seconds", "raw_seconds", "ratio", "peak_mb", "inprocess_seconds"):
                assert row[key] > 0, f"{name} {phase}: {key} = {row[key]}"
            assert row["queries"], name  # the check's own reads were captured and replayed
            if name in REFERENCED:  # the hand-written query for the same job ran beside it
                assert row["ref_seconds"] > 0 and row["ref_ratio"] > 0 and row["ref_cpu_ratio"] > 0, name
            else:
                assert row["ref_seconds"] is None, name
        assert rows["price"]["findings"] > 0  # the generator plants price anomalies

    targets = {t["name"].split(",")[0].split(" (")[0]: t["passed"] for t in document["targets"]}
    assert targets["--help in <= 0.2 s"] is None  # --no-help-timing
    assert targets["a scan of a tiny database"] is None  # --no-help-timing
    assert targets["PostgreSQL: every check e2e"] is None  # not run
    # Judged, whatever the verdict: 3,000 rows say nothing about speed.
    judged = {k: v for k, v in targets.items() if not k.startswith(("--help", "a scan of", "PostgreSQL"))}
    assert judged and all(isinstance(v, bool) for v in judged.values()), targets
    assert any(k.startswith("SQLite: price") for k in judged), targets
    assert targets["peak memory <= 200 MB for every run"] is True
    assert "PASS" in proc.stdout and "results written to" in proc.stdout
