"""The command line: parses options, calls the library, prints, and chooses the exit code."""

from __future__ import annotations

import enum
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer import _click

from anomaly_cli import __version__
from anomaly_cli.checks import Check, registry
from anomaly_cli.errors import AnomalyError, UsageError
from anomaly_cli.exit_codes import ExitCode, FailOn, exit_code_for, exit_code_for_error
from anomaly_cli.render import OutputFormat
from anomaly_cli.summarize_mode import SummarizeMode

PROG = "anomaly"
LLM_PANEL = "Plain-English summaries"
ALERTS_PANEL = "Repeat alerts"


def _say(message: str) -> None:
    """One line on stderr: the only way errors and diagnostics reach the user."""
    print(f"{PROG}: {message}", file=sys.stderr)


class AnomalyGroup(typer.core.TyperGroup):
    """Turns every failure into one line on stderr and an exit code, at one place."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("ANOMALY_DEBUG") == "1"
        try:
            code = super().main(args=argv, prog_name=prog_name or PROG, complete_var=complete_var,
                                standalone_mode=False, **extra)
        except _click.exceptions.NoArgsIsHelpError as exc:
            print(exc.format_message(), file=sys.stderr)
            code = ExitCode.USAGE
        except _click.exceptions.UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            _say(f"error: {exc.format_message()}{hint}")
            code = ExitCode.USAGE
        except _click.exceptions.ClickException as exc:
            _say(f"error: {exc.format_message()}")
            code = exc.exit_code
        except AnomalyError as exc:
            if debug:
                traceback.print_exc()
            _say(f"error: {exc}")
            code = exit_code_for_error(exc)
        except (KeyboardInterrupt, typer.Abort):
            _say("interrupted")
            code = 130
        except Exception as exc:  # an unexpected failure still ends in one line
            if debug:
                traceback.print_exc()
            _say(f"error: {type(exc).__name__}: {exc}" + ("" if debug else " (run with --debug for the traceback)"))
            code = exit_code_for_error(exc)
        if not standalone_mode:
            return code
        sys.exit(int(code or 0))


app = typer.Typer(
    cls=AnomalyGroup,
    name=PROG,
    help="Find anomalies in a transaction database and report them to a person, a program or a pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich-formatted help costs a tenth of a second of imports on every --help.
    rich_markup_mode=None,
)
scan_app = typer.Typer(help="Run one check (or all) against the database; read-only.",
                       no_args_is_help=True)
db_app = typer.Typer(help="Create the seed schema in an empty database (writes, only when asked).",
                     no_args_is_help=True)
load_app = typer.Typer(help="Load monitoring files (per-minute status counts, hourly checkouts) into "
                            "the database given with --db (writes, only when asked).", no_args_is_help=True)
app.add_typer(scan_app, name="scan")
app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")


def _version(value: bool) -> None:
    if value:
        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Find anomalies in a transaction database and report them.

    Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or configuration error,
    3 the audit could not be completed.
    """


# ---------------------------------------------------------------------------------------
# Options every `scan` command takes. Defaults are None so that "not given" is visible and
# the environment and config file can fill in (flag > environment > file > default).

COMMON_OPTIONS: list[tuple[str, Any, typer.models.OptionInfo]] = [
    ("db", Optional[str], typer.Option(
        "--db", metavar="URL", help="Database URL (or SQLite file path); env ANOMALY_DB_URL.")),
    ("config", Optional[Path], typer.Option(
        "--config", metavar="FILE", show_default="./anomaly.toml if present", help="Config file.")),
    ("since", Optional[str], typer.Option(
        "--since", metavar="WHEN", help="Start of the window, inclusive: 2025-09-12, 2025-09-12T10:00, 7d.")),
    ("until", Optional[str], typer.Option(
        "--until", metavar="WHEN", help="End of the window, exclusive.")),
    ("format", Optional[OutputFormat], typer.Option(
        "--format", "-f", case_sensitive=False,
        show_default="table on a terminal, else text, or by --output's suffix", help="Output format.")),
    ("output", Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", help="Write to FILE atomically instead of stdout.")),
    ("fail_on", Optional[FailOn], typer.Option(
        "--fail-on", case_sensitive=False, show_default="low",
        help="Exit 1 when a finding is at or above this severity.")),
    ("limit", Optional[int], typer.Option(
        "--limit", min=1, metavar="N", help="Show at most N findings per check (all are still counted).")),
    ("quiet", bool, typer.Option("--quiet", "-q", help="No summary on stderr.")),
    ("debug", bool, typer.Option("--debug", help="Show tracebacks of errors.")),
    ("new_only", bool, typer.Option(
        "--new-only", rich_help_panel=ALERTS_PANEL,
        help="Emit only findings not reported within --cooldown, or whose severity went up.")),
    ("cooldown", Optional[str], typer.Option(
        "--cooldown", metavar="DURATION", rich_help_panel=ALERTS_PANEL, show_default="4h",
        help="How long a reported finding stays quiet: 30m, 4h, 1d.")),
    ("state", Optional[str], typer.Option(
        "--state", metavar="URL", rich_help_panel=ALERTS_PANEL,
        show_default="a SQLite file in ~/.local/state/anomaly",
        help="Where alert state lives (never the audited database); env ANOMALY_STATE.")),
    ("summarize", Optional[SummarizeMode], typer.Option(
        "--summarize", case_sensitive=False, show_default="auto", rich_help_panel=LLM_PANEL,
        help="Who writes the text lines: auto (the model when configured), llm or template.")),
    ("brief", bool, typer.Option(
        "--brief", rich_help_panel=LLM_PANEL, help="Add an executive summary per check (text, table).")),
    ("llm_base_url", Optional[str], typer.Option(
        "--llm-base-url", metavar="URL", rich_help_panel=LLM_PANEL,
        help="OpenAI-compatible endpoint (OpenAI, Groq, Ollama, vLLM); env ANOMALY_LLM_BASE_URL.")),
    ("llm_model", Optional[str], typer.Option(
        "--llm-model", metavar="NAME", rich_help_panel=LLM_PANEL, show_default="gpt-4o-mini",
        help="Model name; env ANOMALY_LLM_MODEL.")),
    ("llm_api_key", Optional[str], typer.Option(
        "--llm-api-key", metavar="KEY", rich_help_panel=LLM_PANEL,
        help="API key; prefer env ANOMALY_LLM_API_KEY (command lines are visible to other users).")),
    ("llm_timeout", Optional[str], typer.Option(
        "--llm-timeout", metavar="SECONDS", rich_help_panel=LLM_PANEL, show_default="30",
        help="Deadline of each model request.")),
    ("llm_max_findings", Optional[str], typer.Option(
        "--llm-max-findings", metavar="N", rich_help_panel=LLM_PANEL, show_default="100",
        help="Send at most N findings to the model; the rest get template lines.")),
    ("llm_send_personal_data", bool, typer.Option(
        "--llm-send-personal-data", rich_help_panel=LLM_PANEL,
        help="Send customer names, e-mails and phones to the model (self-hosted models only).")),
]


def _check_option(check: type[Check], param: Any) -> tuple[str, Any, typer.models.OptionInfo]:
    """The --flag of one check threshold; values stay text here and are parsed with the config."""
    help_text = f"{param.help[0].upper()}{param.help[1:]} (config key {check.name}.{param.name})."
    if param.kind is bool:  # a switch: --list, not --list true
        return (f"p_{param.name}", bool, typer.Option(param.flag, help=help_text))
    if isinstance(param.kind, type) and issubclass(param.kind, enum.Enum):
        metavar = "|".join(str(m.value) for m in param.kind)
    else:
        metavar = {int: "INT", float: "NUMBER", Decimal: "NUMBER"}.get(param.kind, "TEXT")
    default = param.default.value if isinstance(param.default, enum.Enum) else param.default
    return (f"p_{param.name}", Optional[str],
            typer.Option(param.flag, metavar=metavar, show_default=str(default), help=help_text))


def _build_scan_command(checks: list[type[Check]], doc: str, *, every: bool = False) -> Callable[..., None]:
    """A Typer command for `checks`: the common options plus, for one check, its thresholds."""
    options = list(COMMON_OPTIONS)
    if len(checks) == 1:
        options += [_check_option(checks[0], p) for p in checks[0].params]

    def command(**given: Any) -> None:
        raise typer.Exit(_scan(checks, given, every=every))

    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                          default=False if annotation is bool else None,
                          annotation=Annotated[annotation, info])
        for name, annotation, info in options
    ]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = doc
    return command


def _scan(checks: list[type[Check]], given: dict[str, Any], *, every: bool = False) -> int:
    """Run a scan: settings, window, output target, checks, render; returns the exit code."""
    from anomaly_cli.audit import run_checks
    from anomaly_cli.config import load_settings
    from anomaly_cli.timewindow import parse_window

    flags: dict[str, Any] = {
        "db.url": given["db"], "format": given["format"], "fail_on": given["fail_on"],
        "summarize": given["summarize"], "llm.base_url": given["llm_base_url"],
        "llm.model": given["llm_model"], "llm.api_key": given["llm_api_key"],
        "llm.timeout": given["llm_timeout"], "llm.max_findings": given["llm_max_findings"],
        # A switch left off is "not given", so that the environment or the file may turn it on.
        "brief": True if given["brief"] else None,
        "llm.send_personal_data": True if given["llm_send_personal_data"] else None,
        "state": given["state"], "cooldown": given["cooldown"],
    }
    for cls in checks:
        for param in cls.params:
            value = given.get(f"p_{param.name}")
            # A switch left off is "not given": the environment or the file may turn it on.
            flags[f"{cls.name}.{param.name}"] = None if value is False else value
    settings = load_settings(flags=flags, check_params={c.name: c.params for c in checks},
                             config_path=given["config"])
    now = datetime.now()
    window = parse_window(given["since"], given["until"], now=now)
    fmt = settings["format"] or _default_format(given["output"])
    summarizer = _summarizer(settings, fmt)
    _refuse_output_onto_database(given["output"], settings)
    if given["new_only"] and given["limit"] is not None:
        raise UsageError("--limit cannot be combined with --new-only",
                         hint="findings past the limit would be marked as reported without being shown")

    with _output_stream(given["output"]) as (stream, is_terminal), _alert_store(settings, given) as store:
        with run_checks(settings, checks, window, limit=given["limit"], now=now,
                        skip_unavailable=every) as report:
            from anomaly_cli import render

            if store is not None:
                moment = datetime.now(timezone.utc)
                for result in report.results:
                    result.apply(lambda found, s=store: s.new_only(found, cooldown=settings["cooldown"], now=moment))
            if summarizer is not None:
                for result in report.results:
                    summarizer.attach(result)
            render.write(report, fmt, stream, color=is_terminal, currency=settings["currency"],
                         messages=summarizer is not None and summarizer.uses_llm)
    for note in summarizer.notes if summarizer is not None else ():
        _say(note)
    if not given["quiet"]:
        for name, why in report.skipped.items():
            _say(f"{name}: skipped: {why}")
        for result in report.results:
            counts = ", ".join(f"{n} {s}" for s, n in result.summary()["by_severity"].items())
            _say(f"{result.check}: {result.total} finding{'s' if result.total != 1 else ''}"
                 + (f" ({counts})" if counts else "")
                 + (f"; written to {given['output']}" if given["output"] else ""))
    return exit_code_for(report.worst, settings["fail_on"])


def _refuse_output_onto_database(output: Path | None, settings: Any) -> None:
    """--output must not replace the audited SQLite file (or its journal files)."""
    if output is None or not settings["db.url"]:
        return
    from anomaly_cli.db import parse_url, sqlite_path

    audited = sqlite_path(parse_url(settings["db.url"]))
    if audited is None:
        return
    target = output.expanduser().resolve()
    if target in {audited, *(audited.with_name(audited.name + s) for s in ("-wal", "-shm", "-journal"))}:
        raise UsageError(f"--output {output} is the audited database", hint="scans never write to it")


@contextmanager
def _alert_store(settings: Any, given: dict[str, Any]) -> Iterator[Any]:
    """The alert store for --new-only (None without it); never the audited database.

    If the run fails, its marks are undone: a report that never got out must not silence
    its findings for the cooldown.
    """
    if not given["new_only"]:
        yield None
        return
    from anomaly_cli.db import parse_url, same_database
    from anomaly_cli.state import AlertStore, default_state_url

    state = parse_url(settings["state"] or default_state_url(settings.environ))
    audited = settings["db.url"]
    if audited and same_database(state, parse_url(audited)):
        raise UsageError("--state must not be the audited database", hint="scans never write to it")
    with AlertStore(state, connect_timeout=settings["db.connect_timeout"]) as store:
        try:
            yield store
        except BaseException:
            store.release()
            raise


def _summarizer(settings: Any, fmt: OutputFormat) -> Any:
    """The summariser for the formats people read; None when template lines need no help."""
    if fmt not in (OutputFormat.TEXT, OutputFormat.TABLE):
        return None  # JSON and CSV findings never depend on a model
    from anomaly_cli.summarize import Summarizer, SummarizeMode, from_settings

    options = from_settings(settings)
    if options.mode is SummarizeMode.TEMPLATE and not options.brief:
        return None
    return Summarizer(options)


def _default_format(output: Path | None) -> OutputFormat:
    """table on a terminal, text otherwise; a file's suffix (.json, .csv, ...) decides for it."""
    if output is not None:
        return OutputFormat.for_path(str(output)) or OutputFormat.TEXT
    return OutputFormat.TABLE if sys.stdout.isatty() else OutputFormat.TEXT


@contextmanager
def _output_stream(path: Path | None) -> Iterator[tuple[Any, bool]]:
    """stdout, or an atomically written file; yields (stream, is_terminal)."""
    if path is None:
        yield sys.stdout, sys.stdout.isatty()
        return
    from anomaly_cli.output import atomic_writer

    with atomic_writer(path) as stream:
        yield stream, False


def _help_text(doc: str) -> str:
    """A docstring as help: paragraphs kept, line breaks inside a paragraph joined."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _register_scan_commands() -> None:
    checks = registry()
    for name, cls in checks.items():
        scan_app.command(name=name, help=_help_text(cls.__doc__ or name))(
            _build_scan_command([cls], cls.__doc__ or name))
    scan_app.command(name="all", help="Run every check on one connection; the exit code is the worst.")(
        _build_scan_command(list(checks.values()), "Run every check.", every=True))


_register_scan_commands()


# ---------------------------------------------------------------------------------------


@app.command()
def demo(
    path: Annotated[Path, typer.Option("--path", metavar="FILE",
                                       help="Where to create the demo SQLite database.")] = Path("anomaly-demo.db"),
    fmt: Annotated[Optional[OutputFormat], typer.Option("--format", "-f", case_sensitive=False,
                                                        help="Output format [default: table on a terminal].")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Create a SQLite demo database whose data ends now, with planted anomalies, and scan it."""
    from anomaly_cli.demo import build_demo_database

    counts = build_demo_database(path, now=datetime.now())
    _say(f"demo database {path}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    checks = list(registry().values())
    given = {o[0]: None for o in COMMON_OPTIONS} | {"db": str(path), "format": fmt, "quiet": False,
                                                     "fail_on": FailOn.NEVER}
    _scan(checks, given, every=True)
    _say(f"explore it: anomaly scan price --db {path}   (or: anomaly scan all --db {path} --format json)")


@db_app.command("init")
def db_init(
    db: Annotated[Optional[str], typer.Option("--db", metavar="URL", help="Database URL; env ANOMALY_DB_URL.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Config file.")] = None,
    demo_data: Annotated[bool, typer.Option("--demo-data", help="Also load the demo data set (ending now).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Create the seed schema (under the configured names) in the database; optionally load demo data."""
    from anomaly_cli.audit import database_url
    from anomaly_cli.db import mask_url
    from anomaly_cli.demo import init_database

    settings = _plain_settings(db, config)
    url = database_url(settings)
    loaded = init_database(url, settings, demo_data=demo_data, now=datetime.now())
    summary = ", ".join(f"{n} {t}" for t, n in loaded.items()) if loaded else "no rows"
    _say(f"created the schema in {mask_url(url)}; loaded {summary}")


@db_app.command("indexes")
def db_indexes(
    db: Annotated[Optional[str], typer.Option("--db", metavar="URL", help="Database; env ANOMALY_DB_URL.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Config file.")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Create the missing indexes (writes).")] = False,
    dialect: Annotated[Optional[str], typer.Option(
        "--dialect", metavar="sqlite|mysql|postgresql", help="Print for this engine when no --db is given.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Print the CREATE INDEX statements that make the checks fast on the configured schema.

    Nothing is executed unless --apply is given; then only the indexes the database lacks are
    created (an existing index starting with the same columns counts).
    """
    from anomaly_cli.db import connect, parse_url
    from anomaly_cli.indexes import apply_indexes, index_statements

    settings = _plain_settings(db, config)
    checks = list(registry().values())
    url = parse_url(settings["db.url"]) if settings["db.url"] else None
    if not apply:
        name = url.get_backend_name() if url is not None else (dialect or "sqlite")
        if name not in ("sqlite", "mysql", "mariadb", "postgresql"):
            raise UsageError(f"--dialect {name!r} is not one of sqlite, mysql, postgresql")
        for statement in index_statements(settings.schema, name, checks):
            print(statement + ";")
        return
    if url is None:
        raise UsageError("--apply needs a database", hint="pass --db URL or set ANOMALY_DB_URL")
    with connect(url, connect_timeout=settings["db.connect_timeout"], read_only=False) as conn:
        with conn.begin():
            executed = apply_indexes(conn, settings.schema, checks)
    for statement in executed:
        print(statement + ";")
    _say(f"created {len(executed)} index{'es' if len(executed) != 1 else ''}")


def _plain_settings(db: str | None, config: Path | None) -> Any:
    """Settings of the commands that name a database but run no check (db, load)."""
    from anomaly_cli.config import load_settings

    return load_settings(flags={"db.url": db}, check_params={}, config_path=config)


def _load(kind: str, file: Path, day: str | None, db: str | None, config: Path | None) -> None:
    from datetime import date

    from anomaly_cli.loaders import load_file

    try:
        parsed_day = date.fromisoformat(day) if day else None
    except ValueError:
        raise UsageError(f"--date {day!r} is not a date (use e.g. 2025-07-12)") from None
    settings = _plain_settings(db, config)
    report, table_name = load_file(kind, file, day=parsed_day, settings=settings)
    _say(f"{file}: read {report.read} rows, loaded {report.loaded} into {table_name}"
         f" (rejected {report.rejected}, replaced {report.replaced})")


def _load_command(kind: str, doc: str) -> Callable[..., None]:
    def command(
        file: Annotated[Path, typer.Argument(metavar="FILE", help="The CSV file.", show_default=False)],
        day: Annotated[Optional[str], typer.Option(
            "--date", metavar="YYYY-MM-DD", help="The day of the file's HHh MM times.")] = None,
        db: Annotated[Optional[str], typer.Option(
            "--db", metavar="URL", help="Database to write to; env ANOMALY_DB_URL.")] = None,
        config: Annotated[Optional[Path], typer.Option(
            "--config", metavar="FILE", help="Config file (table and column names).")] = None,
        debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    ) -> None:
        _load(kind, file, day, db, config)

    command.__doc__ = doc
    return command


_COUNTS_DOC = """Per-minute counts by status (time,status,count or f0_) into the counts table, for `scan rates`.

    Duplicate (minute, status) rows are summed; absent minutes mean zero. A file with a bad row
    loads nothing and names the line. Reloading a file replaces its minutes.
    """
_CHECKOUT_DOC = """Hourly checkouts (time,today,yesterday,same_day_last_week,avg_last_week,avg_last_month), for `scan checkout`.

    Reloading a file replaces its hours.
    """
for _kind, _doc in (("counts", _COUNTS_DOC), ("checkout", _CHECKOUT_DOC)):
    load_app.command(_kind, help=_help_text(_doc))(_load_command(_kind, _doc))


alerts_app = typer.Typer(help="The alert state behind --new-only: list, show, acknowledge and label alerts.",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
STATE_OPTION = typer.Option("--state", metavar="URL", help="Alert state store; env ANOMALY_STATE.")


@contextmanager
def _open_state(state: str | None) -> Iterator[Any]:
    from anomaly_cli.config import load_settings
    from anomaly_cli.state import AlertStore, default_state_url

    settings = load_settings(flags={"state": state}, check_params={})
    with AlertStore(settings["state"] or default_state_url(settings.environ)) as store:
        yield store


@alerts_app.command("list")
def alerts_list(
    check: Annotated[Optional[str], typer.Option("--check", help="Only this check's alerts.")] = None,
    label: Annotated[Optional[str], typer.Option("--label", metavar="fraud|false_positive|unlabelled",
                                                 help="Only alerts with this label.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most N alerts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines instead of a table.")] = False,
    state: Annotated[Optional[str], STATE_OPTION] = None,
) -> None:
    """List remembered alerts, most recently seen first, with label counts per check."""
    from anomaly_cli.render.encode import dumps

    with _open_state(state) as store:
        records = store.list(check=check, label=label, limit=limit)
        counts = store.label_counts(check)
    if as_json:
        for record in records:
            print(dumps(record.as_dict()))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("Key", "Check", "Severity", "Last seen", "Seen", "Notified", "Acked", "Label")
    for r in records:
        table.add_row(r.key, r.check, str(r.severity), f"{r.last_seen:%Y-%m-%d %H:%M}", str(r.times_seen),
                      f"{r.last_notified:%Y-%m-%d %H:%M}" if r.last_notified else "",
                      "yes" if r.acked_at else "", r.label or "")
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    console.print(table)
    for name, tally in counts.items():
        judged = tally.get("fraud", 0) + tally.get("false_positive", 0)
        precision = f"; precision {tally.get('fraud', 0) / judged:.2f}" if judged else ""
        console.print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in tally.items()) + precision)


@alerts_app.command("show")
def alerts_show(key: Annotated[str, typer.Argument(help="The finding's key.")],
                state: Annotated[Optional[str], STATE_OPTION] = None) -> None:
    """Everything remembered about one alert, as JSON."""
    from anomaly_cli.render.encode import dumps
    from anomaly_cli.state import UnknownAlertError

    with _open_state(state) as store:
        record = store.show(key)
    if record is None:
        raise UnknownAlertError(f"no alert with key {key!r}", hint="see 'anomaly alerts list'")
    print(dumps(record.as_dict()))


@alerts_app.command("ack")
def alerts_ack(key: Annotated[str, typer.Argument(help="The finding's key.")],
               state: Annotated[Optional[str], STATE_OPTION] = None) -> None:
    """Acknowledge an alert: --new-only stays quiet about it until its severity rises."""
    with _open_state(state) as store:
        record = store.ack(key, datetime.now(timezone.utc))
    _say(f"acknowledged {record.key} ({record.severity})")


@alerts_app.command("label")
def alerts_label(
    key: Annotated[str, typer.Argument(help="The finding's key.")],
    fraud: Annotated[bool, typer.Option("--fraud", help="A real problem.")] = False,
    false_positive: Annotated[bool, typer.Option("--false-positive", help="Not a problem.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the label.")] = False,
    state: Annotated[Optional[str], STATE_OPTION] = None,
) -> None:
    """Label an alert --fraud or --false-positive; the labels give each check's precision in `alerts list`."""
    if fraud + false_positive + clear != 1:
        raise UsageError("give exactly one of --fraud, --false-positive or --clear")
    label = "fraud" if fraud else "false_positive" if false_positive else None
    with _open_state(state) as store:
        record = store.label(key, label, datetime.now(timezone.utc))
    _say(f"labelled {record.key} {record.label or '(none)'}")


def main() -> None:
    """Console-script entry point."""
    app()
