"""Option values without Pydantic, for start-up time.

Typer (0.29) coerces every option's value through a Pydantic TypeAdapter, built the first time
the option is processed: every command, even `--help` of a subcommand, pays for importing
pydantic and for one schema per option, about a third of `anomaly scan price` on a tiny database.
This CLI's options are plain: text, paths, enums (case-insensitive choices), lists of text,
switches. Those are coerced here the way Typer does it, with Typer's own helpers; any other
annotation, and every value refused here, goes to Typer's coercion, so that what is accepted and
every error message stay Typer's. Should Typer's internals change, commands keep Typer's coercion.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

try:
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_choice, coerce_cli_path
    from typer.core import _TyperParameter
except ImportError:  # another Typer: its own coercion, only slower to start
    RuntimeParam = None  # type: ignore[assignment,misc]

_TYPER = object()  # "not a plain value: let Typer coerce it"


def _plain(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    """`value` coerced as Typer would, or _TYPER when Typer should do it."""
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return _TYPER
    if get_origin(annotation) is list and isinstance(value, (list, tuple)):
        (item_type,) = get_args(annotation) or (None,)
        items = [_plain(item_type, info, item, param, ctx) for item in value]
        return _TYPER if _TYPER in items else items
    if annotation is bool:
        return value if isinstance(value, bool) else _TYPER
    if not isinstance(value, str):
        return _TYPER
    if annotation is str:
        return value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return coerce_cli_choice(value, choices=tuple(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
        except ValueError:
            return _TYPER
    if isinstance(annotation, type) and issubclass(annotation, Path) and value and info.path_type is None:
        # Typer turns the text into the Path first (with Pydantic), then checks it: given a Path,
        # its helper does only the checks.
        return coerce_cli_path(annotation(value), info, path_type=annotation, param=param, ctx=ctx)
    return _TYPER


if RuntimeParam is not None:
    @dataclass(frozen=True)
    class _PlainParam(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            coerced = _plain(self.annotation, self.parameter_info, value, param, ctx)
            if coerced is not _TYPER:
                return coerced
            param._runtime_param = typer_own = build_runtime_param(param.type_descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)


def without_pydantic(command: Any) -> Any:
    """`command` (and the subcommands it holds) coercing plain option values without Pydantic.

    Applied when its parameters are asked for: that list also holds the ones Click and Typer add
    late (the help option, made per context; the completion options of the top command)."""
    if RuntimeParam is None:
        return command
    typer_params = command.get_params

    def get_params(ctx: Any) -> list[Any]:
        params = typer_params(ctx)
        for param in params:
            if isinstance(param, _TyperParameter) and getattr(param, "_runtime_param", _TYPER) is None:
                descriptor = param.type_descriptor
                param._runtime_param = _PlainParam(parameter_info=descriptor.parameter_info,
                                                   annotation=descriptor.annotation)
        return params

    command.get_params = get_params
    for sub in getattr(command, "commands", {}).values():
        without_pydantic(sub)
    return command
