"""Streaming a PostgreSQL result without a server-side cursor.

SQLAlchemy streams a result (`yield_per`) on psycopg through a named cursor: DECLARE ... CURSOR,
then FETCH. PostgreSQL never gives a cursor a parallel plan, and plans it for its first rows
(cursor_tuple_fraction): price's query ran 2-3x the time of the same SELECT sent plainly.
libpq 17's chunked-rows mode streams a plain SELECT's result a chunk at a time instead: the
plan is the query's own and the client holds one chunk. The connection's server-side cursor
factory is replaced by this cursor, so every `yield_per` of the checks gets it unchanged.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg

CHUNK = 1000  # rows per chunk from the server: the checks' yield_per
_END = object()
# The cursor whose stream a connection is busy with, if any.
_OPEN: weakref.WeakKeyDictionary[Any, ChunkedCursor] = weakref.WeakKeyDictionary()


def available() -> bool:
    """Chunked streaming needs libpq 17 (psycopg's binary wheels bring it) and psycopg 3.2."""
    capabilities = getattr(psycopg, "capabilities", None)
    return capabilities is not None and capabilities.has_stream_chunked()


def install(dbapi_connection: Any) -> None:
    """Stream this psycopg connection's `cursor(name)` results in chunks."""
    dbapi_connection.server_cursor_factory = ChunkedCursor
    dbapi_connection.cursor_factory = SettlingCursor
    # psycopg holds the connection's lock while a stream is open: a statement psycopg starts
    # itself meanwhile (a commit) must fail with its error, not wait for ever on this thread.
    dbapi_connection.lock = threading.RLock()


def _settle(connection: Any) -> None:
    """Before another statement: read the rest of an open stream into its cursor's memory,
    which is what a server-side cursor allowed (a result read while other statements run)."""
    cursor = _OPEN.pop(connection, None)
    if cursor is not None:
        cursor._buffer_rest()


class SettlingCursor(psycopg.Cursor):  # type: ignore[type-arg]
    """The connection's plain cursor: it lets an open stream finish first."""

    __slots__ = ()

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> SettlingCursor:  # type: ignore[override]
        _settle(self.connection)
        return super().execute(query, params, **kwargs)


class ChunkedCursor(psycopg.Cursor):  # type: ignore[type-arg]
    """What `connection.cursor(name)` returns: a plain cursor that streams its result."""

    __slots__ = ("name", "itersize", "_rows", "_first", "_streamed")

    def __init__(self, connection: Any, name: str = "", *, row_factory: Any = None,
                 scrollable: bool | None = None, withhold: bool = False) -> None:
        if row_factory is None:
            super().__init__(connection)
        else:
            super().__init__(connection, row_factory=row_factory)
        self.name = name
        self.itersize = CHUNK  # read by SQLAlchemy as it is on psycopg's ServerCursor
        self._rows: Iterator[Any] | None = None
        self._first: Any = _END
        self._streamed = False  # the last execute streamed (else its result is psycopg's own)

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> ChunkedCursor:  # type: ignore[override]
        self._end_stream()
        _settle(self.connection)
        rows = self.stream(query, params, binary=kwargs.get("binary"), size=CHUNK)
        # The description comes with the first chunk: read it now, as execute() would.
        first = next(rows, _END)
        if first is _END:
            # An empty result leaves no description; LIMIT 0 plans the query and runs nothing.
            super().execute(f"SELECT * FROM ({query}) AS anomaly_columns LIMIT 0", params)
            return self
        self._rows, self._first, self._streamed = rows, first, True
        _OPEN[self.connection] = self
        return self

    def _buffer_rest(self) -> None:
        if self._rows is not None:
            self._rows = iter(list(self._rows))

    def _take(self, size: int | None) -> list[Any]:
        if not self._streamed:
            return super().fetchall() if size is None else super().fetchmany(size)
        out = []
        if self._first is not _END:
            out.append(self._first)
            self._first = _END
        for row in self._rows or ():
            out.append(row)
            if size is not None and len(out) >= size:
                return out
        self._rows = None  # the stream is over: the connection is free again
        if _OPEN.get(self.connection) is self:
            del _OPEN[self.connection]
        return out

    def fetchone(self) -> Any:
        rows = self._take(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int = 0) -> list[Any]:
        return self._take(size or self.arraysize)

    def fetchall(self) -> list[Any]:
        return self._take(None)

    def __iter__(self) -> Iterator[Any]:
        while rows := self._take(self.itersize):
            yield from rows

    def _end_stream(self) -> None:
        rows, self._rows, self._first, self._streamed = self._rows, None, _END, False
        if _OPEN.get(self.connection) is self:
            del _OPEN[self.connection]
        if rows is not None:
            rows.close()  # psycopg cancels the rest of the query and frees the connection
            if self.connection.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                # The cancel aborted the transaction, where closing a server-side cursor would
                # not: end it, so the next statement runs (a scan's session only reads).
                self.connection.rollback()

    def close(self) -> None:
        self._end_stream()
        super().close()
