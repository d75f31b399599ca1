"""Where settings come from: the config file (found, read and flattened), the environment with
a `.env` file, and the seed's MYSQL_* variables. config.py decides what they mean."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anomaly_cli.errors import ConfigError

DEFAULT_CONFIG_FILE = "anomaly.toml"
PYPROJECT = "pyproject.toml"
APP_NAME = "anomaly"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flatten(value, key + "."))
        else:
            out[key] = value
    return out


MAX_SETTINGS_FILE = 1 << 20  # a config or .env file is a few kilobytes; /dev/zero is not


def _read_text(path: Path, what: str) -> str:
    """A settings file as text, at most MAX_SETTINGS_FILE bytes (a device or a huge file is refused)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SETTINGS_FILE + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SETTINGS_FILE:
        raise ConfigError(f"{what} {path} is larger than {MAX_SETTINGS_FILE // 1024} KiB", hint="is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """The keys of a TOML file; of a pyproject.toml, those of its [tool.anomaly] table."""
    import tomllib  # here: most runs have no config file

    text = _read_text(path, "config file")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if path.name == PYPROJECT:
        section = document.get("tool", {}).get("anomaly", {})
        if not isinstance(section, dict):
            raise ConfigError(f"[tool.anomaly] in {path} is not a table")
        return _flatten(section)
    return _flatten(document)


def read_environment(cwd: Path, environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The process environment over a `.env` file in the working directory (the seed's way),
    and a warning per line of the file that is not KEY=VALUE (ignored, as dotenv does)."""
    dotenv = cwd / ".env"
    merged: dict[str, str] = {}
    warnings: list[str] = []
    if dotenv.is_file():
        import io
        import logging

        from dotenv import dotenv_values
        from dotenv.parser import parse_stream

        text = _read_text(dotenv, "file")
        warnings = [f"{dotenv}: line {b.original.line} is not KEY=VALUE; ignored"
                    for b in parse_stream(io.StringIO(text)) if b.error]
        logger = logging.getLogger("dotenv.main")
        quiet, logger.disabled = logger.disabled, True  # its warnings are ours, above, with the file name
        try:
            merged.update({k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None})
        finally:
            logger.disabled = quiet
    merged.update(environ)
    return merged, warnings


def seed_mysql_url(env: Mapping[str, str]) -> str | None:
    """The seed's MYSQL_HOST/USER/PASSWORD/DB variables, as a pymysql URL."""
    if not (env.get("MYSQL_HOST") or env.get("MYSQL_DB")):
        return None
    from sqlalchemy.engine import URL

    host, colon, port = env.get("MYSQL_HOST", "localhost").partition(":")
    if colon and not (port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(f"MYSQL_HOST has an invalid port {port!r}", hint="expected HOST or HOST:PORT")
    url = URL.create(
        "mysql+pymysql",
        username=env.get("MYSQL_USER") or None,
        password=env.get("MYSQL_PASSWORD") or None,
        host=host or "localhost",
        port=int(port) if port.isdigit() else None,
        database=env.get("MYSQL_DB") or None,
    )
    return url.render_as_string(hide_password=False)


def user_config_file(env: Mapping[str, str] | None = None) -> Path:
    """The per-user file: anomaly.toml in the platform's config directory (~/.config/anomaly on
    Linux, honouring XDG_CONFIG_HOME)."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):  # read from `env`, so that tests and callers can point it elsewhere
        return Path(xdg) / APP_NAME / DEFAULT_CONFIG_FILE
    if sys.platform == "linux" and not (xdg or os.environ.get("XDG_CONFIG_HOME", "")).strip():  # as platformdirs
        return Path(os.path.expanduser("~/.config")) / APP_NAME / DEFAULT_CONFIG_FILE
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME)) / DEFAULT_CONFIG_FILE


def discover_config(cwd: Path, env: Mapping[str, str]) -> Path | None:
    """The first of ./anomaly.toml, ./pyproject.toml with a [tool.anomaly] table, and the user's
    config file; None when there is none (built-in defaults)."""
    local = cwd / DEFAULT_CONFIG_FILE
    if local.is_file():
        return local
    pyproject = cwd / PYPROJECT
    if pyproject.is_file():
        import tomllib

        try:
            with pyproject.open("rb") as fh:
                if isinstance(tomllib.load(fh).get("tool", {}).get("anomaly"), dict):
                    return pyproject
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            pass  # someone else's pyproject.toml: not ours to complain about
    user = user_config_file(env)
    return user if user.is_file() else None
