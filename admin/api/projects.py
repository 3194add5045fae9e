"""Projects and alerts over the API."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from runtime.schema import alerts, project_members, projects, tasks

from ..access import allowed
from ..deps import CompiledDep, Conn
from .auth import ApiPermitted, ApiUser
from .common import Moment, row_json
from .problems import problems
from .routing import ApiRoute

router = APIRouter(tags=["projects and alerts"], route_class=ApiRoute)


class ProjectOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # every column of the project row

    id: int
    title: str
    entity: str | None
    record_id: int | None
    manager_id: int | None
    status: str
    created_at: Moment
    open_tasks: int = Field(description="its tasks that are open or awaiting approval")


class AlertOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # every column of the alert row

    id: int
    task_id: int | None
    level: int = Field(description="the escalation level that raised it")
    recipients: list[int] = Field(description="ids of the users it was raised for")
    message: str
    entity: str | None
    record_id: int | None
    due_at: Moment | None
    raised_at: Moment


@router.get("/projects", response_model=list[ProjectOut], responses=problems(403))
def my_projects(user: ApiPermitted("project_access"), conn: Conn, compiled: CompiledDep) -> list[dict]:
    """Projects the caller may see: all with staff project access, else those they manage or are on."""
    q = sa.select(projects).order_by(projects.c.created_at.desc())
    if not allowed(compiled.model, user, "access"):
        mine = sa.select(project_members.c.project_id).where(project_members.c.user_id == user["id"])
        q = q.where(sa.or_(projects.c.manager_id == user["id"], projects.c.id.in_(mine)))
    rows = conn.execute(q.limit(500)).mappings().all()
    counts = dict(conn.execute(sa.select(tasks.c.project_id, sa.func.count()).where(
        tasks.c.project_id.in_([r["id"] for r in rows]), tasks.c.status.in_(("open", "awaiting_approval"))).group_by(tasks.c.project_id)).all())
    return [{**row_json(dict(r)), "open_tasks": counts.get(r["id"], 0)} for r in rows]


@router.get("/alerts", response_model=list[AlertOut], responses=problems(403))
def my_alerts(user: ApiUser, conn: Conn) -> list[dict]:
    """Alerts raised for the caller that nobody has acknowledged yet, newest first."""
    rows = conn.execute(sa.select(alerts).where(alerts.c.acknowledged_at.is_(None)).order_by(alerts.c.raised_at.desc()).limit(500)).mappings().all()
    return [row_json(dict(r)) for r in rows if user["id"] in (r["recipients"] or [])]
