"""Keyed inserts: a row written once per key, however often a retried writer tries."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

# (dialect, table, key columns, returned columns) -> statement: built once, with the values passed as parameters, so
# SQLAlchemy finds its compiled form at once instead of rebuilding and hashing a statement per call
_STATEMENTS: dict[tuple[str, sa.Table, tuple[str, ...], tuple[str, ...] | None], sa.Insert] = {}


def insert_new(conn: sa.Connection, table: sa.Table, values: dict[str, Any], key: tuple[str, ...],
               returning: tuple[str, ...] | None = None) -> sa.Row | None:
    """Insert `values` unless a row with the same `key` columns exists: the new row (its `returning` columns; all of
    them by default), or None.

    One `INSERT … ON CONFLICT DO NOTHING RETURNING` (SQLite and PostgreSQL alike) instead of a lookup,
    a savepoint, the insert and a second lookup; a concurrent writer that got there first simply wins.
    """
    which = (conn.dialect.name, table, key, returning)
    stmt = _STATEMENTS.get(which)
    if stmt is None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        columns = [table.c[name] for name in returning] if returning else list(table.c)
        stmt = _STATEMENTS[which] = dialect.insert(table).on_conflict_do_nothing(index_elements=list(key)).returning(*columns)
    return conn.execute(stmt, values).first()
