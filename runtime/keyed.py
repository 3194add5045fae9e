"""Keyed inserts: a row written once per key, however often a retried writer tries."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_new(conn: sa.Connection, table: sa.Table, values: dict[str, Any], key: tuple[str, ...]) -> sa.Row | None:
    """Insert `values` unless a row with the same `key` columns exists: the new row, or None.

    One `INSERT … ON CONFLICT DO NOTHING RETURNING` (SQLite and PostgreSQL alike) instead of a lookup,
    a savepoint, the insert and a second lookup; a concurrent writer that got there first simply wins.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(key)).returning(*table.c)
    return conn.execute(stmt).first()
