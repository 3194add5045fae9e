"""The outbox of process starts: written in the transaction of the change that starts them.

A record change or a form submission enqueues the processes it starts on the caller's
connection, so the starts commit (or roll back) with the change itself and a crash
after the commit cannot lose them. Starting them is `starter.start_enqueued` (the
request path, right after its commit) and `drainer` (the worker, for what is left).
Both may start the same row: its workflow id is unique here and in Temporal, so each
process starts once.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable, Mapping

import sqlalchemy as sa

from .keyed import insert_new
from .schema import process_starts

PENDING, STARTED, ABANDONED = "pending", "started", "abandoned"
# The request path starts its own rows right after its commit; the drainer leaves them alone this long,
# so the two rarely ask Temporal for the same start (which would be harmless, only wasted).
GRACE = dt.timedelta(seconds=5)
MAX_RETRY_DELAY = dt.timedelta(minutes=5)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def workflow_id(process: str, key: str) -> str:
    """`process/key`, where key names what started it (a submission id, a record change, a schedule run)."""
    return f"{process}/{re.sub(r'[^A-Za-z0-9_.:-]', '-', key)}"


def enqueue(conn: sa.Connection, process: str, key: str, *, entity: str | None = None, record_id: int | None = None,
            inputs: Mapping[str, Any] | None = None, started_by: int | None = None, at: dt.datetime | None = None) -> str:
    """Add a start to the caller's transaction (once per workflow id); returns the workflow id."""
    wid = workflow_id(process, key)
    now = at or utcnow()
    insert_new(conn, process_starts, dict(
        workflow_id=wid, process=process, key=key, entity=entity, record_id=record_id, inputs=dict(inputs or {}),
        started_by=started_by, status=PENDING, created_at=now, next_attempt_at=now + GRACE, attempts=0), ("workflow_id",))
    return wid


def pending(conn: sa.Connection, workflow_ids: Iterable[str]) -> list[sa.Row]:
    """The rows among `workflow_ids` that have not been started yet, oldest first."""
    ids = list(workflow_ids)
    if not ids:
        return []
    return list(conn.execute(sa.select(process_starts).where(process_starts.c.workflow_id.in_(ids), process_starts.c.status == PENDING)
                             .order_by(process_starts.c.id)))


def due(conn: sa.Connection, now: dt.datetime, limit: int) -> list[sa.Row]:
    """Pending rows whose turn has come (the request path did not start them, or an attempt failed), oldest first."""
    return list(conn.execute(sa.select(process_starts).where(process_starts.c.status == PENDING, process_starts.c.next_attempt_at <= now)
                             .order_by(process_starts.c.id).limit(limit)))


def mark_started(conn: sa.Connection, workflow_ids: Iterable[str], at: dt.datetime) -> None:
    """Record that these starts reached Temporal."""
    ids = list(workflow_ids)
    if ids:
        conn.execute(process_starts.update().where(process_starts.c.workflow_id.in_(ids), process_starts.c.status == PENDING)
                     .values(status=STARTED, started_at=at, attempts=process_starts.c.attempts + 1, last_error=None))


def mark_failed(conn: sa.Connection, row: sa.Row, error: str, at: dt.datetime) -> None:
    """Count a failed attempt and put the next one off: 1 s, 2 s, 4 s, … up to MAX_RETRY_DELAY."""
    delay = min(dt.timedelta(seconds=2 ** min(row.attempts, 20)), MAX_RETRY_DELAY)
    conn.execute(process_starts.update().where(process_starts.c.id == row.id, process_starts.c.status == PENDING)
                 .values(attempts=process_starts.c.attempts + 1, last_error=error[:2000], next_attempt_at=at + delay))


def mark_abandoned(conn: sa.Connection, row: sa.Row, reason: str) -> None:
    """Give up on a start that can never happen (its record was deleted before it started)."""
    conn.execute(process_starts.update().where(process_starts.c.id == row.id, process_starts.c.status == PENDING)
                 .values(status=ABANDONED, attempts=process_starts.c.attempts + 1, last_error=reason))
