"""The check API and registry: every module in this package (and every installed plugin that
declares an `anomaly.checks` entry point) registers one check here by name.

A built-in check is named as its module, so one check is found without importing the others:
start-up time is import time, and `anomaly scan price` needs price's module only."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from anomaly_cli.errors import ConfigError
from anomaly_cli.model import CheckStats
from anomaly_cli.params import Param

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from anomaly_cli.config import SchemaMap
    from anomaly_cli.model import Finding, Window


@dataclass(frozen=True)
class Column:
    """How a finding field shows in the Rich table."""

    field: str
    header: str
    justify: str = "left"


@dataclass
class CheckContext:
    """What a check gets to run: one open (read-only) connection, resolved settings, and where
    to record what it judged (`stats`) and, when a report wants them, chart points (`charts`)."""

    conn: Connection
    schema: SchemaMap
    window: Window
    params: dict[str, Any]
    currency: str
    now: datetime
    stats: CheckStats = field(default_factory=CheckStats)
    charts: dict[str, list[dict[str, Any]]] | None = None

    @property
    def end(self) -> datetime:
        """Where judging stops: the window's end, never after now (an unfinished bucket is not judged)."""
        return self.now if self.window.until is None else min(self.window.until, self.now)

    def plot(self, series: str, **point: Any) -> None:
        """Keep one point of an aggregate the check measured anyway, if a report asked for charts."""
        if self.charts is not None:
            self.charts.setdefault(series, []).append(point)


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
    # Indexes on expressions, for one engine each: (dialect name, logical table, name parts,
    # builder(table) -> the indexed expressions). The query must spell each expression exactly
    # as the builder does, or the engine does not see that the index holds it.
    expression_indexes: ClassVar[tuple[tuple[str, str, tuple[str, ...], Any], ...]] = ()
    # What a model should write for one finding (the seed's sentence where it has one), and
    # what a person should look at first; both go into the prompt of the text writer.
    llm_target: ClassVar[str] = "one clear sentence naming what happened, when, and how much"
    llm_advice: ClassVar[str] = "the findings named"

    @classmethod
    def needs_for(cls, params: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        """The tables and columns read with these parameters (a check may read different sources)."""
        return cls.needs

    @classmethod
    def validate(cls, params: dict[str, Any]) -> None:
        """Refuse option combinations that cannot work (raise UsageError); each value is already valid."""

    @classmethod
    def fields_for(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """The finding fields with these parameters (a switch may add per-row findings)."""
        return cls.fields

    def run(self, ctx: CheckContext) -> Iterator[Finding]:
        """Stream the findings, in the check's order; record judged/skipped units on ctx.stats."""
        raise NotImplementedError


class DuplicateCheckError(ConfigError):
    """Two checks (built in or plugins) claim one name."""


class PluginError(ConfigError):
    """An installed check plugin cannot be loaded."""


_REGISTRY: dict[str, type[Check]] = {}
_DISCOVERED: set[str] = set()  # "builtin", "plugins": what has been imported


@functools.cache
def builtin_names() -> tuple[str, ...]:
    """The built-in checks' names, without importing them: a built-in check is named as its
    module (or package) here, so `anomaly scan price` imports price's module and no other."""
    return tuple(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: add a check under its name; a second check with that name is an error,
    and so is a plugin taking a built-in check's name (whether or not that one is imported yet)."""
    existing = _REGISTRY.get(cls.name)
    taken = existing.__module__ if existing is not None and existing is not cls else None
    if existing is None and not cls.__module__.startswith(f"{__name__}.") and cls.name in builtin_names():
        taken = f"{__name__}.{cls.name}"
    if taken is not None:
        raise DuplicateCheckError(f"check name {cls.name!r} is registered twice ({taken} and {cls.__module__})")
    _REGISTRY[cls.name] = cls
    return cls


ENTRY_POINT_GROUP = "anomaly.checks"


def _plugins_declared() -> bool:
    """Whether an installed distribution may declare an anomaly.checks entry point, read straight
    from the entry_points.txt files importlib.metadata would read (its import alone costs ~15 ms
    of a scan's start-up). Whatever this cannot rule out (a zip on sys.path, a finder of
    distributions other than the path finder) counts as yes, and importlib.metadata decides."""
    import os
    import sys
    from importlib.machinery import PathFinder

    if any(finder is not PathFinder and hasattr(finder, "find_distributions") for finder in sys.meta_path):
        return True
    for entry in sys.path:
        folder = entry or "."  # as importlib.metadata reads it: "" is the working directory
        try:
            with os.scandir(folder) as children:
                found = [c.name for c in children if c.name.lower().endswith((".dist-info", ".egg-info"))]
        except NotADirectoryError:
            return True  # a zip file: importlib.metadata looks inside it
        except OSError:
            continue  # missing or unreadable: importlib.metadata skips it too
        for name in found:
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), encoding="utf-8") as declared:
                    if ENTRY_POINT_GROUP in declared.read():
                        return True
            except UnicodeDecodeError:
                return True  # importlib.metadata says what is wrong with it
            except OSError:
                continue  # no entry points (or an egg-info file): nothing this group could come from
    return False


def _load_plugins() -> None:
    """Import every plugin's check (entry point group anomaly.checks), once.

    A plugin's entry point names a module (which registers with @register) or a Check class.
    When no distribution declares the group, importlib.metadata is not even imported.
    """
    if "plugins" in _DISCOVERED:
        return
    if not _plugins_declared():
        _DISCOVERED.add("plugins")
        return
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken plugin must not take the built-in checks down
            raise PluginError(f"check plugin {entry.name!r} ({entry.value}) cannot be loaded: "
                              f"{type(exc).__name__}: {exc}") from exc
        if isinstance(loaded, type) and issubclass(loaded, Check):
            register(loaded)
    _DISCOVERED.add("plugins")  # only when all loaded: a broken plugin is refused at every lookup


def find(name: str, *, plugins: bool = True) -> type[Check] | None:
    """The check called `name`, importing only its module, or None if there is none. With
    `plugins` (what runs a check wants), the plugins are loaded too, so that one taking a
    built-in name is refused; `scan price --help` can do without them."""
    if name in builtin_names():
        importlib.import_module(f"{__name__}.{name}")
    if plugins or name not in _REGISTRY:
        _load_plugins()
    return _REGISTRY.get(name)


def params_of(names: Iterable[str]) -> dict[str, tuple[Param, ...]]:
    """The thresholds of the named checks that exist, importing only their modules."""
    found = {name: find(name) for name in names}
    return {name: cls.params for name, cls in found.items() if cls is not None}


def names() -> list[str]:
    """Every check's name: the built-in ones without importing them, then the plugins' (loaded)."""
    _load_plugins()
    return list(dict.fromkeys([*builtin_names(), *_REGISTRY]))


def registry() -> dict[str, type[Check]]:
    """All checks by name, in `order` (every built-in module and plugin imported on first use)."""
    if "builtin" not in _DISCOVERED:
        for name in builtin_names():
            importlib.import_module(f"{__name__}.{name}")
        _DISCOVERED.add("builtin")
    _load_plugins()
    return {c.name: c for c in sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))}
