"""Contact history (what happened with a customer) and the audit log (who changed what)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa

from .db import aware
from .keyed import insert_new
from .schema import audit_log, contact_history

#: the kinds the platform writes; packs' forms add their own (call, meeting, ...)
KINDS = ("submission", "task", "alert", "note", "change", "reply")
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,29}$")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    entity: str
    record_id: int
    kind: str
    summary: str
    data: Mapping[str, Any] | None
    user_id: int | None
    occurred_at: dt.datetime
    form: str | None = None
    key: str | None = None
    public: bool = False  # the customer's portal users see it (a staff reply made public, the customer's own replies)


def _entry(row) -> HistoryEntry:
    return HistoryEntry(id=row.id, entity=row.entity, record_id=row.record_id, kind=row.kind, summary=row.summary,
                        data=row.data, user_id=row.user_id, occurred_at=aware(row.occurred_at), form=row.form, key=row.key,
                        public=bool(row.public))


# built once: SQLAlchemy then finds their compiled form at once instead of rebuilding and hashing them per call
_BY_KEY = sa.select(contact_history).where(contact_history.c.key == sa.bindparam("key"))
_INSERT = contact_history.insert().returning(*contact_history.c)
_WRITTEN = ("entity", "record_id", "kind", "summary", "data", "user_id", "form", "key", "public")


def _by_key(conn: sa.Connection, key: str) -> HistoryEntry | None:
    row = conn.execute(_BY_KEY, {"key": key}).first()
    return _entry(row) if row else None


def add_history(conn: sa.Connection, entity: str, record_id: int, kind: str, summary: str, data: Mapping[str, Any] | None,
                user: int | None, key: str | None = None, *, form: str | None = None,
                at: dt.datetime | None = None, public: bool = False) -> HistoryEntry:
    """Add an entry to a record's contact history (`public`: the customer's portal users see it); with a `key`,
    a repeat returns the first entry."""
    if not KIND_PATTERN.match(kind):
        raise ValueError(f"a history kind is a short lower-case name such as {', '.join(KINDS)}; found {kind!r}")
    values = dict(key=key, entity=entity, record_id=record_id, kind=kind, summary=summary[:500], form=form,
                  data=dict(data) if data is not None else None, user_id=user, occurred_at=at or utcnow(), public=public)
    if key is None:
        return _entry(conn.execute(_INSERT, values).one())
    # A new entry is what was written (only its id is read back: decoding the row again costs more than writing it);
    # a repeat (or a concurrent writer that got there first) inserts nothing and reads the first entry.
    row = insert_new(conn, contact_history, values, ("key",), returning=("id",))
    if row is not None:
        return HistoryEntry(id=row.id, occurred_at=aware(values["occurred_at"]), **{k: values[k] for k in _WRITTEN})
    entry = _by_key(conn, key)
    assert entry is not None
    return entry


def list_history(conn: sa.Connection, entity: str, record_id: int, *, kinds: tuple[str, ...] = (),
                 limit: int = 100, before: dt.datetime | None = None, public_only: bool = False) -> list[HistoryEntry]:
    """A record's history, newest first (`public_only`: only what the customer's portal users may see)."""
    q = (sa.select(contact_history)
         .where(contact_history.c.entity == entity, contact_history.c.record_id == record_id)
         .order_by(contact_history.c.occurred_at.desc(), contact_history.c.id.desc()).limit(limit))
    if public_only:
        q = q.where(contact_history.c.public)
    if kinds:
        q = q.where(contact_history.c.kind.in_(kinds))
    if before is not None:
        q = q.where(contact_history.c.occurred_at < before)
    return [_entry(r) for r in conn.execute(q)]


# -- audit log -------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    id: int
    entity: str
    record_id: int
    action: str
    user_id: int | None
    at: dt.datetime
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


_AUDIT = audit_log.insert()  # built once, like the history statements


def write_audit(conn: sa.Connection, entity: str, record_id: int, action: str, user: int | None,
                before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, at: dt.datetime | None = None) -> None:
    """Record one change: who, when, and the values before and after."""
    conn.execute(_AUDIT, dict(entity=entity, record_id=record_id, action=action, user_id=user, at=at or utcnow(),
                              before=dict(before) if before is not None else None, after=dict(after) if after is not None else None))


def list_audit(conn: sa.Connection, entity: str, record_id: int) -> list[AuditEntry]:
    """Every change of a record, oldest first."""
    q = (sa.select(audit_log).where(audit_log.c.entity == entity, audit_log.c.record_id == record_id)
         .order_by(audit_log.c.at, audit_log.c.id))
    return [AuditEntry(id=r.id, entity=r.entity, record_id=r.record_id, action=r.action, user_id=r.user_id, at=aware(r.at),
                       before=r.before, after=r.after) for r in conn.execute(q)]
