"""Domain exceptions: raised where things fail, turned into one line and an exit code in cli.py."""

from __future__ import annotations


class AnomalyError(Exception):
    """Base of every error the tool reports to its user (never with a traceback).

    `hint` is the second half of the one-line message: what to do about it.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(AnomalyError):
    """An option value that cannot work (bad date, negative threshold, since after until)."""


class ConfigError(UsageError):
    """A bad configuration file, environment variable or mapping key."""


class DatabaseError(AnomalyError):
    """The database could not be reached or a query failed."""


class SchemaError(DatabaseError):
    """A mapped table or column does not exist in the audited database."""


class DataError(AnomalyError):
    """An input file's data cannot be used (a bad row of a file to load): exit 3, with file:line."""


class OutputError(AnomalyError):
    """The output file cannot be written."""


class OutputClosed(OutputError):
    """The reader of the output went away (`anomaly ... | head`): the run stops quietly."""


class NotifyError(AnomalyError):
    """A notification could not be delivered (after its retries): the run's alerts stay unclaimed."""
