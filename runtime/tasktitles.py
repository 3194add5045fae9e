"""A new task's title in every language the packs translate into (tasks.titles), rendered when the task is made.

A step's title is often a template ('Call back {{ record.name }}'): the workflow renders it once, in the definitions'
own language, and that text is the task's `title`. Here, in the activity that writes the task, the step's title as
each translation gives it (its own template, else the definitions') is rendered again for that language: the record's
fields as it reads them (a choice's translated label, a user's name, a date in words), the process's inputs, its
project and the steps done so far. Whoever reads the task then sees it in their language (`engine.labels.task_title`).

The workflow's context is its own (its record as it was when the process started); this one is the record as it is
when the task is made. A title that fails to render in a language keeps the definitions' one for it.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from engine import expressions, labels
from engine.compiler import CompiledModel
from engine.model import Model, walk
from forms.widgets import Names, display_context, organisation_zone

from . import records
from .interpreter import template_context
from .schema import process_instances, projects, tasks

_KEPT = 8  # (model, language) pairs remembered: a release brings a new model
_translated: dict[tuple[int, str], tuple[Model, Model]] = {}


log = logging.getLogger(__name__)


def _in(model: Model, locale: str) -> Model:
    """`model` in `locale`, translated once per model and language (a translation takes milliseconds; tasks are many)."""
    hit = _translated.get((id(model), locale))
    if hit is None or hit[0] is not model:  # an id may be reused once a model is gone
        if len(_translated) >= _KEPT:
            _translated.clear()
        hit = _translated[(id(model), locale)] = (model, labels.translate(model, locale))
    return hit[1]


def render(conn: sa.Connection, compiled: CompiledModel, values: dict) -> dict[str, str] | None:
    """{locale: title} of the task `values` describe (process, step_id, title, workflow_id, entity, record_id,
    project_id) for every language the packs translate into; None when they translate into none."""
    model = compiled.model
    locales = [loc for loc in sorted(model.translations) if loc != labels.DEFAULT]
    process = model.processes.get(values.get("process") or "")
    if not locales or process is None:
        return None
    base = _context(conn, compiled, values)
    out: dict[str, str] = {}
    for locale in locales:
        m = _in(model, locale)
        p = m.processes[process.name]
        step = next((s for s in walk(p.steps) if s.id == values.get("step_id")), None)
        if step is None or getattr(step, "title", None) is None:
            continue  # a parallel block has no title of its own
        title = _render(conn, compiled, m, step.title.source, base, values)
        out[locale] = (title or values.get("title") or "")[:500]
    return out


def _render(conn: sa.Connection, compiled: CompiledModel, model: Any, source: str, base: dict, values: dict) -> str | None:
    if labels.plain(source):
        return source
    names = Names(conn, compiled, organisation_zone(model))
    scope = dict(base)
    entity = model.entities.get(values.get("entity") or "")
    if entity is not None and isinstance(base.get("record"), dict):
        scope["record"] = display_context(base["record"], entity.all_fields(), names)
    process = model.processes[values["process"]]
    scope["inputs"] = display_context(base["inputs"], process.inputs, names)
    scope["process"] = {**base["process"], "label": process.label}
    try:
        return expressions.render(source, scope).strip() or None
    except Exception as exc:  # noqa: BLE001 - a translated title that fails keeps the definitions' one
        log.warning("the %s title of step %s.%s did not render (%s): the task keeps its own title",
                    model.locale or "translated", values.get("process"), values.get("step"), exc)
        return None


def _context(conn: sa.Connection, compiled: CompiledModel, values: dict) -> dict:
    """The process's context as templates read it, from the store: the record now, the inputs, project and steps."""
    model = compiled.model
    wid = values.get("workflow_id") or ""
    record: dict[str, Any] = {}
    entity = model.entities.get(values.get("entity") or "")
    if entity is not None and values.get("record_id"):
        try:
            record = records.get_record(conn, compiled, entity.name, values["record_id"]).context(entity)
        except records.RecordNotFound:
            record = {"id": values["record_id"]}
    inputs = conn.execute(sa.select(process_instances.c.inputs).where(process_instances.c.workflow_id == wid)).scalar() or {}
    project: dict[str, Any] = {}
    if values.get("project_id"):
        title = conn.execute(sa.select(projects.c.title).where(projects.c.id == values["project_id"])).scalar()
        project = {"title": title, "id": values["project_id"]}
    done = conn.execute(sa.select(tasks.c.step_id, tasks.c.status, tasks.c.outcome, tasks.c.data, tasks.c.completed_by,
                                  tasks.c.completed_at)
                        .where(tasks.c.workflow_id == wid, tasks.c.kind == "task", tasks.c.completed_at.is_not(None))
                        .order_by(tasks.c.id)).mappings()
    steps = {r["step_id"]: {"outcome": r["outcome"] or r["status"], "data": r["data"] or {}, "completed_by": r["completed_by"],
                            "completed_at": r["completed_at"].isoformat() if r["completed_at"] else None} for r in done}
    process = model.processes[values["process"]]
    ctx = {"record": record, "inputs": dict(inputs), "project": project, "steps": steps,
           "process": {"name": process.name, "label": process.label, "id": wid}}
    return template_context(ctx, (s.id for s in walk(process.steps)), dt.datetime.now(dt.UTC))
