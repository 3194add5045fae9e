"""Keyed inserts: a row written once per key, however often a retried writer tries."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

# (dialect, table, key columns) -> statement: built once, with the values passed as parameters, so
# SQLAlchemy finds its compiled form at once instead of rebuilding and hashing a statement per call
_STATEMENTS: dict[tuple[str, sa.Table, tuple[str, ...]], sa.Insert] = {}


def insert_new(conn: sa.Connection, table: sa.Table, values: dict[str, Any], key: tuple[str, ...]) -> sa.Row | None:
    """Insert `values` unless a row with the same `key` columns exists: the new row, or None.

    One `INSERT … ON CONFLICT DO NOTHING RETURNING` (SQLite and PostgreSQL alike) instead of a lookup,
    a savepoint, the insert and a second lookup; a concurrent writer that got there first simply wins.
    """
    which = (conn.dialect.name, table, key)
    stmt = _STATEMENTS.get(which)
    if stmt is None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = _STATEMENTS[which] = dialect.insert(table).on_conflict_do_nothing(index_elements=list(key)).returning(*table.c)
    return conn.execute(stmt, values).first()
