"""My work: the home page of staff (my tasks, my groups' waiting tasks, approvals, alerts, my team's tasks)."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from engine.compiler import CompiledModel
from forms.widgets import zone_of
from runtime.schema import alerts, group_members, tasks

from ...access import allowed, may_approve
from ...deps import CompiledDep, Conn, Staff
from ..pages import render, task_view

router = APIRouter(include_in_schema=False)
OPEN = ("open", "awaiting_approval")


def my_work(conn: sa.Connection, compiled: CompiledModel, user: dict) -> dict:
    """Everything the home page lists for `user`."""
    model = compiled.model
    by_due = (tasks.c.due_at.is_(None), tasks.c.due_at)
    groups = list(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user["id"])).scalars())
    mine = conn.execute(sa.select(tasks).where(tasks.c.status == "open", sa.or_(
        tasks.c.assignee_id == user["id"], sa.and_(tasks.c.assignee_id.is_(None), tasks.c.group_name.in_(groups))))
        .order_by(*by_due)).mappings().all()
    waiting = conn.execute(sa.select(tasks).where(tasks.c.status == "awaiting_approval")).mappings().all()
    raised = conn.execute(sa.select(alerts).where(alerts.c.acknowledged_at.is_(None)).order_by(alerts.c.raised_at.desc()).limit(200)).mappings().all()
    company = compiled.metadata.tables.get("company")
    companies = conn.execute(sa.select(company.c.id, company.c.title).order_by(company.c.title).limit(50)).mappings().all() if company is not None else []
    assigned = conn.execute(sa.select(tasks).where(tasks.c.created_by == user["id"], tasks.c.status.in_(OPEN),
                                                   sa.or_(tasks.c.assignee_id.is_(None), tasks.c.assignee_id != user["id"]))
                            .order_by(*by_due).limit(100)).mappings().all()
    monitored = []
    if allowed(model, user, "monitor_tasks") and groups:
        members = list(conn.execute(sa.select(group_members.c.user_id).where(group_members.c.group_name.in_(groups),
                                                                           group_members.c.user_id != user["id"])).scalars())
        monitored = conn.execute(sa.select(tasks).where(tasks.c.assignee_id.in_(members), tasks.c.status.in_(OPEN))
                                 .order_by(*by_due).limit(100)).mappings().all()
    zone = zone_of(model, user)
    approvals = [t for t in waiting if may_approve(model, user, dict(t), set(groups), None)]
    return {"mine": [task_view(dict(t), zone) for t in mine], "approvals": approvals, "assigned": [task_view(dict(t), zone) for t in assigned],
            "monitored": [task_view(dict(t), zone) for t in monitored], "alerts": [a for a in raised if user["id"] in (a["recipients"] or [])],
            "companies": companies}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: Staff, conn: Conn, compiled: CompiledDep):
    return render(request, "work/home.html", user=user, **my_work(conn, compiled, user))
