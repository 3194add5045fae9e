"""Projects and alerts over the API."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter

from runtime.schema import alerts, project_members, projects, tasks

from ..access import allowed
from ..web.deps import CompiledDep, Conn
from .auth import ApiPermitted, ApiUser
from .common import row_json

router = APIRouter(tags=["projects and alerts"])


@router.get("/projects")
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


@router.get("/alerts")
def my_alerts(user: ApiUser, conn: Conn) -> list[dict]:
    rows = conn.execute(sa.select(alerts).where(alerts.c.acknowledged_at.is_(None)).order_by(alerts.c.raised_at.desc()).limit(500)).mappings().all()
    return [row_json(dict(r)) for r in rows if user["id"] in (r["recipients"] or [])]
