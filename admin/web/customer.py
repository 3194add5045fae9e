"""The customer's single view: what a record's page gathers about it, as people read it.

Its fields by scope with display values, its external links (only those whose values exist), the
records that point at it through reference fields (a short table per referring field), the open tasks
of the record, of those related records and of its projects, its projects, and its contact history
with who did what through which form. Pure reads; the route renders what these return.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup

from engine import expressions
from engine import pages as entity_pages
from engine.compiler import CompiledModel
from engine.errors import Loc
from engine.labels import task_title
from engine.model import Entity, Field
from forms import widgets
from runtime import records, words
from runtime.db import aware
from runtime.history import HistoryEntry, list_history
from runtime.schema import projects as projects_table
from runtime.schema import tasks as tasks_table
from runtime.triggers import manual_starts as startable

from .listing import directory_url
from .pages import STATUS_TEXT

RELATED_SHOWN = 10  # rows per related table; past this the table links to the directory, filtered
RELATED_COLUMNS = 3  # columns per related table besides the title (the back-reference is left out)
OPEN = ("open", "awaiting_approval")
TASKS_SHOWN = 50
HISTORY_SHOWN = 100
URL_SCHEMES = ("http://", "https://")
KIND_TEXT = {"submission": "Form", "task": "Task", "alert": "Alert", "note": "Note", "change": "Change", "project": "Project"}
PROJECT_STATUS = {"open": "Open", "closed": "Closed"}

# platform columns shown through the widget registry like fields, so ids become names
_ASSIGNEE = Field("assignee_id", "user", Loc("tasks"), "Assignee")
_MANAGER = Field("manager_id", "user", Loc("projects"), "Project manager")
_WHO = Field("user_id", "user", Loc("contact history"), "Who")


@dataclass(frozen=True)
class Section:
    """A heading and its (label, display html) pairs; `empty` when a group applies but nothing is recorded yet."""

    heading: str
    fields: list[tuple[str, Markup]]

    @property
    def empty(self) -> bool:
        return not self.fields


@dataclass(frozen=True)
class Related:
    """The records of one entity whose reference field `via` points at the record."""

    entity: Entity
    via: Field
    heading: str
    columns: list[Field]
    rows: list[dict]  # {"id", "title", "cells": [html, ...]}
    total: int
    new_url: str
    more_url: str | None  # the directory filtered on `via`, when there are more than are shown
    board_url: str | None  # the related entity's pipeline board, if it has stages


@dataclass
class SingleView:
    """Everything the record's page shows besides the record itself."""

    sections: list[Section]
    links: list[tuple[str, str]]
    related: list[Related]
    tasks: list[dict]
    tasks_total: int
    projects: list[dict]
    history: list[dict]
    board_url: str | None = None


def single_view(conn: sa.Connection, compiled: CompiledModel, ent: Entity, rec: records.Record, zone, *,
                today: dt.date | None = None) -> SingleView:
    """Gather the single view of `rec` for a viewer in time zone `zone`."""
    names = widgets.Names(conn, compiled, zone)
    related = related_records(conn, compiled, ent, rec, names)
    record_projects = _projects(conn, ent, rec, names)
    open_tasks, total = _open_tasks(conn, compiled, ent, rec, related, [p["id"] for p in record_projects], names)
    stages = entity_pages.stages(ent)
    return SingleView(sections=sections(ent, rec, names, today), links=links(ent, rec), related=related, tasks=open_tasks,
                      tasks_total=total, projects=record_projects, history=history(conn, compiled, ent, rec, names),
                      board_url=f"/board/{ent.name}#card-{rec.id}" if stages else None)


# -- the record's own values ----------------------------------------------------------------


def _filled(value: Any) -> bool:
    return value not in (None, "", [])


def sections(ent: Entity, rec: records.Record, names: widgets.Names, today: dt.date | None = None) -> list[Section]:
    """Fields for every record, then each group that applies (or holds values), then the record's own fields."""
    fields = [f for f in ent.all_fields() if _filled(rec.data.get(f.name))]
    names.prefetch(fields, [rec.data])
    locale = names.compiled.model.locale  # the page's language
    shown = [Section(words.text(locale, "For every %(entity)s", entity=words.noun(locale, ent.label)), _pairs(ent.fields, rec.data, names))]
    holding = records.groups_holding(ent, rec.context(ent), today or dt.date.today())
    for g in ent.groups:
        pairs = _pairs(g.fields, rec.data, names)
        if pairs or g.name in holding:
            shown.append(Section(g.label, pairs))
    own = [(v.get("label") or k, widgets.html(v.get("value"), _own_field(k, v), names))
           for k, v in rec.record_fields.items() if _filled(v.get("value"))]
    if own:
        shown.append(Section(words.text(locale, "This %(entity)s only", entity=words.noun(locale, ent.label)), own))
    return shown


def _pairs(fields, data, names) -> list[tuple[str, Markup]]:
    return [(f.label, widgets.html(data[f.name], f, names)) for f in fields if _filled(data.get(f.name))]


def _own_field(name: str, spec: dict) -> Field:
    return Field(name, str(spec.get("type") or "string"), Loc("record field"), str(spec.get("label") or name))


def links(ent: Entity, rec: records.Record) -> list[tuple[str, str]]:
    """(label, url) of the entity's external links whose template finds every value it uses, and gives an http(s) URL."""
    # Only filled values are in the context: the sandbox's strict undefined then refuses a template that uses an
    # empty field, instead of rendering 'None' or '' into the address.
    context = {k: v for k, v in rec.context(ent).items() if _filled(v)}
    found = []
    for link in ent.links:
        try:
            url = expressions.render(link.url.source, {"record": context}).strip()
        except Exception:  # a value the link needs is empty on this record
            continue
        if url.lower().startswith(URL_SCHEMES) and len(url) > len("https://"):
            found.append((link.label, url))
    return found


# -- records that point at this one -------------------------------------------------------


def referring_fields(compiled: CompiledModel, entity: str) -> list[tuple[Entity, Field]]:
    """Every (entity, reference field) that points at records of `entity`, in definition order."""
    return [(other, f) for other in compiled.model.entities.values() for f in other.all_fields()
            if f.type == "reference" and f.entity == entity]


def related_records(conn: sa.Connection, compiled: CompiledModel, ent: Entity, rec: records.Record,
                    names: widgets.Names) -> list[Related]:
    """A short table per entity and field that refers to `rec`, newest first, with how many there are."""
    found = []
    # customer entities (people) first, as in the navigation; then the others in definition order
    referring = sorted(referring_fields(compiled, ent.name), key=lambda pair: not pair[0].customer)
    several = {o.name for o, _ in referring if sum(1 for x, _ in referring if x.name == o.name) > 1}
    for other, via in referring:
        filters: dict[str, Any] = {via.name: rec.id}
        if other.name == ent.name:
            filters["id"] = {"ne": rec.id}  # a record pointing at itself is not related to itself
        page = records.search_records(conn, compiled, other.name, filters, sort="-created_at", page_size=RELATED_SHOWN)
        columns = [f for f in entity_pages.columns(other) if f.name != via.name][:RELATED_COLUMNS]
        names.prefetch(columns, [r.data for r in page.items])
        heading = f"{other.plural} ({via.label})" if other.name in several else other.plural
        found.append(Related(
            entity=other, via=via, heading=heading, columns=columns, total=page.total,
            rows=[{"id": r.id, "title": r.title or f"{other.label} without a name",
                   "cells": [widgets.html(r.data.get(f.name), f, names) for f in columns]} for r in page.items],
            new_url=f"/records/{other.name}/new?{via.name}={rec.id}",
            more_url=directory_url(other.name, via.name, rec.id) if page.total > RELATED_SHOWN else None,
            board_url=f"/board/{other.name}?{via.name}={rec.id}" if entity_pages.stages(other) else None))
    return found


# -- work on the record: tasks and projects ------------------------------------------------


def _projects(conn: sa.Connection, ent: Entity, rec: records.Record, names: widgets.Names) -> list[dict]:
    rows = [dict(r) for r in conn.execute(sa.select(projects_table).where(projects_table.c.entity == ent.name,
                                                                          projects_table.c.record_id == rec.id)
                                          .order_by(projects_table.c.created_at.desc())).mappings()]
    names.prefetch([_MANAGER], rows)
    return [{**p, "status_text": PROJECT_STATUS.get(p["status"], p["status"].capitalize()),
             "manager": widgets.text(p["manager_id"], _MANAGER, names) if p["manager_id"] else words.text(names.compiled.model.locale, "nobody yet")} for p in rows]


def _open_tasks(conn: sa.Connection, compiled: CompiledModel, ent: Entity, rec: records.Record, related: list[Related],
                project_ids: list[int], names: widgets.Names) -> tuple[list[dict], int]:
    """Open tasks about the record, about the records that refer to it, and of its projects; soonest due first."""
    t = tasks_table
    about = [sa.and_(t.c.entity == ent.name, t.c.record_id == rec.id)]
    for rel in related:
        if rel.total:
            table = compiled.metadata.tables[rel.entity.name]
            about.append(sa.and_(t.c.entity == rel.entity.name,
                                 t.c.record_id.in_(sa.select(table.c.id).where(table.c[rel.via.name] == rec.id))))
    if project_ids:
        about.append(t.c.project_id.in_(project_ids))
    where = sa.and_(t.c.status.in_(OPEN), sa.or_(*about))
    total = conn.execute(sa.select(sa.func.count()).select_from(t).where(where)).scalar_one()
    rows = [dict(r) for r in conn.execute(sa.select(t).where(where).order_by(t.c.due_at.is_(None), t.c.due_at, t.c.id)
                                          .limit(TASKS_SHOWN)).mappings()]
    names.prefetch([_ASSIGNEE], rows)
    titles = _titles(conn, compiled, {(r["entity"], r["record_id"]) for r in rows
                                      if r["entity"] and r["record_id"] and (r["entity"], r["record_id"]) != (ent.name, rec.id)})
    now = dt.datetime.now(dt.UTC)
    model = compiled.model
    shown = []
    for r in rows:
        due = aware(r["due_at"])
        other = (r["entity"], r["record_id"]) if (r["entity"], r["record_id"]) != (ent.name, rec.id) else None
        about_text = ""
        if other and other in titles:
            label = model.entities[other[0]].label if other[0] in model.entities else other[0]
            about_text = f"{label}: {titles[other]}"
        group = model.groups.get(r["group_name"]) if r["group_name"] else None
        shown.append({
            "id": r["id"], "title": task_title(r, model.locale, model), "status_text": STATUS_TEXT.get(r["status"], r["status"]),
            "assignee": widgets.text(r["assignee_id"], _ASSIGNEE, names) if r["assignee_id"] else
            (words.text(model.locale, "in the %(group)s queue", group=group.label if group else r["group_name"]) if r["group_name"]
             else words.text(model.locale, "nobody yet")),
            "due_text": widgets.when_text(due, names.zone, locale=names.compiled.model.locale) if due else words.text(model.locale, "no due date"),
            "overdue": due is not None and due < now, "about": about_text,
            "about_url": f"/records/{other[0]}/{other[1]}" if about_text else None})
    return shown, total


def _titles(conn: sa.Connection, compiled: CompiledModel, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Titles of the records tasks are about, one query per entity."""
    found: dict[tuple[str, int], str] = {}
    by_entity: dict[str, set[int]] = {}
    for entity, record_id in wanted:
        by_entity.setdefault(entity, set()).add(record_id)
    for entity, ids in by_entity.items():
        table = compiled.metadata.tables.get(entity)
        if table is not None:
            found.update({(entity, i): title for i, title in conn.execute(sa.select(table.c.id, table.c.title).where(table.c.id.in_(ids)))})
    return found


# -- starting processes by hand (records/_start.html) --------------------------------------------


def manual_starts(compiled: CompiledModel, ent: Entity, rec: records.Record) -> list[dict]:
    """The processes with a manual trigger on this kind of record: their label, what they do, whether they run as a
    project, where their input form is (those with inputs) and a request id (so a double click starts one)."""
    shown = []
    for name in startable(compiled, ent.name):
        proc = compiled.model.processes[name]
        url = f"/records/{ent.name}/{rec.id}/start/{name}"
        shown.append({"name": name, "label": proc.label, "description": proc.description, "project": proc.project is not None,
                      "url": url, "form_url": url if proc.inputs else None, "request_id": str(uuid.uuid4())})
    return shown


# -- contact history --------------------------------------------------------------------


def history(conn: sa.Connection, compiled: CompiledModel, ent: Entity, rec: records.Record, names: widgets.Names) -> list[dict]:
    """The record's contact history, newest first: when (local), what, who did it, through which form, and a link."""
    model = compiled.model
    entries = list_history(conn, ent.name, rec.id, limit=HISTORY_SHOWN)
    rows = [{"user_id": e.user_id} for e in entries]
    names.prefetch([_WHO], rows)
    task_ids = {int(e.data["task_id"]) for e in entries if isinstance(e.data, dict) and isinstance(e.data.get("task_id"), int)}
    task_forms = dict(conn.execute(sa.select(tasks_table.c.id, tasks_table.c.form).where(tasks_table.c.id.in_(task_ids))).all()) \
        if task_ids else {}
    changed = [e.data for e in entries if e.kind == "change" and isinstance(e.data, dict)]
    names.prefetch(ent.all_fields(), [side for d in changed for side in (d.get("before"), d.get("after")) if isinstance(side, dict)])
    return [_entry_view(e, ent, model, names, task_forms) for e in entries]


def _changes(ent: Entity, data: dict, names: widgets.Names) -> list[tuple[str, str, str]]:
    """(field label, before, after) as display text, from a change entry's stored values."""
    before, after = data.get("before"), data.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    by_name = {f.name: f for f in ent.all_fields()}
    return [(by_name[k].label, widgets.text(before.get(k), by_name[k], names) or "(empty)",
             widgets.text(after.get(k), by_name[k], names) or "(empty)") for k in after if k in by_name]


def _entry_view(e: HistoryEntry, ent: Entity, model, names: widgets.Names, task_forms: dict[int, str | None]) -> dict:
    data = e.data if isinstance(e.data, dict) else {}
    summary, changes = e.summary, []
    if e.kind == "change" and summary.startswith("Changed "):
        # the store's own summary spells raw values (choice values, ids): say it again in display text; a summary
        # its writer chose (a board move, a form's "Created from ...") is shown as written
        changes = _changes(ent, data, names)
        summary = "Changed" if changes else summary
    task_id = data.get("task_id") if isinstance(data.get("task_id"), int) else None
    form_name = e.form or (data.get("form") if isinstance(data.get("form"), str) else None) or task_forms.get(task_id)
    form = model.forms.get(form_name) if form_name else None
    link = None
    if task_id:
        link = (f"/tasks/{task_id}", "the task")
    elif isinstance(data.get("project_id"), int):
        link = (f"/projects/{data['project_id']}", "the project")
    return {"when": widgets.when_text(e.occurred_at, names.zone, locale=names.compiled.model.locale), "kind": KIND_TEXT.get(e.kind, e.kind.replace("_", " ").capitalize()),
            "summary": summary, "changes": changes, "who": widgets.text(e.user_id, _WHO, names) if e.user_id else words.text(names.compiled.model.locale, "Tailor (automatic)"),
            "form": form.label if form else None, "link": link}
