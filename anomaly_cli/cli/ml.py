"""`anomaly train behaviour` and `anomaly evaluate`: the model file and the labels' verdict.

numpy and scikit-learn are imported only when these commands run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from anomaly_cli.cli.apps import app, say
from anomaly_cli.errors import UsageError

train_app = typer.Typer(help="Fit a model and save it for 'anomaly scan behaviour --model FILE'.",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("behaviour")
def train_behaviour(
    model: Annotated[Path, typer.Option("--model", metavar="FILE", help="Where to write the model file.")],
    db: Annotated[Optional[str], typer.Option("--db", metavar="URL", help="Database URL; env ANOMALY_DB_URL.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Config file.")] = None,
    until: Annotated[Optional[str], typer.Option(
        "--until", metavar="WHEN", help="Fit on the transactions before this moment (default: now).")] = None,
    train_days: Annotated[int, typer.Option("--train-days", min=1, help="Days before --until to sample.")] = 28,
    history: Annotated[int, typer.Option(
        "--history", min=1, help="Days of history each sampled transaction is compared with.")] = 90,
    max_sample: Annotated[int, typer.Option("--max-sample", min=200, help="At most this many transactions.")] = 50_000,
    labels: Annotated[bool, typer.Option(
        "--labels", help="Use reviewers' labels (not implemented: refused, see the README).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Fit the behaviour check's Isolation Forest on the --train-days before --until and save it.

    The file holds the forest (skops format: no pickle), the feature list, the scikit-learn
    version, the data window, the risk cut-offs and the shop context; 'scan behaviour --model
    FILE' scores with it without refitting, and refuses a file from another version.
    """
    if labels:
        raise UsageError("--labels is not implemented: the model is unsupervised",
                         hint="labels are used by 'anomaly evaluate' to choose a threshold")
    from anomaly_cli import db as dbmod
    from anomaly_cli.config import load_settings
    from anomaly_cli.ml.model import save
    from anomaly_cli.ml.runner import MIN_TRAINING, Settings, train
    from anomaly_cli.timewindow import parse_moment

    settings = load_settings(flags={"db.url": db}, config_path=config)
    url = settings.database_url()
    now = datetime.now()
    before = parse_moment(until, "--until", now=now) if until else now.replace(microsecond=0)
    run = Settings(history=timedelta(days=history), train_span=timedelta(days=train_days), max_sample=max_sample)
    schema = settings.schema
    from anomaly_cli.checks.behaviour import BehaviourCheck

    with dbmod.connect(url, connect_timeout=settings["db.connect_timeout"]) as conn:
        dbmod.check_schema(conn, schema, BehaviourCheck.needs)
        fitted = train(conn, schema, before, run)
    if fitted is None:
        raise UsageError(f"too few transactions to fit in the {train_days} days before {before:%Y-%m-%d %H:%M} "
                         f"(at least {MIN_TRAINING})", hint="widen --train-days or move --until")
    try:
        file_id = save(fitted, model)
    except OSError as exc:
        from anomaly_cli.errors import OutputError

        raise OutputError(f"cannot write {model}: {exc.strerror or exc}") from None
    window = fitted.meta["data_window"]
    say(f"model {file_id} fitted on {fitted.meta['training_rows']} transactions "
         f"({window['since']} .. {window['until']}) written to {model}")


@app.command("evaluate")
def evaluate(
    check: Annotated[Optional[str], typer.Option("--check", help="Only this check.")] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", metavar="WHEN", help="Only alerts last seen at or after this moment (2025-09-12, 7d).")] = None,
    target: Annotated[float, typer.Option(
        "--target-precision", min=0.0, max=1.0, help="Precision the suggested score threshold must reach.")] = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of lines.")] = False,
    state: Annotated[Optional[str], typer.Option("--state", metavar="URL",
                                                 help="Alert state store; env ANOMALY_STATE.")] = None,
) -> None:
    """Precision of each check from the labels given with 'anomaly alerts label', with bounds.

    Unlabelled alerts are unknown: the bounds count them all false positives, then all fraud.
    For the behaviour check also the precision of the top-k alerts by score and the lowest
    score threshold reaching --target-precision, with the share of labelled fraud it keeps.
    """
    from anomaly_cli.config import load_settings
    from anomaly_cli.ml.evaluate import Labelled, lines, score_of
    from anomaly_cli.ml.evaluate import evaluate as run_evaluation
    from anomaly_cli.render.encode import dumps
    from anomaly_cli.state import AlertStore, default_state_url
    from anomaly_cli.timewindow import parse_moment

    settings = load_settings(flags={"state": state})
    cutoff = parse_moment(since, "--since", now=datetime.now()) if since else None
    with AlertStore(settings["state"] or default_state_url(settings.environ)) as store:
        records = store.list(check=check)
    chosen = [Labelled(r.check, r.label, score_of(r.message) if r.check == "behaviour" else None)
              for r in records if cutoff is None or _naive(r.last_seen) >= cutoff]
    results = run_evaluation(chosen, target)
    if as_json:
        print(dumps(results))
    elif not results:
        say("no alerts to evaluate" + (f" for {check}" if check else "") + " (scan with --new-only to record them)")
    else:
        for line in lines(results, target):
            print(line)


def _naive(moment: Any) -> datetime:
    # The store keeps UTC instants; --since is local time, like every other window.
    if moment.tzinfo is None:
        from datetime import timezone

        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone().replace(tzinfo=None)

