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


def merged_needs(checks: Sequence[type[Check]]) -> dict[str, tuple[str, ...]]:
    needs: dict[str, list[str]] = {}
    for cls in checks:
        for table, columns in cls.needs.items():
            bucket = needs.setdefault(table, [])
            bucket.extend(c for c in columns if c not in bucket)
    return {table: tuple(columns) for table, columns in needs.items()}


@contextmanager
def run_checks(
    settings: Settings,
    checks: Sequence[type[Check]],
    window: Window,
    *,
    limit: int | None = None,
    now: datetime | None = None,
) -> Iterator[Report]:
    """Yield a Report whose findings stream from the database while the block runs."""
    from anomaly_cli import db

    url = database_url(settings)
    params = resolve_params(settings, checks)
    schema = settings.schema
    with db.connect(url, connect_timeout=settings["db.connect_timeout"]) as conn:
        db.check_schema(conn, schema, merged_needs(checks))
        moment = now or datetime.now()
        results = [
            cls().run(CheckContext(conn=conn, schema=schema, window=window, params=params[cls.name],
                                   currency=settings["currency"], now=moment, limit=limit))
            for cls in checks
        ]
        yield Report(window=window, generated_at=datetime.now(timezone.utc), results=results)
