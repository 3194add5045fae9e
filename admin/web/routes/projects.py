"""A project's page (its manager, team, tasks and alerts) and building its team."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from forms.widgets import Names, zone_of
from runtime.schema import alerts, project_members, projects, tasks, users

from ...access import allowed
from ...deps import CompiledDep, Conn, CsrfForm, CurrentUser, EngineDep, Permitted
from ..finders import MAX_ID
from ..pages import flash, redirect, render, task_view

router = APIRouter(include_in_schema=False)


def project_or_404(conn: sa.Connection, project_id: int) -> dict:
    row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).mappings().first() if 0 < project_id <= MAX_ID else None
    if row is None:
        raise HTTPException(404, "There is no such project.")
    return dict(row)


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(request: Request, project_id: int, user: CurrentUser, conn: Conn, compiled: CompiledDep):
    model = compiled.model
    project = project_or_404(conn, project_id)
    members = set(conn.execute(sa.select(project_members.c.user_id).where(project_members.c.project_id == project_id)).scalars())
    staff_with_access = allowed(model, user, "access") and allowed(model, user, "project_access")
    if not (staff_with_access or user["id"] == project["manager_id"] or (user["id"] in members and allowed(model, user, "project_access"))):
        raise HTTPException(403, "You are not on this project.")
    project_tasks = conn.execute(sa.select(tasks).where(tasks.c.project_id == project_id).order_by(tasks.c.created_at)).mappings().all()
    project_alerts = conn.execute(sa.select(alerts).where(alerts.c.project_id == project_id).order_by(alerts.c.raised_at.desc())).mappings().all()
    names = dict(conn.execute(sa.select(users.c.id, users.c.name)).all())
    return render(request, "projects/project.html", user=user, project=project, manager=names.get(project["manager_id"], "nobody yet"),
                  can_add_member=project["manager_id"] == user["id"] or allowed(model, user, "admin"),
                  members=[names.get(m, m) for m in sorted(members)], tasks=[task_view(dict(t), zone_of(model, user)) for t in project_tasks],
                  alerts=project_alerts, names=names,
                  customer=Names(conn, compiled).title(project["entity"], project["record_id"]) if project["entity"] and project["record_id"] else None)


@router.post("/projects/{project_id}/members")
def project_add_member(request: Request, project_id: int, user: Permitted("project_access"), data: CsrfForm, engine: EngineDep,
                       compiled: CompiledDep):
    """The project manager (or an admin) brings someone onto the project team."""
    with engine.begin() as conn:
        project = project_or_404(conn, project_id)
        if project["manager_id"] != user["id"] and not allowed(compiled.model, user, "admin"):
            flash(request, "Only the project manager adds members; nobody was added.")
            return redirect(f"/projects/{project_id}")
        username = str(data.get("username", "")).strip()
        member = conn.execute(sa.select(users.c.id).where(users.c.username == username, users.c.active)).scalar()
        if member is None:
            flash(request, f"There is no user '{username}'.")
        elif not conn.execute(sa.select(project_members).where(project_members.c.project_id == project_id,
                                                               project_members.c.user_id == member)).first():
            conn.execute(project_members.insert().values(project_id=project_id, user_id=member))
            flash(request, f"{username} is on the project.")
    return redirect(f"/projects/{project_id}")
