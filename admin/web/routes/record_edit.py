"""New and edit pages of every entity's records, their own fields, and what the pages ask while someone types.

The pages are built from the entity (`admin/web/recordforms.py`) and saved through `admin/web/recordchanges.py`;
they work without scripts (a group's section appears once the page is saved or shown again), and
`static/groups.js` and `static/lookup.js` make groups and pickers follow the typing.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from engine.compiler import CompiledModel
from engine.model import Entity
from forms import widgets
from runtime import records, words

from ...deps import (
    CompiledDep,
    Conn,
    CsrfForm,
    EngineDep,
    Permitted,
    Services,
    ServicesDep,
)
from ...processes import started
from .. import recordchanges, recordforms
from ..finders import MAX_ID, entity_or_404, record_or_404
from ..pages import flash, redirect, render
from ..pagewords import said

router = APIRouter(include_in_schema=False)
Editor = Permitted("edit_records")
FieldAdder = Permitted("add_record_fields")


def _show(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, e: Entity, record: records.Record | None,
          status: int = 200, **ctx) -> HTMLResponse:
    """The new or edit page (again, with what was typed, when `ctx` carries it)."""
    ctx.setdefault("values", dict(record.data) if record else {})
    return render(request, "records/edit.html", user=user, status=status, **recordforms.page(conn, compiled, user, e, record, **ctx))


def _version(data) -> int:
    try:
        return int(str(data.get("row_version", "")))
    except ValueError:
        raise HTTPException(400, "Open the record's edit page and save it from there.") from None


@dataclass(frozen=True)
class Saved:
    """A saved record and the page to go to next."""

    record: records.Record
    url: str


async def _saved(services: Services, compiled: CompiledModel, outcome: Response | Saved) -> Response:
    """The page again when it was refused; else start the processes the change enqueued and go on."""
    if isinstance(outcome, Response):
        return outcome
    await started(services, compiled, outcome.record.starts)
    return redirect(outcome.url)


def _after_save(request: Request, e: Entity, rec: records.Record, typed: recordforms.Typed, done: str) -> str:
    """Where a saved page goes: back to the page when a group's section appeared with the save, else the record."""
    new = [g for g in e.groups if g.name in recordforms.holding_groups(e, {}, rec) and g.name not in typed.shown and g.fields]
    if new:
        locale = request.state.locale
        groups = words.text(locale, " and ").join(g.label for g in new)
        flash(request, f"{done} " + words.text(locale, "The %(groups)s fields now apply: fill them in below.", groups=groups))
        return f"/records/{e.name}/{rec.id}/edit#group-{new[0].name}"
    flash(request, done)
    return f"/records/{e.name}/{rec.id}"


@router.get("/records/{entity}/new", response_class=HTMLResponse)
def new_page(request: Request, entity: str, user: Editor, conn: Conn, compiled: CompiledDep):
    e = entity_or_404(compiled, entity)
    given = recordforms.read_query(e, request.query_params, widgets.zone_of(compiled.model, user))
    start = {**recordforms.defaults(e, set()), **given}
    values = {**recordforms.defaults(e, recordforms.holding_groups(e, start)), **given}
    return _show(request, conn, compiled, user, e, None, values=values)


@router.post("/records/{entity}/new", response_class=HTMLResponse)
async def new_save(request: Request, entity: str, user: Editor, data: CsrfForm, engine: EngineDep, compiled: CompiledDep,
                   services: ServicesDep):
    e = entity_or_404(compiled, entity)
    return await _saved(services, compiled, await run_in_threadpool(_create, request, engine, compiled, user, e, data))


def _create(request: Request, engine: sa.Engine, compiled: CompiledModel, user: dict, e: Entity, data) -> Response | Saved:
    typed = recordforms.read(e, data, widgets.zone_of(compiled.model, user))
    if not typed.errors:
        try:
            with engine.begin() as conn:
                rec = recordchanges.create(conn, compiled, e, typed, user)
            done = said(request, "Added %(entity)s '%(record)s'.", entity=words.noun(request.state.locale, e.label), record=rec.title)
            return Saved(rec, _after_save(request, e, rec, typed, done))
        except records.RecordInvalid as exc:
            typed.errors.update(exc.errors)
    with engine.connect() as conn:
        return _show(request, conn, compiled, user, e, None, 422, values=typed.values, inputs=typed.raw, errors=typed.errors)


@router.get("/records/{entity}/groups")
def groups_holding(request: Request, entity: str, user: Editor, compiled: CompiledDep) -> JSONResponse:
    """Which groups' sections apply to the values typed so far (the query string), for `groups.js`."""
    e = entity_or_404(compiled, entity)
    values = recordforms.read_query(e, request.query_params, widgets.zone_of(compiled.model, user))
    return JSONResponse({"holding": sorted(recordforms.holding_groups(e, values))})


@router.get("/records/{entity}/pick/{field}")
def pick(request: Request, entity: str, field: str, user: Editor, conn: Conn, compiled: CompiledDep, q: str = "") -> JSONResponse:
    """Search-as-you-type for a reference or user field: what it may pick, narrowed by the record's other values."""
    e = entity_or_404(compiled, entity)
    f = next((x for x in e.all_fields() if x.name == field and x.type in ("reference", "user")), None)
    if f is None:
        raise HTTPException(404, said(request, "%(entity)s has no field '%(field)s' to pick a record or a person for.",
                                            entity=e.label, field=field))
    if f.type == "user":
        return JSONResponse([{"id": i, "title": t} for i, t in recordforms.staff_options(conn, compiled.model, q[:200])])
    values = recordforms.read_query(e, request.query_params, widgets.zone_of(compiled.model, user))
    raw_id = request.query_params.get("id", "")
    record_id = int(raw_id) if raw_id.isdigit() and 0 < int(raw_id) <= MAX_ID else None
    found = recordforms.record_options(conn, compiled, e, f, values, record_id, q[:200])
    return JSONResponse([{"id": i, "title": t} for i, t in found])


@router.get("/records/{entity}/{record_id}/edit", response_class=HTMLResponse)
def edit_page(request: Request, entity: str, record_id: str, user: Editor, conn: Conn, compiled: CompiledDep):
    e = entity_or_404(compiled, entity)
    return _show(request, conn, compiled, user, e, record_or_404(conn, compiled, entity, record_id))


@router.post("/records/{entity}/{record_id}/edit", response_class=HTMLResponse)
async def edit_save(request: Request, entity: str, record_id: str, user: Editor, data: CsrfForm, engine: EngineDep,
                    compiled: CompiledDep, services: ServicesDep):
    e = entity_or_404(compiled, entity)
    return await _saved(services, compiled, await run_in_threadpool(_update, request, engine, compiled, user, e, record_id, data))


def _update(request: Request, engine: sa.Engine, compiled: CompiledModel, user: dict, e: Entity, record_id: str, data) -> Response | Saved:
    zone = widgets.zone_of(compiled.model, user)
    with engine.connect() as conn:
        rec = record_or_404(conn, compiled, e.name, record_id)
    version = _version(data)
    typed = recordforms.read(e, data, zone, rec)
    if not typed.errors:
        try:
            with engine.begin() as conn:
                saved = recordchanges.update(conn, compiled, e, rec.id, typed, version, user, widgets.Names(conn, compiled, zone))
            done = said(request, "Saved %(entity)s '%(record)s'.", entity=words.noun(request.state.locale, e.label),
                              record=saved.title)
            return Saved(saved, _after_save(request, e, saved, typed, done))
        except records.RecordInvalid as exc:
            typed.errors.update(exc.errors)
        except records.Conflict:
            return conflict_page(request, engine, compiled, user, e, rec.id, version, typed)
        except records.RecordNotFound:
            raise HTTPException(404, said(request, "This %(entity)s has been deleted meanwhile; nothing was saved.",
                                                entity=words.noun(request.state.locale, e.label))) from None
    with engine.connect() as conn:
        return _show(request, conn, compiled, user, e, rec, 422, values={**rec.data, **typed.values}, inputs=typed.raw,
                     errors=typed.errors, version=version)


def conflict_page(request: Request, engine: sa.Engine, compiled: CompiledModel, user: dict, e: Entity, record_id: int, version: int,
                  typed: recordforms.Typed | None = None) -> HTMLResponse:
    """The edit page refused because someone else saved first: what they changed, merged with what this person typed."""
    with engine.connect() as conn:
        current = record_or_404(conn, compiled, e.name, record_id)
        names = widgets.Names(conn, compiled, widgets.zone_of(compiled.model, user))
        changes = recordchanges.other_changes(conn, compiled, e, current, version, names)
        if typed is not None:
            recordchanges.keep_theirs(e, current, typed, changes, names)
        return _show(request, conn, compiled, user, e, current, 409, values={**current.data, **(typed.values if typed else {})},
                     inputs=typed.raw if typed else None, conflict=changes, version=current.row_version)


@router.post("/records/{entity}/{record_id}/fields", response_class=HTMLResponse)
def add_own_field(request: Request, entity: str, record_id: str, user: FieldAdder, data: CsrfForm, engine: EngineDep,
                  compiled: CompiledDep):
    e = entity_or_404(compiled, entity)
    zone = widgets.zone_of(compiled.model, user)
    typed = {k: str(data.get(k, "")) for k in ("label", "type", "value")}
    try:
        with engine.begin() as conn:
            rec = record_or_404(conn, compiled, entity, record_id)
            recordchanges.add_own_field(conn, compiled, e, rec.id, typed["label"], typed["type"], typed["value"], user,
                                        widgets.Names(conn, compiled, zone))
    except recordchanges.OwnFieldInvalid as exc:
        with engine.connect() as conn:
            return _show(request, conn, compiled, user, e, record_or_404(conn, compiled, entity, record_id), 422,
                         add={**typed, "errors": exc.errors})
    flash(request, said(request, "Added '%(field)s' to this %(entity)s.", field=typed["label"].strip(),
                              entity=words.noun(request.state.locale, e.label)))
    return redirect(f"/records/{entity}/{rec.id}/edit#own" if data.get("back") == "edit" else f"/records/{entity}/{rec.id}")


@router.post("/records/{entity}/{record_id}/fields/{name}/remove", response_class=HTMLResponse)
def remove_own_field(request: Request, entity: str, record_id: str, name: str, user: FieldAdder, data: CsrfForm, engine: EngineDep,
                     compiled: CompiledDep):
    e = entity_or_404(compiled, entity)
    with engine.connect() as conn:
        rec = record_or_404(conn, compiled, entity, record_id)
    version = _version(data)
    try:
        with engine.begin() as conn:
            label = recordchanges.remove_own_field(conn, compiled, e, rec.id, name, version, user,
                                                   widgets.Names(conn, compiled, widgets.zone_of(compiled.model, user)))
    except records.Conflict:
        return conflict_page(request, engine, compiled, user, e, rec.id, version)
    except records.RecordInvalid as exc:
        flash(request, "; ".join(exc.errors.values()).capitalize())
        return redirect(f"/records/{entity}/{rec.id}/edit#own")
    flash(request, said(request, "Removed '%(field)s' from this %(entity)s; its last value is kept in the audit log.",
                              field=label, entity=words.noun(request.state.locale, e.label)))
    return redirect(f"/records/{entity}/{rec.id}/edit#own")
