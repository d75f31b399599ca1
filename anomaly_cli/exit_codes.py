"""Exit codes as a named enum, and the pure functions that choose one."""

from __future__ import annotations

import enum

from anomaly_cli.errors import UsageError
from anomaly_cli.model import Severity


class ExitCode(enum.IntEnum):
    OK = 0  # audit completed; nothing at or above --fail-on
    FINDINGS = 1  # audit completed; at least one finding at or above --fail-on
    USAGE = 2  # invalid invocation or configuration
    RUNTIME = 3  # the audit could not be completed


class FailOn(enum.StrEnum):
    """The --fail-on threshold: a severity, or never."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"
    NEVER = "never"


def exit_code_for(worst: Severity | None, fail_on: FailOn) -> ExitCode:
    """The exit code of a completed audit whose most severe finding is `worst`."""
    if worst is None or fail_on is FailOn.NEVER:
        return ExitCode.OK
    return ExitCode.FINDINGS if worst >= Severity.parse(fail_on.value) else ExitCode.OK


def exit_code_for_error(error: BaseException) -> ExitCode:
    """The exit code of an audit that stopped on `error`."""
    # Anything unexpected is a runtime failure too: the audit did not complete.
    return ExitCode.USAGE if isinstance(error, UsageError) else ExitCode.RUNTIME
