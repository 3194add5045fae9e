"""What still refers to a record: other records' reference fields, open tasks, running processes
(and those about to start), open projects and portal accounts. A record is deleted only when this finds nothing.
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.compiler import CompiledModel

from .schema import process_instances, process_starts, projects, tasks, users

SHOWN = 5  # ids named per kind of referrer; the rest are counted
OPEN_TASK = ("open", "awaiting_approval")
#: platform columns that hold a record id of a fixed entity (the portal is tied to companies and people)
USER_LINKS = {"company": ("company_id", "portal user"), "person": ("person_id", "user")}


def _listed(noun: str, plural: str, names: list[str], total: int) -> str:
    more = f" and {total - len(names)} more" if total > len(names) else ""
    return f"{noun if total == 1 else plural} {', '.join(names)}{more}"


def _count_and_first(conn: sa.Connection, query: sa.Select, name_of) -> tuple[int, list[str]]:
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    if not total:
        return 0, []
    first = conn.execute(query.limit(SHOWN)).all()
    return total, [name_of(r) for r in first]


def referrers(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int) -> list[str]:
    """Everything that refers to the record, one phrase per kind: "support requests 3 'Printer', 4 'Fax' (field Company)"."""
    model = compiled.model
    found: list[str] = []
    for other in model.entities.values():
        table = compiled.metadata.tables[other.name]
        for f in other.all_fields():
            if f.type != "reference" or f.entity != entity:
                continue
            q = sa.select(table.c.id, table.c.title).where(table.c[f.name] == record_id)
            if other.name == entity:
                q = q.where(table.c.id != record_id)  # a record pointing at itself does not hold itself
            total, names = _count_and_first(conn, q.order_by(table.c.id), lambda r: f"{r.id} '{r.title}'")
            if total:
                found.append(_listed(other.label.lower(), other.plural.lower(), names, total) + f" (field {f.label})")
    total, names = _count_and_first(
        conn, sa.select(tasks.c.id, tasks.c.title).where(tasks.c.entity == entity, tasks.c.record_id == record_id,
                                                         tasks.c.status.in_(OPEN_TASK)).order_by(tasks.c.id),
        lambda r: f"{r.id} '{r.title}'")
    if total:
        found.append(_listed("open task", "open tasks", names, total))
    total, names = _count_and_first(
        conn, sa.select(process_instances.c.workflow_id, process_instances.c.process)
        .where(process_instances.c.entity == entity, process_instances.c.record_id == record_id,
               process_instances.c.status == "running").order_by(process_instances.c.started_at),
        lambda r: f"{model.processes[r.process].label if r.process in model.processes else r.process} ({r.workflow_id})")
    if total:
        found.append(_listed("running process", "running processes", names, total))
    # enqueued with a change but not running yet (not started, or started and its instance row not written yet)
    registered = sa.exists().where(process_instances.c.workflow_id == process_starts.c.workflow_id)
    total, names = _count_and_first(
        conn, sa.select(process_starts.c.workflow_id, process_starts.c.process)
        .where(process_starts.c.entity == entity, process_starts.c.record_id == record_id,
               sa.or_(process_starts.c.status == "pending", sa.and_(process_starts.c.status == "started", ~registered)))
        .order_by(process_starts.c.id),
        lambda r: f"{model.processes[r.process].label if r.process in model.processes else r.process} ({r.workflow_id})")
    if total:
        found.append(_listed("process about to start", "processes about to start", names, total))
    total, names = _count_and_first(
        conn, sa.select(projects.c.id, projects.c.title).where(projects.c.entity == entity, projects.c.record_id == record_id,
                                                               projects.c.status == "open").order_by(projects.c.id),
        lambda r: f"{r.id} '{r.title}'")
    if total:
        found.append(_listed("open project", "open projects", names, total))
    if entity in USER_LINKS:
        column, noun = USER_LINKS[entity]
        total, names = _count_and_first(
            conn, sa.select(users.c.username).where(users.c[column] == record_id, users.c.active).order_by(users.c.username),
            lambda r: r.username)
        if total:
            found.append(_listed(noun, noun + "s", names, total))
    return found
