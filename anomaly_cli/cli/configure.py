"""`anomaly config show|init`: the resolved settings and where each came from; a starter file."""

from __future__ import annotations

import enum
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from anomaly_cli.cli.apps import config_app, say
from anomaly_cli.errors import UsageError


def _shown(key: str, value: Any) -> Any:
    """A value fit to print: secrets masked, URLs without their password."""
    from anomaly_cli.config import SECRET_KEYS

    if value is None:
        return None
    if key in SECRET_KEYS:
        return "***"
    if key in ("db.url", "state"):
        from anomaly_cli.db import mask_url

        return mask_url(str(value))
    return _toml_value(value)


def _toml_value(value: Any) -> Any:
    if isinstance(value, timedelta):
        return _duration_text(value)
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _duration_text(value: timedelta) -> str:
    """4h, 1h30m, 90s: the duration grammar's own spelling."""
    seconds, text = int(value.total_seconds()), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            text += f"{seconds // size}{unit}"
            seconds %= size
    return text or "0s"


def _literal(value: Any) -> str:
    """A value as TOML."""
    value = _toml_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@config_app.command("show")
def config_show(
    config: Annotated[Optional[Path], typer.Option("--config", metavar="FILE", help="Config file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: key -> {value, from}.")] = False,
    all_keys: Annotated[bool, typer.Option("--all", help="Also the schema mapping keys left at their defaults.")]
    = False,
) -> None:
    """The resolved settings (flag > ANOMALY_* variable > config file > default) and where each came from.

    The config file is the first of --config, ANOMALY_CONFIG, ./anomaly.toml, [tool.anomaly] in
    ./pyproject.toml and the user's config file. API keys are shown as *** and URLs without passwords.
    """
    from anomaly_cli.config import load_settings
    from anomaly_cli.config_sources import user_config_file
    from anomaly_cli.render.encode import dumps

    settings = load_settings(flags={}, config_path=config)
    rows = [(key, _shown(key, value), settings.origin(key)) for key, value in settings.values.items()
            if all_keys or not key.startswith("schema.") or settings.origin(key) != "default"]
    if as_json:
        print(dumps({key: {"value": value, "from": origin} for key, value, origin in rows}))
        return
    print(f"# config file: {settings.config_file or 'none'} (user file: {user_config_file(settings.environ)})")
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        shown = "(not set)" if value is None else _literal(value)
        print(f"{key:<{width}} = {shown}  # {origin}")


def starter_file() -> str:
    """A commented anomaly.toml: every general setting and check threshold at its default."""
    from anomaly_cli.config import declared_params

    lines = [
        "# anomaly configuration. Precedence: command-line flag > ANOMALY_* variable > this file > default.",
        "# Every setting is shown commented out at its default: uncomment a line to change it.",
        "# Durations: 90s, 30m, 4h, 1d, 1h30m. See `anomaly config show` for the resolved values.",
        "",
    ]
    sections: dict[str, list[str]] = {}
    for key, param in declared_params().items():
        if key.startswith("schema."):
            continue
        section, _, name = key.rpartition(".")
        if param.default is None:
            entry = f"# {name}: not set ({param.help})"
        else:
            entry = f"# {name} = {_literal(param.default)}  # {param.help}"
        sections.setdefault(section, []).append(entry)
    lines.extend(sections.pop("", []))  # top-level keys must come before any [table]
    for section, entries in sections.items():
        if section:
            lines.append(f"\n[{section}]")
        lines.extend(entries)
    lines += [
        "",
        "# Your own table and column names (defaults: the seed schema's), e.g.:",
        "# [schema.transactions]",
        '# table = "orders"',
        '# transaction_date = "created_at"',
        "",
    ]
    return "\n".join(lines)


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write it.")] = Path("anomaly.toml"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a commented starter anomaly.toml with every setting at its default."""
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to replace it")
    try:
        path.write_text(starter_file(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    say(f"wrote {path}; edit it, then check with 'anomaly config show'")
