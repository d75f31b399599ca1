"""Rows a check cannot read: SQLite keeps whatever text it was given in a date or number column.

Other engines refuse such values on insert; SQLite stores them as text, so '12/06/2025' or 'abc'
reach the checks. These expressions let the SQL count them (by reason, in the summary) instead of
crashing on them or reading 'abc' as 0. On other engines they are constant false and cost nothing.
"""

from __future__ import annotations

from typing import Any

# sqlalchemy is imported inside each function: the checks import this module, and `anomaly
# --help` must not load the database libraries.


def unreadable_number(column: Any, dialect: str) -> Any:
    """True where a number column holds text that is not a number (SQLite only)."""
    import sqlalchemy as sa

    if dialect != "sqlite":
        return sa.false()
    # A NUMERIC, REAL or INTEGER column converts numeric text on insert: text left is not a number.
    return sa.func.typeof(column).in_(("text", "blob"))


def unreadable_date(column: Any, dialect: str) -> Any:
    """True where a date column holds a value that is no usable date (SQLite only; sqlfn.usable_date)."""
    import sqlalchemy as sa

    from anomaly_cli.sqlfn import usable_date

    if dialect != "sqlite":
        return sa.false()
    return sa.and_(column.is_not(None), sa.not_(sa.func.coalesce(usable_date(column), False)))


def readable_date(column: Any, dialect: str) -> Any:
    """The rows whose date can be used (sqlfn.usable_date: NOT NULL on engines with real types)."""
    from anomaly_cli.sqlfn import usable_date

    return usable_date(column)


def newest(conn: Any, column: Any, *where: Any) -> Any:
    """max(column): with an index, one lookup. On SQLite the maximum may be text that is no date
    ('yesterday' sorts after every real date): then the newest readable date, by a slower scan."""
    return _extreme(conn, "max", column, *where)


def oldest(conn: Any, column: Any, *where: Any) -> Any:
    """min(column), as newest."""
    return _extreme(conn, "min", column, *where)


def _extreme(conn: Any, func: str, column: Any, *where: Any) -> Any:
    import sqlalchemy as sa

    try:
        return conn.execute(sa.select(getattr(sa.func, func)(column)).where(*where)).scalar()
    except (ValueError, TypeError, sa.exc.StatementError):
        readable = readable_date(column, conn.dialect.name)
        return conn.execute(sa.select(getattr(sa.func, func)(column)).where(readable, *where)).scalar()


def count_unusable_dates(conn: Any, column: Any, *where: Any) -> dict[str, int]:
    """Rows (matching `where`, anywhere in time) whose date is missing (no_date) or no usable
    date (bad_date), as price counts them: the checks' main passes keep only usable dates
    (sqlfn.usable_date), so every such row is counted here exactly once. On engines with real
    date types this is `column IS NULL`, one index lookup."""
    import sqlalchemy as sa

    from anomaly_cli.sqlfn import reason_counts, unusable_date

    kind = sa.case((column.is_(None), "no_date"), else_="bad_date")
    stmt = sa.select(kind, sa.func.count()).where(unusable_date(column), *where).group_by(kind)
    found = reason_counts(conn.execute(stmt))
    return {reason: found[reason] for reason in ("no_date", "bad_date") if reason in found}  # summaries' order
