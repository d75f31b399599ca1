"""Start-up: a command imports what it needs and no more (issue 14).

Start-up time is import time, so these tests pin down which modules each kind of run imports,
in a fresh interpreter; the timings themselves live in the benchmark (`bench.run --startup-only`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from anomaly_cli.checks import builtin_names, find
from anomaly_cli.cli import COMMAND_MODULES
from anomaly_cli.demo import demo_rows
from anomaly_cli.demo_data import generate
from tests.conftest import load_database

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [f"anomaly_cli.checks.{name}" for name in builtin_names()]
# What a command that does not read a database, or does not need it, must not pay for.
HEAVY = ("sqlalchemy", "pydantic", "rich", "pandas", "numpy", "openai", "apprise", "platformdirs")


def imported_by(*args: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `anomaly ARGS` in a new interpreter; its result and the modules it had imported at exit."""
    report = tmp_path / "modules.json"
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({str(report)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
            "from anomaly_cli.cli import main\n"
            "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMALY_")}
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    return run, set(json.loads(report.read_text()))


def test_every_built_in_check_is_named_as_its_module() -> None:
    # What lets `scan <check>` import one module: the name says which.
    assert builtin_names()
    for name in builtin_names():
        cls = find(name, plugins=False)
        assert cls is not None and cls.name == name, name
        assert cls.__module__ in (f"anomaly_cli.checks.{name}", f"anomaly_cli.checks.{name}.__init__") \
            or cls.__module__.startswith(f"anomaly_cli.checks.{name}."), cls.__module__


def test_help_imports_no_check_and_no_database_library(tmp_path: Path) -> None:
    run, modules = imported_by("--help", tmp_path=tmp_path)
    assert run.returncode == 0 and "scan" in run.stdout and "report" in run.stdout
    assert not modules & {*CHECKS, *HEAVY}, sorted(modules & {*CHECKS, *HEAVY})


def test_the_help_of_one_check_imports_that_check_only(tmp_path: Path) -> None:
    run, modules = imported_by("scan", "price", "--help", tmp_path=tmp_path)
    assert run.returncode == 0 and "--below" in run.stdout and "Exit codes" in run.stdout
    assert "anomaly_cli.checks.price" in modules
    assert not modules & {*CHECKS, *HEAVY} - {"anomaly_cli.checks.price"}
    others = {f"anomaly_cli.cli.{m}" for m in COMMAND_MODULES.values()} - {"anomaly_cli.cli.scan"}
    assert not modules & others, sorted(modules & others)  # the modules of the other commands


def test_every_command_is_in_the_table_of_command_modules() -> None:
    # A command missing from COMMAND_MODULES still works, but imports every command module to be found.
    import typer

    from anomaly_cli.cli import app

    assert set(typer.main.get_command(app).list_commands(None)) == set(COMMAND_MODULES)  # type: ignore[arg-type]


def test_scan_help_lists_every_check(tmp_path: Path) -> None:
    run, modules = imported_by("scan", "--help", tmp_path=tmp_path)
    assert run.returncode == 0
    assert all(f"  {name} " in run.stdout for name in builtin_names()) and "  all " in run.stdout
    assert set(CHECKS) <= modules and "sqlalchemy" not in modules
    # No installed distribution declares a check plugin: the entry_points.txt files say so
    # without importlib.metadata (tests/test_architecture.py installs plugins and sees them).
    assert "importlib.metadata" not in modules


def test_a_scan_imports_its_check_only_and_no_alert_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load_database(url, demo_rows(generate(end=datetime(2025, 9, 17, 9, 30), seed=7)))
    run, modules = imported_by("scan", "spam", "--db", url, "--format", "json", "--output", "out.json",
                               "--fail-on", "never", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "out.json").read_text())["checks"][0]["check"] == "spam"
    assert "anomaly_cli.checks.spam" in modules and "sqlalchemy" in modules
    unwanted = {*CHECKS, "pydantic", "rich", "anomaly_cli.state", "anomaly_cli.notify.channels"} \
        - {"anomaly_cli.checks.spam"}
    assert not modules & unwanted, sorted(modules & unwanted)


def test_keys_of_other_checks_are_still_checked(cli, tmp_path: Path) -> None:
    # `scan price` does not import sales' module, yet a file or variable meant for sales is checked.
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    load_database(shop, demo_rows(generate(end=datetime(2025, 9, 17, 9, 30), seed=7)))
    (tmp_path / "typo.toml").write_text("[sales]\nhistroy = 4\n")
    run = cli("scan", "price", "--db", shop, "--config", str(tmp_path / "typo.toml"))
    assert run.exit_code == 2 and "unknown key 'sales.histroy'" in run.stderr
    assert "did you mean 'sales.history'?" in run.stderr
    (tmp_path / "bad.toml").write_text("[sales]\nhistory = 'many'\n")
    run = cli("scan", "price", "--db", shop, "--config", str(tmp_path / "bad.toml"))
    assert run.exit_code == 2 and "bad value for sales.history" in run.stderr
    run = cli("scan", "price", "--db", shop, env={"ANOMALY_SALES_HISTORY": "many"})
    assert run.exit_code == 2 and "bad value for sales.history (from ANOMALY_SALES_HISTORY)" in run.stderr
    run = cli("scan", "price", "--db", shop, "--set", "sales.history=many")
    assert run.exit_code == 2 and "bad value for sales.history" in run.stderr
    fine = cli("scan", "price", "--db", shop, "--set", "sales.history=4", "--format", "json", "--fail-on", "never")
    assert fine.exit_code == 0, fine.stderr


@pytest.mark.parametrize("args", [
    ["--format", "JSON"], ["--format", "xml"], ["-o", "out.csv"], ["-o", ""], ["--fail-on", "High"],
    ["--set", "price.below=0.5", "--set", "a=b"], ["--limit", "3"], ["--limit", "0"], ["--db", "x.db"],
    ["--summarize", "TEMPLATE"], ["--notify", "json://a", "--notify", "json://b"], ["--metrics", "m.prom"],
])
def test_option_values_are_what_typer_makes_of_them(args: list[str], tmp_path: Path) -> None:
    # Plain values are coerced without Pydantic (anomaly_cli/cli/coercion.py): the same values,
    # and the same errors, as Typer's own coercion.
    import typer

    from anomaly_cli.cli import app

    def parsed(plain: bool) -> tuple[str, dict[str, object] | None]:
        group = typer.main.get_command(app)
        scan = group.get_command(None, "scan")  # type: ignore[attr-defined]
        command = scan.get_command(None, "price")
        if not plain:
            command.get_params = lambda ctx, own=type(command).get_params: own(command, ctx)
        try:
            ctx = command.make_context("price", list(args))
        except typer._click.exceptions.UsageError as exc:
            return exc.format_message(), None
        return "", dict(ctx.params)

    assert parsed(plain=True) == parsed(plain=False)
