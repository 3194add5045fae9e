"""The alerts inbox (the alerts sent to me, about my groups' tasks, in projects I manage: runtime.alertbox decides), a
page at a time, and acknowledging an alert."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from engine.compiler import CompiledModel
from engine.labels import task_title
from forms.widgets import when_text, zone_of
from runtime import alertbox
from runtime import tasks as task_service

from ...access import allowed
from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, Staff
from ..finders import MAX_ID
from ..pages import flash, redirect, render
from ..pagewords import said

router = APIRouter(include_in_schema=False)


def inbox_page(conn: sa.Connection, compiled: CompiledModel, user: dict, params) -> alertbox.Inbox:
    """The page of the inbox `?show=` and `?page=` ask for (runtime.alertbox decides whose alerts), each alert with its
    raise time in the viewer's zone and its task's title in the page's language."""
    show = str(params.get("show") or "open")
    found = alertbox.inbox(conn, user["id"], allowed(compiled.model, user, "set_alerts"), show,
                           alertbox.page_number(params.get("page")))
    zone = zone_of(compiled.model, user)
    for a in found.rows:
        a["raised_text"] = when_text(a["raised_at"], zone, locale=compiled.model.locale)
        a["title"] = task_title(a, compiled.model.locale, compiled.model) if a["task_id"] is not None else None
    return found


def may_acknowledge(conn: sa.Connection, compiled: CompiledModel, user: dict, alert_id: int) -> bool:
    """Whoever sees the alert in their inbox (runtime.alertbox: a recipient, a manager of the task's group, the
    project's manager, or whoever sets alerts)."""
    seen = alertbox.may_see(conn, user["id"], allowed(compiled.model, user, "set_alerts"), alert_id)
    if seen is None:
        raise HTTPException(404, "There is no such alert.")
    return seen


def _back(data) -> str:
    """Where acknowledging leads: the inbox page the form was sent from, or My work (whose list has the form too)."""
    show, page = str(data.get("show") or ""), alertbox.page_number(str(data.get("page") or ""))
    if show not in alertbox.SHOWS:
        return "/"
    return f"/alerts?show={show}" + (f"&page={page}" if page > 1 else "")


@router.get("/alerts", response_class=HTMLResponse)
def alerts_inbox(request: Request, user: Staff, conn: Conn, compiled: CompiledDep):
    return render(request, "alerts/alerts.html", user=user, inbox=inbox_page(conn, compiled, user, request.query_params))


@router.post("/alerts/{alert_id}/acknowledge")
def alert_acknowledge(request: Request, alert_id: int, user: Staff, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    if not 0 < alert_id <= MAX_ID:
        raise HTTPException(404, "There is no such alert.")
    with engine.begin() as conn:
        if not may_acknowledge(conn, compiled, user, alert_id):
            raise HTTPException(403, "This alert was not sent to you.")
        task_service.acknowledge_alert(conn, alert_id, user["id"])
    flash(request, said(request, "Alert acknowledged."))
    return redirect(_back(data))
