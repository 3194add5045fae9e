"""A record's page (the customer's single view), its own fields, and deleting it."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from engine.compiler import CompiledModel
from forms import widgets
from runtime import records, words
from runtime.referrers import referrers as find_referrers

from ...access import allowed
from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, Permitted, Staff
from ..customer import manual_starts, single_view
from ..finders import entity_or_404, record_or_404
from ..pages import flash, redirect, render
from ..people import person_access

router = APIRouter(include_in_schema=False)


def record_view(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, entity: str, record_id,
                status: int = 200, errors: dict | None = None, typed: dict | None = None) -> HTMLResponse:
    """The record's page, the customer's single view: its fields, links, related records, open work and contact history."""
    model = compiled.model
    ent = entity_or_404(compiled, entity)
    rec = record_or_404(conn, compiled, entity, record_id)
    view = single_view(conn, compiled, ent, rec, widgets.zone_of(model, user))
    shown_forms = [f for f in model.forms.values() if f.entity == entity and f.contact]
    return render(request, "records/record.html", user=user, status=status, record=rec, entity=ent, view=view, forms=shown_forms,
                  errors=errors or {}, typed=typed or {}, can_edit=allowed(model, user, "edit_records"),
                  can_add_field=ent.record_fields.allowed and allowed(model, user, "add_record_fields"),
                  can_delete=allowed(model, user, "delete_records"), field_types=ent.record_fields.types,
                  access=person_access(conn, compiled, rec) if entity == "person" and allowed(model, user, "admin") else None,
                  starts=manual_starts(compiled, ent, rec) if allowed(model, user, "generate_tasks") else [])


@router.get("/records/{entity}/{record_id}", response_class=HTMLResponse)
def record_page(request: Request, entity: str, record_id: str, user: Staff, conn: Conn, compiled: CompiledDep):
    return record_view(request, conn, compiled, user, entity, record_id)


# Adding, editing and removing a record's own fields: routes/record_edit.py (with the new and edit pages).


def delete_view(request: Request, conn, compiled: CompiledModel, user: dict, entity: str, record_id, status: int = 200,
                problem: str | None = None, referrers: list[str] | None = None) -> HTMLResponse:
    """Ask before deleting, and say up front what would stop it."""
    rec = record_or_404(conn, compiled, entity, record_id)
    if referrers is None:
        referrers = find_referrers(conn, compiled, entity, rec.id)
    return render(request, "records/record_delete.html", user=user, status=status, record=rec, entity=compiled.model.entities[entity],
                  problem=problem, referrers=referrers)


@router.get("/records/{entity}/{record_id}/delete", response_class=HTMLResponse)
def record_delete_page(request: Request, entity: str, record_id: str, user: Permitted("delete_records"), conn: Conn, compiled: CompiledDep):
    entity_or_404(compiled, entity)
    return delete_view(request, conn, compiled, user, entity, record_id)


@router.post("/records/{entity}/{record_id}/delete", response_class=HTMLResponse)
def record_delete(request: Request, entity: str, record_id: str, user: Permitted("delete_records"), data: CsrfForm, engine: EngineDep,
                  compiled: CompiledDep):
    ent = entity_or_404(compiled, entity)
    locale = request.state.locale  # the page's language
    noun = words.noun(locale, ent.label)
    with engine.connect() as conn:
        rec = record_or_404(conn, compiled, entity, record_id)
    try:
        version = int(str(data.get("row_version", "")))
    except ValueError:
        raise HTTPException(400, "Open the record's delete page and confirm there.") from None
    try:
        with engine.begin() as conn:
            gone = records.delete_record(conn, compiled, entity, rec.id, user["id"], expected_version=version)
    except records.RecordNotFound:
        raise HTTPException(404, words.text(locale, "There is no %(entity)s with that number (it may have been deleted already).",
                                            entity=noun)) from None
    except records.Conflict:
        with engine.connect() as conn:
            return delete_view(request, conn, compiled, user, entity, rec.id, 409, words.text(
                locale, "Someone changed this %(entity)s while you were looking at it. Nothing was deleted; check the details again.", entity=noun))
    except records.DeletionRefused as exc:
        with engine.connect() as conn:
            return delete_view(request, conn, compiled, user, entity, rec.id, 409, str(exc), exc.referrers)
    flash(request, words.text(locale, "Deleted %(entity)s '%(record)s'. Its last details are kept in the audit log.", entity=noun, record=gone.title))
    return redirect(f"/directory/{entity}")
