"""Running checks: one read-only connection, schema verified first, results streamed to the caller."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

from anomaly_cli.checks import Check, CheckContext
from anomaly_cli.config import Settings
from anomaly_cli.errors import ConfigError
from anomaly_cli.model import Report, Window


def database_url(settings: Settings):  # type: ignore[no-untyped-def]
    """The parsed URL to audit, or a ConfigError saying how to give one."""
    from anomaly_cli.db import parse_url

    text = settings["db.url"]
    if not text:
        raise ConfigError("no database given",
                          hint="pass --db URL, set ANOMALY_DB_URL, or set MYSQL_HOST/MYSQL_DB as the seed did")
    return parse_url(text)


def resolve_params(settings: Settings, checks: Sequence[type[Check]]) -> dict[str, dict]:
    """Each check's parameters, after the check has refused impossible combinations."""
    params = {}
    for cls in checks:
        params[cls.name] = settings.check_params(cls.name, cls.params)
        cls.validate(params[cls.name])
    return params


@contextmanager
def run_checks(
    settings: Settings,
    checks: Sequence[type[Check]],
    window: Window,
    *,
    limit: int | None = None,
    now: datetime | None = None,
    skip_unavailable: bool = False,
) -> Iterator[Report]:
    """Yield a Report whose findings stream from the database while the block runs.

    Every check's tables and columns are verified first. With `skip_unavailable` (scan all),
    an optional check whose tables are missing is left out and named in `report.skipped`.
    """
    from anomaly_cli import db
    from anomaly_cli.errors import SchemaError

    url = database_url(settings)
    params = resolve_params(settings, checks)
    schema = settings.schema
    with db.connect(url, connect_timeout=settings["db.connect_timeout"]) as conn:
        runnable, skipped = [], {}
        for cls in checks:
            try:
                db.check_schema(conn, schema, cls.needs_for(params[cls.name]))
            except SchemaError as exc:
                if not (skip_unavailable and cls.optional):
                    raise
                skipped[cls.name] = str(exc)
                continue
            runnable.append(cls)
        moment = now or datetime.now()
        results = [
            cls().run(CheckContext(conn=conn, schema=schema, window=window, params=params[cls.name],
                                   currency=settings["currency"], now=moment, limit=limit))
            for cls in runnable
        ]
        yield Report(window=window, generated_at=datetime.now(timezone.utc), results=results, skipped=skipped)
