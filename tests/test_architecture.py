"""The scan as a library use case, the check contract every registered check keeps, configuration
that knows every check, and checks as plugins from other packages."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from anomaly_cli.checks import Check, registry
from anomaly_cli.demo import demo_rows
from anomaly_cli.demo_data import generate
from anomaly_cli.model import Status
from tests.conftest import load_database

ROOT = Path(__file__).resolve().parents[1]
PLANTED = json.loads((ROOT / "fixtures" / "demo" / "planted.json").read_text())


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo shop and the CloudWalk monitoring days, as `anomaly demo` builds them."""
    from anomaly_cli.demo import build_demo_database

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    build_demo_database(path, now=datetime.now())
    return str(path)


# --- the library entry point -----------------------------------------------------------------

def test_a_scan_runs_from_python_and_returns_the_report(demo_db: str) -> None:
    code = (
        "from anomaly_cli.scan import scan\n"
        f"report = scan({demo_db!r}, checks=['price', 'spam'])\n"
        "print(report.exit_code, [(r.check, r.findings, str(r.status)) for r in report.results],"
        " len(report.findings), report.findings[0].key)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and run.stdout.startswith("1 [('price', 10, 'findings'), ('spam', 3, 'findings')] 13 ")
    assert run.stdout.split()[-1].startswith("price:")


def test_the_library_scan_matches_the_cli(demo_db: str, cli) -> None:
    from anomaly_cli.scan import scan

    report = scan(demo_db)
    run = cli("scan", "all", "--db", demo_db, "--format", "json", "--fail-on", "never")
    document = json.loads(run.stdout)
    assert [c["check"] for c in document["checks"]] == [r.check for r in report.results]
    for check, outcome in zip(document["checks"], report.results, strict=True):
        assert check["summary"]["findings"] == outcome.findings == len(check["findings"])
        assert check["summary"]["status"] == str(outcome.status)
    assert sorted(f["key"] for c in document["checks"] for f in c["findings"]) == \
        sorted(f.key for f in report.findings or ())


def test_one_run_feeds_several_sinks(demo_db: str, tmp_path: Path) -> None:
    import io

    from anomaly_cli.config import load_settings
    from anomaly_cli.model import Window
    from anomaly_cli.render import OutputFormat
    from anomaly_cli.scan import Output, build_request, run_scan

    table = io.StringIO()
    target = tmp_path / "out.json"
    settings = load_settings(flags={"db.url": demo_db})
    request = build_request(settings, ["price", "spam"], Window(),
                            outputs=(Output(OutputFormat.TABLE, stream=table), Output(OutputFormat.JSON, path=target)))
    report = run_scan(request)
    document = json.loads(target.read_text())
    assert [len(c["findings"]) for c in document["checks"]] == [r.findings for r in report.results] == [10, 3]
    assert "price" in table.getvalue() and "Transaction" not in table.getvalue()  # a table, not lines
    assert table.getvalue().count("critical") >= 5


# --- every registered check keeps the contract -------------------------------------------------

CHECKS = sorted(registry())


@pytest.mark.parametrize("name", CHECKS)
def test_every_check_documents_itself(name: str) -> None:
    cls = registry()[name]
    assert cls.__doc__ and len(cls.__doc__.split()) >= 20, "the docstring is the --help: say the rule"
    assert re.search(r"[Ss]everity", cls.__doc__), "the help says how severity is decided"
    for param in cls.params:
        assert param.help and param.help[0].islower(), f"{name}.{param.name} needs a help text"
    assert cls.fields and len(set(cls.fields)) == len(cls.fields)
    assert {c.field for c in cls.columns} <= set(cls.fields)
    assert set(cls.totals) <= set(cls.fields)
    assert cls.llm_advice and cls.llm_advice != Check.llm_advice, "what a person should look at first"


@pytest.mark.parametrize("name", CHECKS)
def test_every_check_has_planted_ground_truth_in_the_demo(name: str) -> None:
    planted = [p for p in PLANTED if p["check"] == name and p["anomaly"]]
    monitoring = {"rates", "checkout", "freshness"}  # judged on the CloudWalk days the demo loads
    assert planted or name in monitoring, f"fixtures/demo/planted.json plants nothing for {name}"


@pytest.mark.parametrize("name", CHECKS)
def test_findings_carry_exactly_the_declared_fields(name: str, demo_db: str) -> None:
    from anomaly_cli.scan import scan

    report = scan(demo_db, checks=[name])
    (outcome,) = report.results
    assert outcome.status is Status.FINDINGS, f"the demo should show {name} at work"
    fields = registry()[name].fields_for(dict(outcome.params))
    for finding in report.findings or ():
        assert tuple(finding.fields) == fields[:len(finding.fields)]
        assert set(finding.fields) <= set(fields)
        assert finding.check == name and finding.key.startswith(f"{name}:") and finding.message


# --- configuration knows every check ------------------------------------------------------------

def readme_config_example() -> str:
    """The README's example anomaly.toml, verbatim."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Configuration"):]
    return section[section.index("```toml") + len("```toml"):section.index("```", section.index("```toml") + 7)]


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    from tests.conftest import _fresh_database

    yield from _fresh_database("postgresql", tmp_path)


def test_the_readme_configuration_example_works_with_every_command(cli, tmp_path: Path, postgres_url: str) -> None:
    """The example is for PostgreSQL (its tables in a schema `sales`); only its URL is changed."""
    import sqlalchemy as sa

    example = readme_config_example()
    assert "[price]" in example and "[sales]" in example and "[schema.transactions]" in example
    schema = next(line for line in example.splitlines() if line.startswith("schema = ")).split('"')[1]
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    url_line = next(line for line in example.splitlines() if line.startswith("url = "))
    config = tmp_path / "anomaly.toml"
    config.write_text(example.replace(url_line, f'url = "{postgres_url}"'))
    counts = tmp_path / "counts.csv"
    counts.write_text("time,status,count\n10h 00,approved,100\n10h 00,failed,2\n")
    state = f"sqlite:///{tmp_path / 'state.db'}"
    commands = [
        ("db", "init", "--demo-data"),
        ("db", "indexes"),
        ("scan", "price"), ("scan", "sales"), ("scan", "spam"), ("scan", "failed"),
        ("load", "counts", str(counts), "--date", "2025-07-12"),
        ("scan", "all", "--new-only", "--state", state),
        ("alerts", "list", "--state", state),
    ]
    for command in commands:
        run = cli(*command, "--config", str(config)) if command[0] != "alerts" else cli(*command)
        assert run.exit_code in (0, 1), (command, run.stderr)
        assert "unknown key" not in run.stderr
    scanned = cli("scan", "price", "--config", str(config))
    assert json.loads(scanned.stdout)["checks"][0]["params"] == {"below": 0.75, "above": 1.05}


def test_a_mistyped_key_is_refused_with_the_closest_known_one(cli, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[price]\nbelwo = 0.5\n")
    run = cli("scan", "price", "--db", "x.db", "--config", str(tmp_path / "bad.toml"))
    assert run.exit_code == 2
    assert "unknown key 'price.belwo'" in run.stderr and "did you mean 'price.below'?" in run.stderr


# --- checks as plugins ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test plugin really installed (pip, into a directory of its own)."""
    target = tmp_path_factory.mktemp("plugin")
    source = ROOT / "tests" / "plugins" / "anomaly_plugin_weekend"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(source)], check=True, capture_output=True, timeout=300)
    return target


def run_anomaly(*args: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMALY_")}
    env["PYTHONPATH"] = str(path)
    return subprocess.run([sys.executable, "-c", "from anomaly_cli.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_a_plugin_check_is_a_scan_command_and_part_of_scan_all(plugin_path: Path, sqlite_url: str) -> None:
    load_database(sqlite_url, demo_rows(generate(end=datetime(2025, 9, 17, 9, 30), seed=7)))
    helped = run_anomaly("scan", "weekend", "--help", path=plugin_path)
    assert helped.returncode == 0 and "--amount" in helped.stdout and "Weekend transactions" in helped.stdout
    run = run_anomaly("scan", "weekend", "--db", sqlite_url, "--format", "json", "--amount", "20000", path=plugin_path)
    assert run.returncode in (0, 1), run.stderr
    (check,) = json.loads(run.stdout)["checks"]
    assert check["check"] == "weekend" and check["params"] == {"amount": 20000}
    assert all(datetime.fromisoformat(f["transaction_date"]).weekday() >= 5 for f in check["findings"])
    every = run_anomaly("scan", "all", "--db", sqlite_url, "--format", "json", path=plugin_path)
    assert "weekend" in [c["check"] for c in json.loads(every.stdout)["checks"]]


def test_a_plugin_cannot_take_a_built_in_name(tmp_path: Path, sqlite_url: str) -> None:
    package = tmp_path / "dup"
    (package / "anomaly_dup").mkdir(parents=True)
    (package / "anomaly_dup" / "__init__.py").write_text(
        "from anomaly_cli.checks.price import PriceCheck\n\nclass Other(PriceCheck):\n    name = 'price'\n")
    dist = package / "anomaly_dup-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: anomaly-dup\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[anomaly.checks]\nprice = anomaly_dup:Other\n")
    for check in ("price", "spam"):  # spam: price's module is never imported, the name is still taken
        run = run_anomaly("scan", check, "--db", sqlite_url, path=package)
        assert run.returncode == 2, run.stderr
        assert "check name 'price' is registered twice" in run.stderr and len(run.stderr.splitlines()) == 1
        assert "Traceback" not in run.stderr


# --- "not evaluated" is an outcome, never "no anomalies found" ------------------------------------

def test_a_window_without_data_is_not_evaluated_in_every_format(demo_db: str, cli) -> None:
    args = ("scan", "all", "--db", demo_db, "--since", "2030-01-01")
    document = json.loads(cli(*args, "--format", "json").stdout)
    assert {c["summary"]["status"] for c in document["checks"]} == {"not_evaluated"}
    assert all(c["summary"]["reason"] for c in document["checks"])
    table = cli(*args, "--format", "table")
    assert table.exit_code == 0
    assert "no anomalies found" not in table.stdout and table.stdout.count("not evaluated: ") == len(CHECKS)
    assert table.stderr.count(": not evaluated: ") == len(CHECKS)
    gate = cli(*args, "--format", "jsonl", "--fail-on-not-evaluated")
    assert gate.exit_code == 1
    summaries = [json.loads(line) for line in gate.stdout.splitlines()]  # no finding, one summary per check
    assert [(s["record"], s["check"], s["status"]) for s in summaries] == \
        [("summary", c["check"], "not_evaluated") for c in document["checks"]]
    assert [s["reason"] for s in summaries] == [c["summary"]["reason"] for c in document["checks"]]
    rows = list(csv.DictReader(io.StringIO(cli(*args, "--format", "csv").stdout)))
    assert [(r["check"], r["key"], r["severity"], r["message"]) for r in rows] == \
        [(c["check"], f"{c['check']}:not_evaluated", "", f"not evaluated: {c['summary']['reason']}")
         for c in document["checks"]]
    text = cli(*args, "--format", "text", "--quiet")
    assert text.stdout.count(": not evaluated: ") == len(CHECKS) and text.stderr == ""
    judged = cli("scan", "price", "--db", demo_db, "--format", "json", "--fail-on-not-evaluated", "--fail-on", "never")
    assert judged.exit_code == 0  # price judged (with findings): the gate is about checks that could not judge
