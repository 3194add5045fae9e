"""The alerts inbox of managers and project managers, and acknowledging an alert."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from engine.compiler import CompiledModel
from engine.labels import task_title
from forms.widgets import zone_of
from runtime import tasks as task_service
from runtime.schema import alerts, group_members, projects, tasks

from ...access import allowed
from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, Staff
from ..finders import MAX_ID
from ..pages import due_text, flash, redirect, render

router = APIRouter(include_in_schema=False)


def inbox(conn: sa.Connection, compiled: CompiledModel, user: dict) -> list[dict]:
    """Alerts sent to `user`, about their groups' tasks, or in projects they manage (all for `set_alerts`)."""
    groups = list(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user["id"],
                                                                          group_members.c.manager)).scalars())
    managed = list(conn.execute(sa.select(projects.c.id).where(projects.c.manager_id == user["id"])).scalars())
    rows = conn.execute(sa.select(alerts, tasks.c.title, tasks.c.titles, tasks.c.process, tasks.c.step_id, tasks.c.group_name,
                                  tasks.c.status.label("task_status"))
                        .join(tasks, tasks.c.id == alerts.c.task_id)
                        .order_by(alerts.c.acknowledged_at.is_not(None), alerts.c.raised_at.desc()).limit(300)).mappings().all()
    see_all = allowed(compiled.model, user, "set_alerts")
    shown = [dict(a) for a in rows if see_all or user["id"] in (a["recipients"] or []) or a["group_name"] in groups
             or a["project_id"] in managed]
    zone = zone_of(compiled.model, user)
    for a in shown:
        a["raised_text"] = due_text(a["raised_at"], zone)
        a["title"] = task_title(a, compiled.model.locale, compiled.model)
    return shown


def may_acknowledge(conn: sa.Connection, compiled: CompiledModel, user: dict, alert_id: int) -> bool:
    """A recipient, a manager of the task's group, the project's manager, or whoever sets alerts."""
    row = conn.execute(sa.select(alerts.c.recipients, tasks.c.group_name, tasks.c.project_id)
                       .join(tasks, tasks.c.id == alerts.c.task_id, isouter=True).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise HTTPException(404, "There is no such alert.")
    if user["id"] in (row.recipients or []) or allowed(compiled.model, user, "set_alerts"):
        return True
    manages_group = conn.execute(sa.select(group_members.c.user_id).where(
        group_members.c.group_name == row.group_name, group_members.c.user_id == user["id"], group_members.c.manager)).first()
    manages_project = conn.execute(sa.select(projects.c.id).where(projects.c.id == row.project_id,
                                                                  projects.c.manager_id == user["id"])).first()
    return manages_group is not None or manages_project is not None


@router.get("/alerts", response_class=HTMLResponse)
def alerts_inbox(request: Request, user: Staff, conn: Conn, compiled: CompiledDep):
    return render(request, "alerts/alerts.html", user=user, alerts=inbox(conn, compiled, user))


@router.post("/alerts/{alert_id}/acknowledge")
def alert_acknowledge(request: Request, alert_id: int, user: Staff, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    if not 0 < alert_id <= MAX_ID:
        raise HTTPException(404, "There is no such alert.")
    with engine.begin() as conn:
        if not may_acknowledge(conn, compiled, user, alert_id):
            raise HTTPException(403, "This alert was not sent to you.")
        task_service.acknowledge_alert(conn, alert_id, user["id"])
    flash(request, "Alert acknowledged.")
    return redirect("/")
