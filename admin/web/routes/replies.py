"""Staff answer a customer's request from its task page or its record page: a reply to the customer (shown in the
portal and emailed) or an internal comment (staff only).

The boxes are `tasks/_reply.html` and `records/_reply.html`; what they show is filled in here for every render of
those pages (`pages.fills`), so the task and record routes need not know of them. Writing the reply, notifying and
emailing is `runtime.conversation`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from engine.compiler import CompiledModel
from engine.model import Model
from forms.widgets import zone_of
from runtime import records
from runtime.conversation import ReplyRefused, add_reply, company_of, contacts

from ...access import allowed, may_act_on_task
from ...deps import CompiledDep, CsrfForm, EngineDep, Permitted
from .. import portalview
from ..finders import entity_or_404, record_or_404, task_or_404
from ..pages import fills, flash, redirect
from ..pagewords import locale, said
from .records import record_view
from .tasks import task_page

router = APIRouter(include_in_schema=False)
CHOICES = ("public", "internal")
OPEN = ("open", "awaiting_approval")
MESSAGES_SHOWN = 20


@dataclass
class ReplyBox:
    """What a reply box shows: where it posts, the conversation so far, whom a reply is emailed to, and what was typed."""

    action: str
    request_id: str
    messages: list
    emailed_to: str        # "Jane Doe (jane@…)", in words; '' when nobody gets it by email
    company: str
    text: str = ""
    errors: dict = field(default_factory=dict)


def may_reply_on_task(model: Model, user: dict, task: dict) -> bool:
    """Staff who may work on the task (its assignee, or its group while nobody has it) while it is open."""
    return allowed(model, user, "access") and task["status"] in OPEN and may_act_on_task(user, task, task.get("_groups") or set())


def may_reply_on_record(model: Model, user: dict) -> bool:
    """Staff who may work on records (change them)."""
    return allowed(model, user, "access") and allowed(model, user, "edit_records")


def _box(request: Request, compiled: CompiledModel, user: dict, entity: str, record_id: int, action: str) -> ReplyBox:
    typed = getattr(request.state, "reply", None) or {}
    with request.app.state.services.engine.connect() as conn:
        rec = records.get_record(conn, compiled, entity, record_id)
        zone = zone_of(compiled.model, user)
        messages = portalview.conversation(conn, compiled, rec, user, zone, locale(request), internal=True)[-MESSAGES_SHOWN:]
        people = contacts(conn, compiled, rec)
        company = company_of(compiled, rec)
        company_title = records.get_record(conn, compiled, "company", company).title if company else ""
    return ReplyBox(action, str(uuid.uuid4()), messages, ", ".join(f"{name} ({address})" for name, address in people), company_title,
                    typed.get("text", ""), typed.get("errors", {}))


@fills("tasks/task.html")
def task_reply_box(request: Request, context: dict) -> dict:
    task, user, compiled = context.get("task") or {}, context.get("user"), request.app.state.compiled
    if user is None or not task.get("record_id") or not portalview.is_request(compiled, task.get("entity")) \
            or not may_reply_on_task(compiled.model, user, task):
        return {"reply": None}
    return {"reply": _box(request, compiled, user, task["entity"], task["record_id"], f"/tasks/{task['id']}/reply")}


@fills("records/record.html")
def record_reply_box(request: Request, context: dict) -> dict:
    rec, user, compiled = context.get("record"), context.get("user"), request.app.state.compiled
    if user is None or rec is None or not portalview.is_request(compiled, rec.entity) or not may_reply_on_record(compiled.model, user):
        return {"reply": None}
    return {"reply": _box(request, compiled, user, rec.entity, rec.id, f"/records/{rec.entity}/{rec.id}/reply")}


def _write(request: Request, engine: sa.Engine, compiled: CompiledModel, entity: str, record_id: int, data, user: dict) -> tuple[str, dict]:
    """Write the reply the form sent: (what to say it did, {}) or ('', a message per input) with nothing written; in the
    page's language."""
    choice = str(data.get("visibility", ""))
    text = str(data.get("text", ""))
    if choice not in CHOICES:
        return "", {"visibility": said(request, "Choose whether the customer sees this: reply to the customer, or add an internal comment.")}
    key = str(data.get("request_id") or "").strip()[:200] or str(uuid.uuid4())
    try:
        with engine.begin() as conn:
            add_reply(conn, compiled, entity, record_id, text, user, public=choice == "public", key=key)
            people = contacts(conn, compiled, records.get_record(conn, compiled, entity, record_id)) if choice == "public" else []
    except ReplyRefused as exc:
        return "", {"text": str(exc)}
    if choice == "internal":
        return said(request, "Internal comment added: only staff see it."), {}
    if people:
        return said(request, "Reply sent to the customer: it is on their request's page in the portal and emailed to %(names)s.",
                    names=", ".join(name for name, _ in people)), {}
    return said(request, "Reply sent to the customer: it is on their request's page in the portal."), {}


@router.post("/tasks/{task_id}/reply", response_class=HTMLResponse)
def task_reply(request: Request, task_id: int, user: Permitted("manage_own_tasks"), data: CsrfForm, engine: EngineDep,
               compiled: CompiledDep):
    with engine.connect() as conn:
        task = task_or_404(conn, compiled, task_id, user)
    if not task["record_id"] or not portalview.is_request(compiled, task["entity"]):
        raise HTTPException(404, said(request, "This task is not about a customer's request, so there is nobody to reply to."))
    if not may_reply_on_task(compiled.model, user, task):
        raise HTTPException(403, said(request, "Only whoever works on this open task may answer the customer from it."))
    done, errors = _write(request, engine, compiled, task["entity"], task["record_id"], data, user)
    if errors:
        request.state.reply = {"text": str(data.get("text", "")), "errors": errors}
        with engine.connect() as conn:
            return task_page(request, conn, compiled, user, task_or_404(conn, compiled, task_id, user), 422)
    flash(request, done)
    return redirect(f"/tasks/{task_id}#reply-h")


@router.post("/records/{entity}/{record_id}/reply", response_class=HTMLResponse)
def record_reply(request: Request, entity: str, record_id: str, user: Permitted("edit_records"), data: CsrfForm, engine: EngineDep,
                 compiled: CompiledDep):
    entity_or_404(compiled, entity)
    with engine.connect() as conn:
        rec = record_or_404(conn, compiled, entity, record_id)
    if not portalview.is_request(compiled, entity):
        raise HTTPException(404, said(request, "Only a customer's request has a conversation with the customer."))
    if not may_reply_on_record(compiled.model, user):
        raise HTTPException(403, said(request, "Only staff may answer a customer."))
    done, errors = _write(request, engine, compiled, entity, rec.id, data, user)
    if errors:
        request.state.reply = {"text": str(data.get("text", "")), "errors": errors}
        with engine.connect() as conn:
            return record_view(request, conn, compiled, user, entity, rec.id, 422)
    flash(request, done)
    return redirect(f"/records/{entity}/{rec.id}#reply-h")
