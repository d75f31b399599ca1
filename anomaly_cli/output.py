"""Atomic output files: a cron job finds a complete file or none."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from anomaly_cli.errors import OutputError, UsageError

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
    if path.is_symlink():
        path = path.resolve()  # replace the file the link points to, not the link
    if path.exists() and not path.is_file():
        # A device or a pipe (/dev/null, /dev/stdout): nothing to replace, write straight to it.
        try:
            with path.open("w", encoding="utf-8", newline="") as stream:
                yield stream
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
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
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
