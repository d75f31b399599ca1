"""The check registry: every module in this package registers its check here by name."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from anomaly_cli.params import Param

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from anomaly_cli.config import SchemaMap
    from anomaly_cli.model import CheckResult, Finding, Window


@dataclass(frozen=True)
class Column:
    """How a finding field shows in the Rich table."""

    field: str
    header: str
    justify: str = "left"


@dataclass
class CheckContext:
    """What a check gets to run: one open (read-only) connection and resolved settings."""

    conn: Connection
    schema: SchemaMap
    window: Window
    params: dict[str, Any]
    currency: str
    now: datetime
    limit: int | None = None

    @property
    def end(self) -> datetime:
        """Where judging stops: the window's end, never after now (an unfinished bucket is not judged)."""
        return self.now if self.window.until is None else min(self.window.until, self.now)


class Check:
    """Base of every check. The subclass docstring is its `--help` text.

    A check measures in SQL (`run` streams what the database flagged or aggregated)
    and judges in pure Python on that small data, so judging is testable without a database.
    """

    name: ClassVar[str]
    order: ClassVar[int] = 100  # position in `scan all` and in listings
    params: ClassVar[tuple[Param, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ()  # the finding fields, in the JSON/CSV order
    columns: ClassVar[tuple[Column, ...]] = ()  # what the Rich table shows besides severity
    totals: ClassVar[tuple[str, ...]] = ()  # money fields summed in the summary and footer
    # Logical tables and columns the check reads, verified before it runs.
    needs: ClassVar[dict[str, tuple[str, ...]]] = {}
    # An optional check reads tables a shop database may not have (per-minute status counts,
    # hourly checkout counts): `scan all` skips it, with a note, when they are missing.
    optional: ClassVar[bool] = False
    # Indexes that make the check's SQL fast: (logical table, logical columns) pairs,
    # printed by `anomaly db indexes`.
    indexes: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = ()

    @classmethod
    def needs_for(cls, params: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        """The tables and columns read with these parameters (a check may read different sources)."""
        return cls.needs

    @classmethod
    def validate(cls, params: dict[str, Any]) -> None:
        """Refuse option combinations that cannot work (raise UsageError); each value is already valid."""

    def run(self, ctx: CheckContext) -> CheckResult:
        raise NotImplementedError

    def result(
        self,
        ctx: CheckContext,
        findings: Iterator[Finding],
        notes: dict[str, Any] | None = None,
        totals: dict[str, Any] | None = None,
    ) -> CheckResult:
        from anomaly_cli.model import CheckResult

        return CheckResult(
            check=self.name,
            params=dict(ctx.params),
            findings=findings,
            fields=self.fields,
            columns=self.columns,
            notes=notes if notes is not None else {},
            limit=ctx.limit,
            totals=totals if totals is not None else {},
        )


class DuplicateCheckError(Exception):
    pass


_REGISTRY: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: add a check under its name; a second check with that name is an error."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise DuplicateCheckError(
            f"check name {cls.name!r} is registered twice ({existing.__module__} and {cls.__module__})"
        )
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def registry() -> dict[str, type[Check]]:
    """All checks by name, in registration order (modules imported on first use)."""
    if not _REGISTRY:
        _discover()
    return {c.name: c for c in sorted(_REGISTRY.values(), key=lambda c: c.order)}

