"""`anomaly scan <check>`, `anomaly scan all` and `anomaly demo`: options in, a ScanRequest to
the library, one summary line per check on stderr, the report's exit code out."""

from __future__ import annotations

import enum
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from anomaly_cli.cli.apps import app, help_text, say, scan_app
from anomaly_cli.cli.lazy import LazyGroup, build_command
from anomaly_cli.cli.outputs import output_format, output_path, use_color
from anomaly_cli.errors import UsageError
from anomaly_cli.exit_codes import FailOn
from anomaly_cli.output import stdout_is_terminal
from anomaly_cli.render import OutputFormat
from anomaly_cli.summarize_mode import SummarizeMode

if TYPE_CHECKING:
    from anomaly_cli.checks import Check

LLM_PANEL = "Plain-English summaries"
ALERTS_PANEL = "Repeat alerts"
NOTIFY_PANEL = "Notifications"


@dataclass(frozen=True)
class CommonOption:
    """One option of every scan command; `key` is the setting it gives (flag > env > file)."""

    name: str
    annotation: Any
    info: Any  # typer.models.OptionInfo
    key: str | None = None


def _opt(name: str, annotation: Any, *decls: str, key: str | None = None, **kwargs: Any) -> CommonOption:
    return CommonOption(name, annotation, typer.Option(*decls, **kwargs), key)


# The one declaration of the common scan options: the commands' signatures and the settings
# they give are both generated from it.
COMMON_OPTIONS: tuple[CommonOption, ...] = (
    _opt("db", Optional[str], "--db", key="db.url", metavar="URL",
         help="Database URL (or SQLite file path); env ANOMALY_DB_URL."),
    _opt("config", Optional[Path], "--config", metavar="FILE", show_default="./anomaly.toml if present",
         help="Config file."),
    _opt("since", Optional[str], "--since", metavar="WHEN",
         help="Start of the window, inclusive: 2025-09-12, 2025-09-12T10:00, 7d."),
    _opt("until", Optional[str], "--until", metavar="WHEN", help="End of the window, exclusive."),
    _opt("format", Optional[OutputFormat], "--format", "-f", key="format", case_sensitive=False,
         show_default="table on a terminal, else text, or by --output's suffix", help="Output format."),
    _opt("output", Optional[Path], "--output", "-o", metavar="FILE",
         help="Write to FILE atomically instead of stdout ('-' is stdout); a .json, .jsonl, .csv or .txt "
              "name chooses the format, a name contradicting the format is refused."),
    _opt("metrics", Optional[Path], "--metrics", metavar="FILE",
         help="Also write Prometheus metrics to FILE (node_exporter textfile collector), atomically."),
    _opt("fail_on", Optional[FailOn], "--fail-on", key="fail_on", case_sensitive=False, show_default="low",
         help="Exit 1 when a finding is at or above this severity."),
    _opt("fail_on_not_evaluated", bool, "--fail-on-not-evaluated", key="fail_on_not_evaluated",
         help="Exit 1 also when a check could not judge anything (no data, too little history)."),
    _opt("limit", Optional[int], "--limit", min=1, metavar="N",
         help="Show at most N findings per check, the most severe first (all are still counted)."),
    _opt("wide", bool, "--wide", help="Table: add each finding's key (for 'anomaly alerts ack KEY')."),
    _opt("set", Optional[list[str]], "--set", metavar="KEY=VALUE",
         help="Any config key, e.g. --set price.below=0.5 (repeatable; beats env and file)."),
    _opt("quiet", bool, "--quiet", "-q", help="No summary or status line on stderr."),
    _opt("debug", bool, "--debug", help="Show tracebacks of errors."),
    _opt("new_only", bool, "--new-only", rich_help_panel=ALERTS_PANEL,
         help="Emit only findings not reported within --cooldown, or whose severity went up."),
    _opt("cooldown", Optional[str], "--cooldown", key="cooldown", metavar="DURATION",
         rich_help_panel=ALERTS_PANEL, show_default="4h",
         help="With --new-only: how long a reported finding stays quiet: 90s, 30m, 4h, 1d, 1h30m."),
    _opt("state", Optional[str], "--state", key="state", metavar="URL", rich_help_panel=ALERTS_PANEL,
         show_default="a SQLite file in ~/.local/state/anomaly",
         help="Where alert state lives (never the audited database); env ANOMALY_STATE."),
    _opt("notify", Optional[list[str]], "--notify", key="notify.urls", metavar="URL", rich_help_panel=NOTIFY_PANEL,
         callback=lambda urls: urls or None,  # not given: the [notify] config decides
         help="Send one grouped message per run to this Apprise URL (slack://, mailto://, json://, ...) "
              "or alertmanager://host:9093; repeatable; routing by severity in [notify]."),
    _opt("notify_resolved", bool, "--notify-resolved", key="notify.resolved", rich_help_panel=NOTIFY_PANEL,
         help="Also announce incidents that were alerted and are no longer found (with --new-only)."),
    _opt("summarize", Optional[SummarizeMode], "--summarize", key="summarize", case_sensitive=False,
         show_default="auto", rich_help_panel=LLM_PANEL,
         help="Who writes the text lines: auto (the model when configured), llm or template."),
    _opt("brief", bool, "--brief", key="brief", rich_help_panel=LLM_PANEL,
         help="Add an executive summary per check (text, table)."),
    _opt("llm_base_url", Optional[str], "--llm-base-url", key="llm.base_url", metavar="URL",
         rich_help_panel=LLM_PANEL, help="OpenAI-compatible endpoint (OpenAI, Groq, Ollama, vLLM); "
                                         "env ANOMALY_LLM_BASE_URL."),
    _opt("llm_model", Optional[str], "--llm-model", key="llm.model", metavar="NAME", rich_help_panel=LLM_PANEL,
         show_default="gpt-4o-mini", help="Model name; env ANOMALY_LLM_MODEL."),
    _opt("llm_api_key", Optional[str], "--llm-api-key", key="llm.api_key", metavar="KEY",
         rich_help_panel=LLM_PANEL,
         help="API key; prefer env ANOMALY_LLM_API_KEY (command lines are visible to other users)."),
    _opt("llm_timeout", Optional[str], "--llm-timeout", key="llm.timeout", metavar="SECONDS",
         rich_help_panel=LLM_PANEL, show_default="30", help="Deadline of each model request, in seconds (or 2m)."),
    _opt("llm_max_findings", Optional[str], "--llm-max-findings", key="llm.max_findings", metavar="N",
         rich_help_panel=LLM_PANEL, show_default="100",
         help="Send at most N findings to the model; the rest get template lines."),
    _opt("llm_send_personal_data", bool, "--llm-send-personal-data", key="llm.send_personal_data",
         rich_help_panel=LLM_PANEL,
         help="Send customer names, e-mails and phones to the model (self-hosted models only)."),
)


# `scan all` only: which checks run.
SELECTION_OPTIONS: tuple[CommonOption, ...] = (
    _opt("checks", Optional[str], "--checks", metavar="NAMES",
         help="Run only these checks, comma-separated (e.g. price,sales); their tables must exist."),
    _opt("skip", Optional[str], "--skip", metavar="NAMES", help="Leave these checks out, comma-separated."),
)


def _check_option(check: type[Check], param: Any) -> CommonOption:
    """The --flag of one check threshold; values stay text here and are parsed with the config."""
    help_text_ = f"{param.help[0].upper()}{param.help[1:]} (config key {check.name}.{param.name})."
    key = f"{check.name}.{param.name}"
    if param.kind is bool:  # a switch: --list, not --list true
        return _opt(f"p_{param.name}", bool, param.flag, key=key, help=help_text_)
    if isinstance(param.kind, type) and issubclass(param.kind, enum.Enum):
        metavar = "|".join(str(m.value) for m in param.kind)
    else:
        metavar = {int: "INT", float: "NUMBER", Decimal: "NUMBER"}.get(param.kind, "TEXT")
    default = param.default.value if isinstance(param.default, enum.Enum) else param.default
    return _opt(f"p_{param.name}", Optional[str], param.flag, key=key, metavar=metavar,
                show_default=str(default), help=help_text_)


def settings_flags(options: tuple[CommonOption, ...], given: dict[str, Any]) -> dict[str, Any]:
    """The settings the options give; a switch left off is "not given", so that the environment
    or the file may turn it on."""
    return {o.key: (None if given.get(o.name) is False else given.get(o.name)) for o in options if o.key}


def _build_scan_command(checks: list[type[Check]], doc: str, *, every: bool = False) -> Callable[..., None]:
    """A Typer command for `checks`: the common options plus, for one check, its thresholds."""
    options = COMMON_OPTIONS + (SELECTION_OPTIONS if every else ())
    if len(checks) == 1:
        options += tuple(_check_option(checks[0], p) for p in checks[0].params)

    def command(**given: Any) -> None:
        raise typer.Exit(run_scan_command([c.name for c in checks], given, options, every=every))

    return with_options(command, options, doc)


def with_options(command: Callable[..., None], options: tuple[CommonOption, ...], doc: str) -> Callable[..., None]:
    """`command(**given)` with the signature Typer reads its options from."""
    parameters = [
        inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=False if o.annotation is bool else None,
                          annotation=Annotated[o.annotation, o.info])
        for o in options
    ]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = doc
    return command


def run_scan_command(checks: list[str], given: dict[str, Any], options: tuple[CommonOption, ...] = COMMON_OPTIONS,
                     *, every: bool = False) -> int:
    """Settings, window and outputs from the options; the library runs the scan; one line per check."""
    from anomaly_cli.config import load_settings
    from anomaly_cli.render import RenderOptions
    from anomaly_cli.scan import AlertOptions, Output, build_request, run_scan
    from anomaly_cli.timewindow import parse_window

    flags = {**set_values(given.get("set") or ()),
             **{k: v for k, v in settings_flags(options, given).items() if v is not None}}
    settings = load_settings(flags=flags, config_path=given.get("config"), checks=checks)
    if not given.get("quiet"):
        for warning in settings.warnings:
            say(warning)
    now = datetime.now()
    window = parse_window(given.get("since"), given.get("until"), now=now)
    required = False
    if every:
        checks, required = select_checks(checks, given.get("checks"), given.get("skip"))
    path = output_path(given.get("output"))
    fmt = output_format(given.get("format"), settings["format"], path)
    if given.get("new_only") and given.get("limit") is not None:
        raise UsageError("--limit cannot be combined with --new-only",
                         hint="findings past the limit would be marked as reported without being shown")
    if given.get("cooldown") is not None and not given.get("new_only"):
        raise UsageError("--cooldown applies only with --new-only", hint="add --new-only, or leave --cooldown out")
    terminal = path is None and stdout_is_terminal()
    color = use_color(terminal)
    output = Output(fmt, path=path, options=RenderOptions(color=color, currency=settings["currency"],
                                                          fail_on=settings["fail_on"], wide=bool(given.get("wide"))))
    metrics: Path | None = given.get("metrics")
    if metrics is not None:
        from anomaly_cli.metrics import check_destination

        check_destination(metrics)
    alerts = None
    if given.get("new_only"):
        from anomaly_cli.state import default_state_url  # the alert store's module: only with --new-only

        alerts = AlertOptions(state_url=settings["state"] or default_state_url(settings.environ),
                              cooldown=settings["cooldown"])
    status = None
    # The line shares the screen with what stdout prints there: only when that is a table (printed
    # whole once the line has stepped aside) or a file; not when stdout is piped (it may be shown
    # on the same terminal by `| less`) or streams lines to the terminal.
    screen_safe = path is not None or (terminal and fmt is OutputFormat.TABLE)
    if not given.get("quiet") and screen_safe and sys.stderr is not None and sys.stderr.isatty():
        from anomaly_cli.cli.progress import StatusLine

        status = StatusLine(color=use_color(True))
    from anomaly_cli.notify import with_notifications

    request, notify = with_notifications(settings, build_request(
        settings, checks, window, outputs=(output,), limit=given.get("limit"), alerts=alerts,
        skip_unavailable=every and not required, now=now, progress=status))
    try:
        report = run_scan(request)
    finally:
        if status is not None:
            status.stop()
    if metrics is not None:
        from anomaly_cli.metrics import write_metrics

        write_metrics(metrics, report)
    for note in report.notes:
        say(note)
    if not given.get("quiet"):
        for name, why in report.skipped.items():
            say(f"{name}: skipped: {why}")
        for outcome in report.results:
            say(summary_line(outcome) + (f"; written to {path}" if path else ""))
        if report.resolved:
            say(f"{len(report.resolved)} incident{'s' if len(report.resolved) != 1 else ''} resolved")
        if notify is not None and notify.sent:
            say("notified " + ", ".join(notify.sent))
    return report.exit_code


def set_values(pairs: Any) -> dict[str, str]:
    """--set KEY=VALUE pairs as settings (the keys are checked with the rest of the settings)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {pair!r} is not KEY=VALUE", hint="e.g. --set price.below=0.5")
        out[key.strip()] = value.strip()
    return out


def select_checks(names: list[str], only: str | None, skip: str | None) -> tuple[list[str], bool]:
    """`scan all --checks a,b --skip c`: the checks to run, and whether they were named (then
    their tables must exist, where plain `scan all` skips a check whose tables are missing)."""
    def parse(option: str, text: str) -> list[str]:
        chosen = [n.strip().lower() for n in text.split(",") if n.strip()]
        for name in chosen:
            if name not in names:
                import difflib

                close = difflib.get_close_matches(name, names, n=1)
                raise UsageError(f"{option}: unknown check {name!r}",
                                 hint=f"did you mean {close[0]!r}?" if close else "one of " + ", ".join(names))
        if not chosen:
            raise UsageError(f"{option} names no check", hint="one of " + ", ".join(names))
        return chosen

    selected = parse("--checks", only) if only is not None else list(names)
    if skip is not None:
        left_out = set(parse("--skip", skip))
        selected = [n for n in selected if n not in left_out]
    if not selected:
        raise UsageError("--checks and --skip leave no check to run")
    return [n for n in names if n in selected], only is not None


def summary_line(outcome: Any) -> str:
    """'price: 3 findings (1 critical, 2 high)', '...; 6 suppressed', or 'not evaluated: why'."""
    from anomaly_cli.model import Status

    if outcome.status is Status.NOT_EVALUATED:
        return f"{outcome.check}: not evaluated: {outcome.reason}"
    counts = ", ".join(f"{n} {s}" for s, n in outcome.summary()["by_severity"].items())
    line = f"{outcome.check}: {outcome.findings} finding{'s' if outcome.findings != 1 else ''}"
    line += f" ({counts})" if counts else ""
    if outcome.suppressed:  # already reported within the cooldown, acknowledged or silenced
        line += f"; {outcome.suppressed} suppressed"
    return line


EXIT_CODES = ("Exit codes: 0 no finding at or above --fail-on; 1 findings at or above --fail-on; "
              "2 usage or configuration error; 3 the audit could not be completed.")


def epilog(name: str) -> str:
    """Exit codes and two examples, under every scan command's options (\\b keeps the lines)."""
    extra = " --checks price,sales --set price.below=0.5" if name == "all" else ""
    return (f"{EXIT_CODES}\n\n\b\nExamples:\n"
            f"  anomaly scan {name} --db shop.db --since 7d{extra}\n"
            f"  anomaly scan {name} --db \"$SHOP_DB\" --since 1d -o {name}.json --fail-on high --quiet")


ALL_HELP = ("Run every check on one connection; the exit code is the worst. A check whose tables the database "
            "lacks is skipped with a note (a monitoring-only database runs rates and checkout).")


class ScanGroup(LazyGroup):
    """`anomaly scan <check>`: a check's command is built when it is asked for, so that `scan price`
    imports price's module and no other check's (a plugin's name loads the plugins); `scan --help`,
    `scan all` and a typo import them all."""

    def names(self) -> list[str]:
        from anomaly_cli.checks import registry

        return [*registry(), "all"]

    def build(self, name: str) -> Any:
        """The command of `scan <name>`, None for an unknown check. A plugin that cannot load, or
        takes a taken name, raises here or when the scan runs: the CLI's error boundary makes it
        one line and exit 2."""
        from anomaly_cli.checks import find, registry

        if name == "all":
            checks, doc, help_ = list(registry().values()), "Run every check.", ALL_HELP
        else:
            cls = find(name, plugins=False)  # the plugins are loaded (and judged) when it runs
            if cls is None:
                return None
            checks, doc = [cls], cls.__doc__ or name
            help_ = help_text(doc)
        one = typer.Typer()
        one.command(name=name, help=help_, epilog=epilog(name))(_build_scan_command(checks, doc, every=name == "all"))
        return build_command(one.registered_commands[0], app)


scan_app.info.cls = ScanGroup


@app.command()
def demo(
    path: Annotated[Path, typer.Option("--path", metavar="FILE",
                                       help="Where to create the demo SQLite database.")] = Path("anomaly-demo.db"),
    fmt: Annotated[Optional[OutputFormat], typer.Option("--format", "-f", case_sensitive=False,
                                                        help="Output format [default: table on a terminal].")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Create a demo database whose data ends now, with planted anomalies, and scan it.

    A --path ending in .duckdb makes a DuckDB file (with the duckdb extra) instead of SQLite.
    """
    if path.suffix == ".duckdb":
        from anomaly_cli.config import default_schema
        from anomaly_cli.duck import build_demo

        counts = build_demo(path, now=datetime.now(), mapping=default_schema())
        target = f"duckdb:///{path}"
    else:
        from anomaly_cli.demo import build_demo_database

        counts = build_demo_database(path, now=datetime.now())
        target = str(path)
    from anomaly_cli.checks import registry

    say(f"demo database {path}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    run_scan_command(list(registry()), {"db": target, "format": fmt, "fail_on": FailOn.NEVER}, every=True)
    say(f"explore it: anomaly scan price --db {target}   (or: anomaly scan all --db {target} --format json)")
