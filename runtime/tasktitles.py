"""A new task's title and description as people read them, rendered when the task is made: the title in the
definitions' own language (tasks.title) and in every language the packs translate into (tasks.titles), the
description in the definitions' own language (tasks.description).

A step's title is often a template ('Call back {{ record.name }} about {{ record.industry }}'): the workflow renders it
once, in the definitions' own language, with the raw values it holds (a choice's value, a user's id, an ISO date), and
asks for the task with that text. Here, in the activity that writes the task, the step's title is rendered again with
display values: the record's fields as a reader sees them (a choice's label, a user's name, a referenced record's
title, a date in words), the process's inputs, the step forms' data, its project and the steps done so far (who
completed one by name, when in the organisation's time zone: `runtime.messages.display_scope`, which alerts use too).

- In the definitions' own language (`engine.labels.DEFAULT`) the display title *is* the task's `title`: it replaces
  the workflow's raw rendering before the row is written. So every reader of `tasks.title` sees it, not only those who
  go through `engine.labels.task_title`: pages, record histories, notifications, alert, reminder and approval emails,
  the messages of alerts raised by the platform, the API's `title` (still 'the task's title in the definitions' own
  language').
  Nothing the workflow decides reads it (an activity's answer carries no title), so histories replay unchanged. What
  the workflow writes itself keeps the title it rendered: its task.created events. (The overdue message of an
  escalation level that has no message of its own names the task as each reader reads it: `runtime.messages`.)
- In each translated language it goes into `titles` (locale -> title), its step's title as that translation gives it
  (its own template, else the definitions'); `engine.labels.task_title` picks it for a reader of that language.

A plain title (`labels.plain`) stays as the workflow wrote it. The workflow's context is its own (its record as it was
when the process started); this one is the record as it is when the task is made. A title that fails to render keeps
the workflow's one (in the definitions' language; in a translation, the definitions' display title), and says why in
the log.

A step's description (often a template too) is rendered the same way, once: in the definitions' own language, where
it replaces the workflow's rendering in `tasks.description`, which the task page shows. The packs translate step titles
but not descriptions (`engine.labels`), and a description per language would need a column of its own; so a reader of
another language reads it as written, its values labelled as the definitions label them. A plain description stays as
the workflow wrote it; one that fails to render keeps the workflow's, and the log says why.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import sqlalchemy as sa

from engine import expressions, labels
from engine.compiler import CompiledModel
from engine.model import Model, walk
from forms.widgets import Names, organisation_zone

from . import records
from .interpreter import template_context
from .messages import display_scope
from .schema import process_instances, projects, tasks

log = logging.getLogger(__name__)


def render(conn: sa.Connection, compiled: CompiledModel, values: dict) -> dict[str, Any]:
    """{"title": ..., "titles": ..., "description": ...} of the task `values` describe (process, step_id, title and
    description as the workflow rendered them, workflow_id, entity, record_id, project_id): its title in the definitions'
    own language with display values, {locale: title} for every language the packs translate into (None when they
    translate into none), and its description with display values in the definitions' own language."""
    model = compiled.model
    raw = values.get("title") or ""
    process = model.processes.get(values.get("process") or "")
    if process is None:
        return {"title": raw, "titles": None, "description": values.get("description")}
    translated = [loc for loc in sorted(model.translations) if loc != labels.DEFAULT]
    base: dict | None = None  # the context, read from the store once, when a template needs it
    out: dict[str, str] = {}
    for locale in [labels.DEFAULT, *translated]:  # the definitions' language first: a translation that fails falls back to it
        step = _step(labels.translate(model, locale), values)
        if step is None or getattr(step, "title", None) is None:
            continue  # a parallel block has no title of its own
        source = step.title.source
        if labels.plain(source):
            title = raw if locale == labels.DEFAULT else source
        else:
            base = _context(conn, compiled, values, _sources(model, translated, values)) if base is None else base
            title = _render(conn, compiled, labels.translate(model, locale), locale, "title", source, base, values)
        out[locale] = (title or out.get(labels.DEFAULT) or raw)[:500]
    title = out.pop(labels.DEFAULT, raw)
    description = values.get("description")
    step = _step(model, values)
    source = step.description.source if step is not None and getattr(step, "description", None) is not None else None
    if description is not None and source and not labels.plain(source):
        base = _context(conn, compiled, values, _sources(model, translated, values)) if base is None else base
        description = _render(conn, compiled, model, labels.DEFAULT, "description", source, base, values) or description
    return {"title": title, "titles": out if translated else None, "description": description}


def _sources(model: Model, translated: list[str], values: dict) -> str:
    """The step's title and description templates in every language, together: what `_context` reads depends on them."""
    parts = []
    for locale in [labels.DEFAULT, *translated]:
        step = _step(labels.translate(model, locale), values)
        for what in ("title", "description"):
            if step is not None and getattr(step, what, None) is not None:
                parts.append(getattr(step, what).source)
    return "\n".join(parts)


def _step(model: Model, values: dict) -> Any:
    """The step of the task `values` describe, as `model` has it (None if the process has no such step)."""
    return next((s for s in walk(model.processes[values["process"]].steps) if s.id == values.get("step_id")), None)


def _render(conn: sa.Connection, compiled: CompiledModel, model: Model, locale: str, what: str, source: str, base: dict,
            values: dict) -> str | None:
    """`source` (the step's `what`: title or description) rendered for a reader of `locale` (`model`: as that language
    has it), with display values; None if it fails (logged: the task keeps the text it falls back to)."""
    try:
        names = Names(conn, compiled, organisation_zone(model))
        scope = display_scope(base, model, values["process"], values.get("entity"), names)
        return expressions.render(source, scope).strip() or None
    except Exception as exc:  # noqa: BLE001 - a title that fails keeps the one it falls back to, and a task is still made
        log.warning("the %s %s of step %s.%s did not render (%s): the task keeps %s", locale, what, values.get("process"),
                    values.get("step_id"), exc,
                    f"the workflow's {what}" if locale == labels.DEFAULT else "its own title")
        return None


def _context(conn: sa.Connection, compiled: CompiledModel, values: dict, sources: str) -> dict:
    """The process's context as templates read it, from the store: the record now, the inputs, project and steps, each
    read only if one of the templates (`sources`) names it (a name no template has, none of them can reach)."""
    model = compiled.model
    wid = values.get("workflow_id") or ""

    def named(name: str) -> bool:
        return re.search(rf"\b{name}\b", sources) is not None

    record: dict[str, Any] = {}
    entity = model.entities.get(values.get("entity") or "")
    if entity is not None and values.get("record_id") and named("record"):
        try:
            record = records.get_record(conn, compiled, entity.name, values["record_id"]).context(entity)
        except records.RecordNotFound:
            record = {"id": values["record_id"]}
    inputs = (conn.execute(sa.select(process_instances.c.inputs).where(process_instances.c.workflow_id == wid)).scalar() or {}
              if named("inputs") else {})
    project: dict[str, Any] = {}
    if values.get("project_id") and named("project"):
        title = conn.execute(sa.select(projects.c.title).where(projects.c.id == values["project_id"])).scalar()
        project = {"title": title, "id": values["project_id"]}
    done = conn.execute(sa.select(tasks.c.step_id, tasks.c.status, tasks.c.outcome, tasks.c.data, tasks.c.completed_by,
                                  tasks.c.completed_at)
                        .where(tasks.c.workflow_id == wid, tasks.c.kind == "task", tasks.c.completed_at.is_not(None))
                        .order_by(tasks.c.id)).mappings() if named("steps") else ()
    steps = {r["step_id"]: {"outcome": r["outcome"] or r["status"], "data": r["data"] or {}, "completed_by": r["completed_by"],
                            "completed_at": r["completed_at"].isoformat() if r["completed_at"] else None} for r in done}
    process = model.processes[values["process"]]
    ctx = {"record": record, "inputs": dict(inputs), "project": project, "steps": steps,
           "process": {"name": process.name, "label": process.label, "id": wid}}
    return template_context(ctx, (s.id for s in walk(process.steps)), dt.datetime.now(dt.UTC))
