"""Typed setting declarations shared by the configuration and the checks' own thresholds."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Numbers without a declared maximum are still bounded: a threshold of 1e308 or a count of
# 10^20 is a typo, and it would overflow a date, a timedelta or a BIGINT far from the flag
# that caused it (OverflowError, an engine error: exit 3 instead of a usage error naming it).
DEFAULT_MAXIMUM = 1_000_000


def parse_bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def parse_identifier(text: Any) -> str:
    if not isinstance(text, str) or not IDENTIFIER.match(text):
        raise ValueError(
            f"{text!r} is not a valid table or column name "
            "(letters, digits and _, not starting with a digit, at most 64 characters)"
        )
    return text


def parse_text(text: Any) -> str:
    if not isinstance(text, str) or not text or any(ord(c) < 32 for c in text):
        raise ValueError("must be a non-empty string without control characters")
    return text


DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# One grammar for every duration (--since 90s, --cooldown 1h30m, cooldown = "4h"): whole numbers,
# each with a unit, largest first. A bare number is refused: is `--cooldown 30` minutes or hours?
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DURATION_HINT = "use a number with a unit: 90s, 30m, 4h, 1d, 2w or 1h30m"


def parse_duration(text: Any) -> timedelta:
    """'90s', '30m', '4h', '1d', '2w', '1h30m'; ValueError for a bare number or anything else."""
    if isinstance(text, timedelta):
        return text
    raw = str(text).strip().lower().replace(" ", "")
    match = _DURATION.match(raw)
    if not raw or match is None or not any(match.groups()):
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            raise ValueError(f"{text!r} has no unit ({DURATION_HINT})")
        raise ValueError(f"{text!r} is not a duration ({DURATION_HINT})")
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    try:
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def parse_seconds(text: Any) -> float:
    """A timeout: a number of seconds (the unit is in the option's name) or a duration ('2m')."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    elif re.fullmatch(r"\s*\d+(\.\d+)?\s*", str(text)):
        value = float(str(text))
    else:
        value = parse_duration(text).total_seconds()
    if not 0 < value <= 3600:
        raise ValueError(f"must be more than 0 and at most 3600 seconds, got {text}")
    return value


@dataclass(frozen=True)
class Param:
    """One setting: a config key, an ANOMALY_* variable and (for checks) a --flag.

    `kind` is int, float, Decimal, str, bool or an Enum class; `minimum`/`exclusive_minimum`
    bound numbers so that a negative threshold is refused with the key's name, and `maximum`
    (DEFAULT_MAXIMUM unless declared) so that an absurd one is.
    """

    name: str
    default: Any
    help: str
    kind: type = float
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    parse_fn: Callable[[Any], Any] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: Any) -> Any:
        """Coerce a raw value (string from the environment, TOML value, flag value)."""
        if self.parse_fn is not None:
            return self.parse_fn(raw)
        kind = self.kind
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            if isinstance(raw, kind):
                return raw
            try:
                return kind(str(raw).strip().lower())
            except ValueError:
                choices = ", ".join(str(m.value) for m in kind)
                raise ValueError(f"{raw!r} is not one of {choices}") from None
        if kind is bool:
            return parse_bool(raw)
        if kind is str:
            return parse_text(raw)
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not a number")
        try:
            if kind is int:
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                value: Any = int(str(raw).strip()) if not isinstance(raw, (int, float)) else int(raw)
            elif kind is Decimal:
                value = Decimal(str(raw).strip())
                if not value.is_finite():
                    raise ValueError
            else:
                value = float(raw)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError
        except (ValueError, TypeError, InvalidOperation, OverflowError):
            raise ValueError(f"{_short(raw)!r} is not {'a whole number' if kind is int else 'a number'}") from None
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}, got {_short(raw)}")
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            raise ValueError(f"must be greater than {self.exclusive_minimum:g}, got {_short(raw)}")
        maximum = self.maximum if self.maximum is not None else DEFAULT_MAXIMUM
        if value > maximum or value < -DEFAULT_MAXIMUM:
            limit = f"at most {maximum:g}" if value > maximum else f"at least {-DEFAULT_MAXIMUM:g}"
            raise ValueError(f"must be {limit}, got {_short(raw)}")
        return value


def _short(raw: Any) -> str:
    """A value as the user gave it, cut to fit one error line (a flag may hold 10,000 digits)."""
    text = str(raw)
    return text if len(text) <= 40 else text[:37] + "..."
