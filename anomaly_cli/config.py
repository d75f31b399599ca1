"""Settings from flags, ANOMALY_* variables, anomaly.toml and defaults, in that order of precedence."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from anomaly_cli.config_sources import discover_config, read_config_file, read_environment, seed_mysql_url
from anomaly_cli.errors import ConfigError
from anomaly_cli.exit_codes import FailOn
from anomaly_cli.params import Param, parse_duration, parse_identifier, parse_seconds, parse_text
from anomaly_cli.render import OutputFormat
from anomaly_cli.seed_schema import TABLES
from anomaly_cli.summarize_mode import SummarizeMode

# Keys whose values never appear in full: `config show` masks them.
SECRET_KEYS = ("llm.api_key",)

# The seed schema: logical table -> logical columns. Every name is a config key
# `schema.<table>.table` / `schema.<table>.<column>` whose default is the logical name.
SEED_SCHEMA: dict[str, tuple[str, ...]] = {table: tuple(columns) for table, columns in TABLES.items()}

# Tables a check may read without needing: when the database lacks one, it reads as empty
# (a shop without a customers table still has its price, spam and failed checks, without names).
OPTIONAL_TABLES = ("customers",)

# Status values are data, not identifiers: they are bound as parameters.
STATUS_KEYS = {
    "schema.transactions.success_status": "SUCCESS",
    "schema.transactions.failed_status": "FAILED",
}


def _general_params() -> list[tuple[str, Param]]:
    return [
        ("db.url", Param("url", None, "SQLAlchemy database URL", kind=str)),
        ("db.connect_timeout", Param("connect_timeout", 10, "seconds to wait for a connection",
                                     kind=int, exclusive_minimum=0, maximum=3600)),
        # Long enough for a 100M-row scan's slowest statement (README, Scale), short enough that a
        # stalled server cannot hold a cron run for ever; 0 turns it off.
        ("db.statement_timeout", Param("statement_timeout", 1800, "seconds one query may take (0: no limit)",
                                       kind=int, minimum=0, maximum=86400)),
        ("db.schema", Param("schema", None, "database schema (namespace) holding the tables",
                            parse_fn=parse_identifier)),
        ("currency", Param("currency", "₹", "currency symbol used in plain-English lines", kind=str)),
        ("format", Param("format", None, "output format", kind=OutputFormat)),
        ("fail_on", Param("fail_on", FailOn.LOW, "exit 1 at or above this severity", kind=FailOn)),
        ("fail_on_not_evaluated", Param("fail_on_not_evaluated", False,
                                        "exit 1 when a check could not judge anything", kind=bool)),
        ("state", Param("state", None, "alert state store URL (never the audited database)", kind=str)),
        ("cooldown", Param("cooldown", timedelta(hours=4), "quiet period of a reported alert",
                           parse_fn=parse_duration)),
        ("summarize", Param("summarize", SummarizeMode.AUTO, "who writes the plain-English lines",
                            kind=SummarizeMode)),
        ("brief", Param("brief", False, "add an executive summary per check", kind=bool)),
        ("llm.base_url", Param("base_url", None, "OpenAI-compatible endpoint", kind=str)),
        ("llm.model", Param("model", None, "model name", kind=str)),
        ("llm.api_key", Param("api_key", None, "API key", kind=str)),
        ("llm.timeout", Param("timeout", 30.0, "seconds per request (or a duration: 2m)",
                              parse_fn=parse_seconds)),
        ("llm.max_retries", Param("max_retries", 2, "retries of a failed request", kind=int, minimum=0)),
        ("llm.chunk_size", Param("chunk_size", 20, "findings per request", kind=int, minimum=1)),
        ("llm.max_findings", Param("max_findings", 100, "findings sent to the model at most", kind=int,
                                   minimum=0)),
        ("llm.send_personal_data", Param("send_personal_data", False, "send names, e-mails, phones",
                                         kind=bool)),
    ]


def _schema_params() -> list[tuple[str, Param]]:
    out = []
    for table, columns in SEED_SCHEMA.items():
        out.append((f"schema.{table}.table", Param("table", table, f"name of the {table} table",
                                                    parse_fn=parse_identifier)))
        for column in columns:
            out.append((f"schema.{table}.{column}",
                        Param(column, column, f"column {table}.{column}", parse_fn=parse_identifier)))
    for key, default in STATUS_KEYS.items():
        out.append((key, Param(key.rsplit(".", 1)[1], default, "status value", parse_fn=parse_text)))
    return out


def env_name(key: str) -> str:
    """`db.url` -> ANOMALY_DB_URL, `price.below` -> ANOMALY_PRICE_BELOW."""
    return "ANOMALY_" + key.replace(".", "_").upper()


@dataclass(frozen=True)
class TableMap:
    """A logical table of the seed schema mapped onto the audited database's names."""

    key: str
    name: str
    columns: Mapping[str, str]

    def config_key(self, logical_column: str | None = None) -> str:
        return f"schema.{self.key}.{logical_column or 'table'}"


@dataclass(frozen=True)
class SchemaMap:
    db_schema: str | None
    tables: Mapping[str, TableMap]
    success_status: str
    failed_status: str
    # Optional tables the audited database lacks (customers: names are a nicety): read as empty.
    absent: frozenset[str] = frozenset()

    def __getitem__(self, key: str) -> TableMap:
        return self.tables[key]


@dataclass(frozen=True)
class Settings:
    """Resolved, typed settings, each remembering where it came from (for error messages)."""

    values: Mapping[str, Any]
    origins: Mapping[str, str]
    config_file: Path | None
    environ: Mapping[str, str]
    warnings: tuple[str, ...] = ()  # for stderr, unless --quiet (a bad line in .env)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def origin(self, key: str) -> str:
        return self.origins.get(key, "default")

    @property
    def schema(self) -> SchemaMap:
        tables = {
            table: TableMap(
                key=table,
                name=self.values[f"schema.{table}.table"],
                columns={c: self.values[f"schema.{table}.{c}"] for c in columns},
            )
            for table, columns in SEED_SCHEMA.items()
        }
        return SchemaMap(
            db_schema=self.values["db.schema"],
            tables=tables,
            success_status=self.values["schema.transactions.success_status"],
            failed_status=self.values["schema.transactions.failed_status"],
        )

    def database_url(self) -> Any:
        """The parsed URL to audit (sqlalchemy URL), or a ConfigError saying how to give one."""
        from anomaly_cli.db import parse_url

        if not self.values["db.url"]:
            raise ConfigError("no database given",
                              hint="pass --db URL, set ANOMALY_DB_URL, or set MYSQL_HOST/MYSQL_DB as the seed did")
        return parse_url(self.values["db.url"])

    def check_params(self, check: str, params: Iterable[Param]) -> dict[str, Any]:
        return {p.name: self.values[f"{check}.{p.name}"] for p in params}


def default_schema() -> SchemaMap:
    """The seed schema's own names (the demo database uses them)."""
    values = {key: param.default for key, param in _general_params() + _schema_params()}
    return Settings(values=values, origins={}, config_file=None, environ={}).schema


def declared_params(check_params: Mapping[str, Iterable[Param]] | None = None) -> dict[str, Param]:
    """Every key a setting can have: general, schema, and each check's thresholds (default: all
    registered checks)."""
    if check_params is None:
        from anomaly_cli.checks import registry

        check_params = {name: cls.params for name, cls in registry().items()}
    from anomaly_cli.notify import settings_params as notify_params

    declared: dict[str, Param] = dict(_general_params() + _schema_params() + notify_params())
    declared.update(_thresholds(check_params))
    return declared


def _thresholds(check_params: Mapping[str, Iterable[Param]]) -> dict[str, Param]:
    return {f"{check}.{param.name}": param for check, params in check_params.items() for param in params}


def _unknown_key(key: str, where: str, declared: Mapping[str, Param]) -> None:
    import difflib

    close = difflib.get_close_matches(key, list(declared), n=1)
    raise ConfigError(f"unknown key '{key}' in {where}",
                      hint=f"did you mean '{close[0]}'?" if close else "see 'anomaly config show' for the keys")


def load_settings(
    *,
    flags: Mapping[str, Any],
    check_params: Mapping[str, Iterable[Param]] | None = None,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    checks: Iterable[str] | None = None,
) -> Settings:
    """Resolve every known key: flag > environment > config file > default.

    `flags` holds only the options the user actually gave (None means not given).
    `check_params` defaults to every registered check's thresholds, so that one file (or
    environment) serves every command. Unknown keys in the config file are refused, with the
    closest known key, so that a typo does not pass silently.

    `checks` (instead of `check_params`): only these checks' thresholds, and those of the checks
    the flags, the environment or the file name; the other checks' modules are not imported.
    """
    cwd = cwd or Path.cwd()
    env, warnings = read_environment(cwd, os.environ if environ is None else environ)

    lazy = check_params is None and checks is not None
    if lazy:
        from anomaly_cli.checks import names, params_of

        in_env = [n for n in names() if any(v.startswith(env_name(n) + "_") for v in env)]
        check_params = params_of([*(checks or ()), *in_env])
    declared = declared_params(check_params)

    def refuse_unknown(key: str, where: str) -> None:
        if lazy and key not in declared:  # a key of another check: declare that check's thresholds
            declared.update(_thresholds(params_of([key.partition(".")[0]])))
        if key not in declared:
            _unknown_key(key, where, declared_params() | declared if lazy else declared)

    from anomaly_cli.notify import DESTINATIONS, destination_param

    if config_path is None and env.get("ANOMALY_CONFIG"):
        config_path = Path(env["ANOMALY_CONFIG"])
    if config_path is None:
        config_path = discover_config(cwd, env)
    for key, value in flags.items():
        if value is not None:
            refuse_unknown(key, "--set")
    file_values = read_config_file(config_path) if config_path is not None else {}
    # [notify.destinations] names are the user's own: each becomes a key of its own, from the
    # file or from ANOMALY_NOTIFY_DESTINATIONS_<NAME> (tokens kept out of the file).
    named = [k for k in file_values if k.startswith(DESTINATIONS) and k.count(".") == 2]
    prefix = env_name(DESTINATIONS)
    named += [DESTINATIONS + v.removeprefix(prefix).lower() for v in env if v.startswith(prefix) and len(v) > len(prefix)]
    for key in named:
        declared[key] = destination_param(key)
    for key in file_values:
        refuse_unknown(key, str(config_path))

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, param in declared.items():
        candidates = (
            (flags.get(key), "the command line"),
            (env.get(env_name(key)), env_name(key)),
            (file_values.get(key), str(config_path)),
        )
        raw, origin = next(((v, o) for v, o in candidates if v is not None), (param.default, "default"))
        if raw is not None and origin != "default":
            try:
                raw = param.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"bad value for {key} (from {origin}): {exc}") from None
        values[key] = raw
        origins[key] = origin

    # The names other tools use for the same things: OpenAI's, and the seed's AI_API_KEY.
    for key, fallbacks in (("llm.api_key", ("OPENAI_API_KEY", "AI_API_KEY")), ("llm.base_url", ("OPENAI_BASE_URL",))):
        if values[key] is None:
            found = next((name for name in fallbacks if env.get(name)), None)
            if found is not None:
                values[key], origins[key] = env[found], found
    if values["db.url"] is None:
        seed_url = seed_mysql_url(env)
        if seed_url is not None:
            values["db.url"], origins["db.url"] = seed_url, "MYSQL_* variables"
    return Settings(values=values, origins=origins, config_file=config_path, environ=env,
                    warnings=tuple(warnings))

