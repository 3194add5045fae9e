"""Projects and alerts over the API: the caller's projects, one project with its team, and changing the team."""
from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from runtime import alertbox
from runtime import projects as teams
from runtime.holders import MAX_ID
from runtime.schema import project_members, projects, tasks

from ..access import allowed, may_change_team, may_open_project
from ..deps import Conn, EngineDep
from .auth import ApiPermitted, ApiUser
from .common import ApiCompiled, Moment, id_or_404, row_json
from .problems import Problem, problems
from .routing import area_router

router = area_router("projects and alerts")


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


class ProjectDetail(ProjectOut):
    members: list[int] = Field(description="ids of the users on its team besides the manager")


class MemberIn(BaseModel):
    """Brings a user onto the project's team (they must be able to hold its tasks: staff, or the customer's own people)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": 12}]})

    user_id: Annotated[int, Field(strict=True, ge=1, le=MAX_ID)] = Field(description="the id of the user to bring onto the team")


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
def my_projects(user: ApiPermitted("project_access"), conn: Conn, compiled: ApiCompiled) -> list[dict]:
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
    rows, _ = alertbox.my_alerts(conn, user["id"], most=500)
    return [row_json(r) for r in rows]


def _project(conn, compiled, user: dict, project_id: int, *, change: bool = False) -> dict:
    """The project, if the caller may open it (and change its team, with `change`); a problem otherwise."""
    project = teams.get(conn, id_or_404(project_id, "project"))
    if project is None:
        raise Problem(404, "Not found", f"There is no project {project_id}.")
    member = teams.is_member(conn, project["id"], user["id"])
    if not may_open_project(compiled.model, user, project, member):
        if not allowed(compiled.model, user, "access") and user.get("company_id") != teams.company_of(conn, compiled, project):
            raise Problem(404, "Not found", f"There is no project {project_id}.")  # another customer's: not even that it exists
        raise Problem(403, "Forbidden", "You are not on this project's team.")
    if change and not may_change_team(compiled.model, user, project, member):
        raise Problem(403, "Forbidden", "Only the project manager or someone who looks after projects changes its team.")
    return project


def _detail(conn, project: dict) -> dict:
    open_tasks = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
        tasks.c.project_id == project["id"], tasks.c.status.in_(teams.OPEN))).scalar_one()
    return {**row_json(project), "open_tasks": open_tasks, "members": teams.member_ids(conn, project["id"])}


@router.get("/projects/{project_id}", response_model=ProjectDetail, responses=problems(403, 404, 422))
def project(project_id: int, user: ApiPermitted("project_access"), conn: Conn, compiled: ApiCompiled) -> dict:
    """One project the caller may open (its manager, its members, staff with project access), with its team."""
    return _detail(conn, _project(conn, compiled, user, project_id))


@router.post("/projects/{project_id}/members", response_model=ProjectDetail, responses=problems(400, 403, 404, 413, 422))
def add_member(project_id: int, body: MemberIn, user: ApiPermitted("project_access"), engine: EngineDep, compiled: ApiCompiled) -> dict:
    """Bring someone onto the team: an active user who may hold the project's tasks (a customer's user: of its customer)."""
    with engine.begin() as conn:
        found = _project(conn, compiled, user, project_id, change=True)
        try:
            teams.add_member(conn, compiled, found, body.user_id, user["id"])
        except teams.TeamRefused as exc:
            raise Problem(422, "Cannot join the team", str(exc), errors={"user_id": str(exc)}) from None
        return _detail(conn, found)


@router.delete("/projects/{project_id}/members/{user_id}", response_model=ProjectDetail, responses=problems(403, 404, 409, 422))
def remove_member(project_id: int, user_id: int, user: ApiPermitted("project_access"), engine: EngineDep, compiled: ApiCompiled) -> dict:
    """Take someone off the team (the project manager stays)."""
    with engine.begin() as conn:
        found = _project(conn, compiled, user, project_id, change=True)
        if user_id == found["manager_id"]:
            raise Problem(409, "The manager stays", "The project manager stays on the team.")
        try:
            teams.remove_member(conn, found, user_id, user["id"])
        except teams.TeamRefused as exc:
            raise Problem(404, "Not found", str(exc)) from None
        return _detail(conn, found)
