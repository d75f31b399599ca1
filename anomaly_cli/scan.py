"""The scan use case: a typed request in, a report out, findings streamed into sinks on the way.

    from anomaly_cli.scan import scan
    report = scan("shop.db", checks=["price"], since="7d")
    report.exit_code, report.results[0].summary(), report.findings

The CLI, `anomaly demo`, and every later front end (a watch loop, an HTML report) call
`run_scan` with a `ScanRequest`; nothing here prints or exits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from anomaly_cli import __version__
from anomaly_cli.checks import Check, CheckContext, find, registry
from anomaly_cli.errors import SchemaError, UsageError
from anomaly_cli.exit_codes import ExitCode, FailOn, exit_code_for
from anomaly_cli.model import CheckInfo, CheckStats, Finding, RunInfo, ScanReport, Window
from anomaly_cli.pipeline import Tally, Worst, suppress_repeats, unique_keys, worst_first
from anomaly_cli.render import OutputFormat, RenderOptions, Sink, make_sink

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from anomaly_cli.config import SchemaMap, Settings
    from anomaly_cli.summarize import SummarizeSettings, Summarizer

BRIEF_FINDINGS = 50  # the most severe findings a brief is written from


@dataclass(frozen=True)
class Output:
    """One destination: a format, and a file (written atomically) or a stream (default stdout)."""

    format: OutputFormat
    path: Path | None = None
    stream: TextIO | None = None
    options: RenderOptions = RenderOptions()


@dataclass(frozen=True)
class AlertOptions:
    """--new-only: report a finding once per cooldown, remembered in a state store."""

    state_url: str
    cooldown: timedelta = timedelta(hours=4)


@dataclass(frozen=True)
class ScanRequest:
    database: str  # a SQLAlchemy URL or a SQLite file path
    checks: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]]  # check -> its resolved thresholds
    schema: SchemaMap
    window: Window = Window()
    outputs: tuple[Output, ...] = ()
    fail_on: FailOn = FailOn.LOW
    fail_on_not_evaluated: bool = False
    limit: int | None = None  # per check, the most severe first; all are still counted
    alerts: AlertOptions | None = None
    text: SummarizeSettings | None = None  # who writes lines for people; None: the template
    currency: str = "₹"
    connect_timeout: int = 10
    statement_timeout: int = 1800  # seconds one query may take (db.statement_timeout); 0: no limit
    skip_unavailable: bool = False  # scan all: leave out optional checks whose tables are missing
    keep_findings: bool = False  # hold the emitted findings in the report (library use)
    charts: bool = False  # let checks record chart points (the HTML report)
    now: datetime | None = None
    extra_sinks: tuple[Sink, ...] = field(default=(), compare=False)  # e.g. notifications
    # Told where the scan is, for a front end's status line: progress("connect", database=...),
    # ("check", name=, index=, total=), ("findings", name=, count=), ("check_done", name=).
    # Called before any sink sees a check's end, so a status line can step aside for a table.
    progress: Callable[..., None] | None = field(default=None, compare=False)


def build_request(settings: Settings, checks: Sequence[str], window: Window, **options: Any) -> ScanRequest:
    """A request from resolved settings: each check's thresholds validated, the text writer chosen."""
    settings.database_url()  # refused now, before anything runs, if missing or malformed
    params: dict[str, dict[str, Any]] = {}
    for name in checks:
        cls = _check(name)
        params[name] = settings.check_params(name, cls.params)
        try:
            cls.validate(params[name])
        except UsageError as exc:
            # The check speaks of --flags; the value may have come from the environment or a file.
            given = [f"{name}.{p.name} from {settings.origin(f'{name}.{p.name}')}" for p in cls.params
                     if settings.origin(f"{name}.{p.name}") not in ("default", "the command line")]
            if given:
                raise UsageError(f"{exc.message} ({'; '.join(given)})", hint=exc.hint) from None
            raise
    text = None
    outputs: Sequence[Output] = options.get("outputs", ())
    if any(o.format.for_people for o in outputs):
        from dataclasses import replace

        from anomaly_cli.summarize import from_settings
        from anomaly_cli.summarize_mode import SummarizeMode

        text = from_settings(settings)
        if text.mode is SummarizeMode.LLM:  # the table gets a column for the model's lines
            options["outputs"] = tuple(replace(o, options=replace(o.options, messages=True))
                                       if o.format.for_people else o for o in outputs)
    defaults: dict[str, Any] = dict(
        fail_on=settings["fail_on"], currency=settings["currency"],
        connect_timeout=settings["db.connect_timeout"], statement_timeout=settings["db.statement_timeout"],
        text=text,
        fail_on_not_evaluated=settings["fail_on_not_evaluated"],
        charts=any(o.format is OutputFormat.HTML for o in outputs),  # only the report draws them
    )
    return ScanRequest(database=settings["db.url"], checks=tuple(checks), params=params, schema=settings.schema,
                       window=window, **(defaults | options))


def scan(db: str, checks: Sequence[str] | None = None, *, since: str | None = None, until: str | None = None,
         config: Path | None = None, settings: Mapping[str, Any] | None = None) -> ScanReport:
    """Run checks (default: all) on `db` and return the report with its findings; writes nothing.

    `settings` holds config keys as the file or the flags would give them ({"price.below": "0.5"}).
    """
    from anomaly_cli.config import load_settings
    from anomaly_cli.timewindow import parse_window

    loaded = load_settings(flags={"db.url": db, **(settings or {})}, config_path=config)
    names = list(checks) if checks else list(registry())
    for name in names:
        _check(name)
    now = datetime.now()
    request = build_request(loaded, names, parse_window(since, until, now=now), keep_findings=True,
                            skip_unavailable=checks is None, now=now)
    return run_scan(request)


def run_scan(request: ScanRequest) -> ScanReport:
    """Run the request's checks on one read-only connection, streaming findings into its sinks.

    Output files are complete or absent; `--new-only` claims are released unless every output
    was durably written and every sink delivered (so a failed run never silences its findings).
    """
    from anomaly_cli import db

    now = request.now or datetime.now()
    url = db.parse_url(request.database)
    classes = [_check(name) for name in request.checks]
    with ExitStack() as stack:
        claim = store = None
        if request.alerts is not None:
            store = stack.enter_context(_alert_store(request.alerts, url, request.connect_timeout))
            moment = datetime.now(timezone.utc)
            claim = lambda found: store.new_only(found, cooldown=request.alerts.cooldown, now=moment)  # noqa: E731
        sinks = [*(_open_output(stack, output, url) for output in request.outputs), *request.extra_sinks]
        if request.progress is not None:
            request.progress("connect", database=db.mask_url(url))
        conn = stack.enter_context(db.connect(url, connect_timeout=request.connect_timeout,
                                              statement_timeout=request.statement_timeout))
        runnable, skipped, absent = _verify(conn, request, classes)
        if absent:
            from dataclasses import replace

            request = replace(request, schema=replace(request.schema, absent=frozenset(absent)))
        run = RunInfo(tool="anomaly", version=__version__, generated_at=datetime.now(timezone.utc),
                      window=request.window, database=db.mask_url(url),
                      checks=tuple(_info(cls, request.params[cls.name]) for cls in runnable), skipped=skipped)
        writer = _text_writer(request, sinks)
        for sink in sinks:
            sink.begin(run)
        outcomes, kept = [], [] if request.keep_findings else None
        for index, (cls, info) in enumerate(zip(runnable, run.checks, strict=True), start=1):
            if request.progress is not None:
                request.progress("check", name=cls.name, index=index, total=len(runnable))
            outcomes.append(_run_check(cls, info, conn, request, now, sinks, claim, writer, kept))
        report = ScanReport(
            run=run, results=tuple(outcomes), exit_code=0,
            notes=tuple(f"table '{request.schema[key].name}' not found: {key} data left out (it is optional)"
                        for key in sorted(absent)) + (tuple(writer.notes) if writer is not None else ()),
            findings=tuple(kept) if kept is not None else None,
            resolved=_resolve(store, outcomes, moment) if store is not None else (),
        )
        report = _with_exit_code(report, request)
        for sink in sinks:
            sink.end(report)
    return report


def _check(name: str) -> type[Check]:
    """A check by name, importing only its module (and the plugins'); an unknown name is refused."""
    cls = find(name)
    if cls is None:
        raise UsageError(f"unknown check {name!r}", hint="one of " + ", ".join(registry()))
    return cls


def _resolve(store: Any, outcomes: Sequence[Any], moment: datetime) -> tuple[Finding, ...]:
    """The alerted incidents of the checks that judged something this run, and were not found again."""
    from anomaly_cli.model import Status

    judged = [o.check for o in outcomes if o.status is not Status.NOT_EVALUATED]
    return tuple(record.as_finding() for record in store.resolve(judged, now=moment))


def _run_check(cls: type[Check], info: CheckInfo, conn: Connection, request: ScanRequest, now: datetime,
               sinks: Sequence[Sink], claim: Any, writer: Summarizer | None, kept: list[Finding] | None) -> Any:
    """One check through the stages: check -> new-only -> tally -> worst-first limit -> text writer -> sinks."""
    started = time.monotonic()
    stats = CheckStats()
    ctx = CheckContext(conn=conn, schema=request.schema, window=request.window, params=dict(info.params),
                       currency=request.currency, now=now, stats=stats, charts={} if request.charts else None)
    for sink in sinks:
        sink.check_begin(info)
    stream: Iterator[Finding] = unique_keys(cls().run(ctx), stats)
    if request.progress is not None:
        stream = _reported(stream, cls.name, request.progress)
    suppressed = lambda: 0  # noqa: E731
    if claim is not None:
        stream, suppressed = suppress_repeats(stream, claim)
    tally = Tally(info.totals)
    stream = tally.watch(stream)
    worst = Worst(BRIEF_FINDINGS) if writer is not None and writer.settings.brief else None
    if worst is not None:
        stream = worst.watch(stream)
    stream = worst_first(stream, request.limit)
    machine = [s for s in sinks if not s.for_people]
    people = [s for s in sinks if s.for_people]

    def to_machines(findings: Iterator[Finding]) -> Iterator[Finding]:
        # Programs get the template line: JSON, JSON Lines and CSV never depend on a model.
        for finding in findings:
            for sink in machine:
                sink.finding(finding)
            if kept is not None:
                kept.append(finding)
            yield finding

    stream = to_machines(stream)
    # People get the text writer's lines; it asks the model a chunk of findings at a time.
    for shown in (writer.rewrite(cls, stream) if writer is not None else stream):
        for sink in people:
            sink.finding(shown)
    from dataclasses import replace

    outcome = tally.outcome(cls.name, dict(info.params), stats, limit=request.limit, suppressed=suppressed(),
                            brief=None)
    outcome = replace(outcome, charts=ctx.charts, seconds=time.monotonic() - started)
    if worst is not None and writer is not None:
        outcome = replace(outcome, brief=writer.brief(cls, outcome, worst.findings))
    if request.progress is not None:
        request.progress("check_done", name=cls.name)
    for sink in sinks:
        sink.check_end(outcome)
    return outcome


def _reported(findings: Iterator[Finding], name: str, progress: Callable[..., None]) -> Iterator[Finding]:
    """The check's findings, telling `progress` how many it has yielded so far."""
    for count, finding in enumerate(findings, start=1):
        progress("findings", name=name, count=count)
        yield finding


def _info(cls: type[Check], params: Mapping[str, Any]) -> CheckInfo:
    return CheckInfo(name=cls.name, params=dict(params), fields=cls.fields_for(dict(params)), columns=cls.columns,
                     totals=cls.totals)


def _verify(conn: Connection, request: ScanRequest, classes: Sequence[type[Check]]
            ) -> tuple[list[type[Check]], dict[str, str], set[str]]:
    """Every check's tables and columns, before any runs. Scan all leaves out a check whose
    tables the database lacks (a shop without monitoring tables, a monitoring-only database),
    named with the reason; a missing column, or no check left to run, stops the scan."""
    import sqlalchemy as sa

    from anomaly_cli import db
    from anomaly_cli.config import OPTIONAL_TABLES

    runnable, skipped = [], {}
    first_error: SchemaError | None = None
    inspector = sa.inspect(conn)
    absent = {key for key in OPTIONAL_TABLES
              if not inspector.has_table(request.schema[key].name, schema=request.schema.db_schema)}
    for cls in classes:
        needs = {k: v for k, v in cls.needs_for(dict(request.params[cls.name])).items() if k not in absent}
        try:
            db.check_schema(conn, request.schema, needs)
        except SchemaError as exc:
            missing_table = any(not inspector.has_table(request.schema[key].name, schema=request.schema.db_schema)
                                for key in needs)
            if not (request.skip_unavailable and (cls.optional or missing_table)):
                raise
            skipped[cls.name] = str(exc)
            first_error = first_error or exc
            continue
        runnable.append(cls)
    if not runnable and first_error is not None:
        raise first_error
    used = {key for cls in runnable for key in cls.needs_for(dict(request.params[cls.name]))}
    return runnable, skipped, absent & used


def _text_writer(request: ScanRequest, sinks: Sequence[Sink]) -> Summarizer | None:
    """The model-backed writer, only when people read the output and a model or a brief is wanted."""
    from anomaly_cli.summarize_mode import SummarizeMode

    text = request.text
    if text is None or not any(s.for_people for s in sinks):
        return None
    if text.mode is SummarizeMode.TEMPLATE and not text.brief:
        return None
    from anomaly_cli.summarize import Summarizer

    return Summarizer(text)


def _with_exit_code(report: ScanReport, request: ScanRequest) -> ScanReport:
    from dataclasses import replace

    code = exit_code_for(report.worst, request.fail_on)
    if code is ExitCode.OK and request.fail_on_not_evaluated and report.not_evaluated:
        code = ExitCode.FINDINGS
    return replace(report, exit_code=int(code))


def _open_output(stack: ExitStack, output: Output, audited: Any) -> Sink:
    """A sink writing to stdout, a given stream, or a file replaced atomically when the scan ends."""
    from anomaly_cli.output import GuardedStream, atomic_writer, refuse_audited_database, standard_output

    if output.path is None:
        stream = GuardedStream(output.stream, "the output stream") if output.stream is not None else standard_output()
        return make_sink(output.format, stream, output.options)  # type: ignore[arg-type]

    refuse_audited_database(output.path, audited)
    stream = stack.enter_context(atomic_writer(output.path))
    return make_sink(output.format, stream, output.options)


@contextmanager
def _alert_store(options: AlertOptions, audited: Any, connect_timeout: int) -> Iterator[Any]:
    """The store for --new-only; never the audited database. A run that fails releases its claims:
    a report that never got out must not silence its findings for the cooldown."""
    from anomaly_cli.db import parse_url, same_database
    from anomaly_cli.state import AlertStore, scope_of

    state = parse_url(options.state_url)
    if same_database(state, audited):
        raise UsageError("--state must not be the audited database", hint="scans never write to it")
    # Alerts are remembered per audited database: a shared --state never mixes two databases' keys.
    with AlertStore(state, connect_timeout=connect_timeout, scope=scope_of(audited)) as store:
        try:
            yield store
        except BaseException:
            store.release()
            raise
