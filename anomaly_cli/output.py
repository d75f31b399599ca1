"""Where output goes: atomic files (a cron job finds a complete file or none), and streams whose
write failures (a full disk, a file-size limit, a closed pipe, an encoding that cannot show ₹)
end the scan with one line naming the destination instead of a raw exception."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from anomaly_cli.errors import OutputClosed, OutputError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


@contextmanager
def atomic_writer(path: Path) -> Iterator[TextIO]:
    """Write to a temporary file beside `path`, renamed over it only if the block succeeds.

    The temporary file is created before anything runs, so an unwritable destination
    fails at once instead of after a long scan.
    """
    if path.is_dir():
        raise UsageError(f"--output {path} is a directory")
    # A device or a pipe, possibly behind a link (/dev/stdout -> /proc/self/fd/1 -> pipe:[123],
    # which resolves to no path at all): nothing to replace, write straight to it.
    if path.exists() and not path.is_file():
        pass
    elif path.is_symlink():
        path = path.resolve()  # replace the file the link points to, not the link
    if path.exists() and not path.is_file():
        # A device or a pipe (/dev/null, /dev/stdout): nothing to replace, write straight to it.
        try:
            with path.open("w", encoding="utf-8", newline="") as raw:
                stream = GuardedStream(raw, str(path))
                yield stream  # type: ignore[misc]
                stream.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        return
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}",
                          hint="check that the directory exists and is writable") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as raw:
            stream = GuardedStream(raw, str(path))
            yield stream  # type: ignore[misc]
            stream.flush()
            try:
                os.fsync(raw.fileno())
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        # mkstemp makes the file private; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def refuse_audited_database(output: Path, audited: URL) -> None:
    """--output must not replace the audited SQLite file (or its journal files)."""
    from anomaly_cli.db import sqlite_path

    path = sqlite_path(audited)
    if path is None:
        return
    target = output.expanduser().resolve()
    if target in {path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))}:
        raise UsageError(f"--output {output} is the audited database", hint="scans never write to it")


class GuardedStream:
    """A text stream whose failures become one OutputError naming where the output was going."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self.name = name

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except Exception as exc:  # noqa: BLE001 - every failure of a write is translated here
            raise self._error(exc, text) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, "") from None

    def _error(self, exc: Exception, text: str) -> Exception:
        if isinstance(exc, BrokenPipeError):
            return OutputClosed(f"{self.name} was closed by its reader")
        if isinstance(exc, UnicodeEncodeError):
            shown = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else "?"
            return OutputError(f"cannot write {self.name}: its encoding ({exc.encoding}) cannot show {shown!r}",
                               hint="set PYTHONIOENCODING=utf-8, or write a file with --output (always UTF-8)")
        if isinstance(exc, OSError):
            return OutputError(f"cannot write {self.name}: {exc.strerror or exc}")
        return exc

    def isatty(self) -> bool:
        return self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def standard_output() -> GuardedStream:
    """stdout, guarded; a closed stdout (`>&-`) is an OutputError, not an AttributeError."""
    import sys

    if sys.stdout is None:
        raise OutputError("standard output is closed", hint="give --output FILE")
    return GuardedStream(sys.stdout, "standard output")


def stdout_is_terminal() -> bool:
    import sys

    return sys.stdout is not None and sys.stdout.isatty()
