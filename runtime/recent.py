"""The records a user deals with, the last they dealt with first: those they touched (their own contact history entries:
changes, notes, replies, completed tasks), those of their open tasks, and those they own (an `owner` field of type user,
the owner the processes route to). My work lists them as "My customers".

Pure reads, each bounded: the user's newest history entries (index ix_contact_history_user), their open tasks
(ix_tasks_inbox), the records of each entity whose owner they are (the owner field's index, where it has one).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from engine.compiler import CompiledModel

from . import records
from .db import aware
from .schema import OPEN_STATUSES, contact_history, tasks

SHOWN = 10          # records listed
HISTORY_READ = 500  # of the user's newest history entries, read at most to find them
OPEN = OPEN_STATUSES  # tasks someone still has to act on
OWNER = "owner"     # the field the `owner` party reads (runtime.activities)


@dataclass(frozen=True)
class Dealt:
    """One record the user deals with, and how: `how` is "touched" (their own history entry at `at`), "task" (an open
    task of theirs, given at `at`) or "owner" (they own it; it last changed at `at`, `owner_label` names the field)."""

    entity: str
    record_id: int
    title: str
    at: dt.datetime
    how: str
    owner_label: str = ""


Key = tuple[str, int]


def touched(conn: sa.Connection, user_id: int, entities: Iterable[str], want: int) -> dict[Key, dt.datetime]:
    """The records the user's newest history entries are on (at most `want`), each with when they last touched it."""
    q = (sa.select(contact_history.c.entity, contact_history.c.record_id, contact_history.c.occurred_at)
         .where(contact_history.c.user_id == user_id, contact_history.c.entity.in_(list(entities)))
         .order_by(contact_history.c.occurred_at.desc(), contact_history.c.id.desc()).limit(HISTORY_READ))
    found: dict[Key, dt.datetime] = {}
    for row in conn.execute(q):
        found.setdefault((row.entity, row.record_id), aware(row.occurred_at))
        if len(found) >= want:
            break
    return found


def task_records(conn: sa.Connection, user_id: int, entities: Iterable[str], want: int) -> dict[Key, dt.datetime]:
    """The records of the user's open tasks (at most `want`), each with when its newest task was made."""
    newest = sa.func.max(tasks.c.created_at).label("at")
    q = (sa.select(tasks.c.entity, tasks.c.record_id, newest)
         .where(tasks.c.assignee_id == user_id, tasks.c.status.in_(OPEN), tasks.c.entity.in_(list(entities)),
                tasks.c.record_id.is_not(None))
         .group_by(tasks.c.entity, tasks.c.record_id).order_by(newest.desc()).limit(want))
    return {(row.entity, row.record_id): aware(row.at) for row in conn.execute(q)}


def owned(conn: sa.Connection, compiled: CompiledModel, entity: str, user_id: int, want: int) -> list[Dealt]:
    """The records of `entity` whose owner is the user, the last changed first (none when it has no owner field)."""
    field = compiled.model.entities[entity].field(OWNER)
    if field is None or field.type != "user":
        return []
    table = compiled.metadata.tables[entity]
    where = records.filter_condition(conn, compiled, entity, {OWNER: user_id})
    rows = conn.execute(sa.select(table.c.id, table.c.title, table.c.updated_at).where(where)
                        .order_by(table.c.updated_at.desc(), table.c.id.desc()).limit(want))
    return [Dealt(entity, r.id, r.title, aware(r.updated_at), "owner", field.label) for r in rows]


def _titles(conn: sa.Connection, compiled: CompiledModel, keys: Iterable[Key]) -> dict[Key, str]:
    """The titles of the records that still exist, one query per entity."""
    by_entity: dict[str, list[int]] = {}
    for entity, record_id in keys:
        by_entity.setdefault(entity, []).append(record_id)
    found: dict[Key, str] = {}
    for entity, ids in by_entity.items():
        table = compiled.metadata.tables[entity]
        found.update({(entity, r.id): r.title for r in conn.execute(sa.select(table.c.id, table.c.title).where(table.c.id.in_(ids)))})
    return found


def dealt_with(conn: sa.Connection, compiled: CompiledModel, user_id: int, entities: Iterable[str], shown: int = SHOWN) -> list[Dealt]:
    """The records of `entities` the user deals with, the most recent first, at most `shown`: each once, dated by the
    newest of their last touch, their newest open task on it and (owned) its last change. Deleted records are left out."""
    names = [e for e in entities if e in compiled.model.entities and e in compiled.metadata.tables]
    if not names:
        return []
    want = shown * 2  # room for records deleted since
    candidates: dict[Key, Dealt] = {}

    def offer(item: Dealt) -> None:
        key = (item.entity, item.record_id)
        if key not in candidates or item.at > candidates[key].at:
            candidates[key] = item

    for entity in names:
        for item in owned(conn, compiled, entity, user_id, shown):
            offer(item)
    dated = [(key, at, "touched") for key, at in touched(conn, user_id, names, want).items()]
    dated += [(key, at, "task") for key, at in task_records(conn, user_id, names, want).items()]
    titles = _titles(conn, compiled, {key for key, _, _ in dated})
    for (entity, record_id), at, how in dated:
        if (entity, record_id) in titles:
            offer(Dealt(entity, record_id, titles[entity, record_id], at, how))
    ordered = sorted(candidates.values(), key=lambda d: (d.at, d.entity, d.record_id), reverse=True)
    return ordered[:shown]
