"""Finding what a page names: a record by entity and id, a task the user may see, the staff to pick from.

Each raises the HTTP error a person should see (404 for what is not there, 403 for what is not theirs).
"""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import HTTPException

from engine.compiler import CompiledModel
from forms import submit as forms
from runtime import projects as project_teams
from runtime import records
from runtime import tasks as task_service

from ..access import may_see_task
from .recordforms import (  # the record pages' pickers: one rule for forms too
    record_options,
    staff_options,
)

MAX_ID = 2**63 - 1  # the largest id a database column holds; a larger number names nothing


def entity_or_404(compiled: CompiledModel, entity: str):
    """The entity definition a URL names."""
    if entity not in compiled.model.entities:
        raise HTTPException(404, "There is no such kind of record.")
    return compiled.model.entities[entity]


def record_or_404(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id) -> records.Record:
    """The record a URL or a form names (`record_id` as typed: a bad number is 'not found', never an error)."""
    entity_or_404(compiled, entity)
    try:
        number = int(str(record_id))
    except ValueError:
        number = -1
    if not 0 < number <= MAX_ID:
        raise HTTPException(404, f"There is no {compiled.model.entities[entity].label.lower()} with that number.")
    try:
        return records.get_record(conn, compiled, entity, number)
    except records.RecordNotFound:
        raise HTTPException(404, f"There is no {compiled.model.entities[entity].label.lower()} with that number.") from None


def task_or_404(conn: sa.Connection, compiled: CompiledModel, task_id: int, user: dict | None = None) -> dict:
    """The task, if `user` may see it (assignee, its group, its project's manager or members, approver, or a monitor)."""
    task = task_service.get_task(conn, task_id) if 0 < task_id <= MAX_ID else None
    if task is None:
        raise HTTPException(404, "There is no such task.")
    task = dict(task)
    task["_groups"], task["_pm"] = task_service.access_context(conn, user["id"], task) if user else (set(), None)
    requester = task_service.requester(conn, task) if task.get("kind") == "approval" else None  # who follows their approval
    member = user is not None and project_teams.is_member(conn, task["project_id"], user["id"])
    if user is not None and not may_see_task(compiled.model, user, task, task["_groups"], task["_pm"], requester, on_project=member):
        raise HTTPException(403, "This task is assigned to someone else.")
    return task


def options_for(conn: sa.Connection, compiled: CompiledModel, form_name: str, record: records.Record | None = None) -> dict[str, list]:
    """The choices each field of a staff form offers: choice labels, groups, active staff, and records — scoped to the
    record the form is filled in for (the lead form on a company offers that company's people)."""
    model = compiled.model
    entity = model.entities.get(record.entity) if record is not None else None
    out: dict[str, list] = {}
    for f in model.forms[form_name].fields:
        if f.type == "reference" and entity is not None:
            out[f.name] = record_options(conn, compiled, entity, f, dict(record.data), record.id)
        elif f.type == "user":
            out[f.name] = staff_options(conn, model)
        else:
            out[f.name] = forms.choices_for(compiled, conn, f, [])
    return out
