"""Project teams: who is on a project, who may join it, and bringing people on or taking them off.

A project is opened by its process (`runtime.tasks.open_project`, keyed by the workflow id). Its team is the
manager and the members. Whoever joins must be able to hold the project's tasks (`runtime.holders`, as if
already on the team): an active user who can log in and work on tasks; a customer's user only on a project
of their own company. The web and the API both go through here.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.compiler import CompiledModel
from engine.errors import TailorError

from . import holders
from .history import add_history
from .schema import OPEN_STATUSES, project_members, projects, tasks, users

OPEN = OPEN_STATUSES  # tasks someone still has to act on
STATUSES = ("open", "closed")


class TeamRefused(TailorError):
    """The team change cannot be made; the message says why, naming whom it is about."""


def get(conn: sa.Connection, project_id: Any) -> dict | None:
    """The project row, or None (also for a number no project can have)."""
    if not holders.valid_id(project_id):
        return None
    row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).mappings().first()
    return dict(row) if row else None


def opened_by(conn: sa.Connection, workflow_id: str) -> int | None:
    """The id of the project the process instance `workflow_id` opened, once it has (a project's key is its workflow id)."""
    return conn.execute(sa.select(projects.c.id).where(projects.c.key == workflow_id)).scalar()


def member_ids(conn: sa.Connection, project_id: int) -> list[int]:
    return list(conn.execute(sa.select(project_members.c.user_id).where(project_members.c.project_id == project_id)
                             .order_by(project_members.c.user_id)).scalars())


def is_member(conn: sa.Connection, project_id: int | None, user_id: int) -> bool:
    """Whether `user_id` is on the team of project `project_id` as a member (the manager is not a member)."""
    if not holders.valid_id(project_id) or not holders.valid_id(user_id):
        return False
    return conn.execute(sa.select(project_members.c.user_id).where(project_members.c.project_id == project_id,
                                                                   project_members.c.user_id == user_id)).first() is not None


def company_of(conn: sa.Connection, compiled: CompiledModel, project: dict) -> int | None:
    """The company a project is for: its record if that is a company, else the company its record refers to."""
    entity, record_id = project.get("entity"), project.get("record_id")
    if not entity or not record_id:
        return None
    if entity == "company":
        return record_id
    ent = compiled.model.entities.get(entity)
    via = next((f for f in ent.all_fields() if f.type == "reference" and f.entity == "company"), None) if ent else None
    table = compiled.metadata.tables.get(entity)
    if via is None or table is None:
        return None
    return conn.execute(sa.select(table.c[via.name]).where(table.c.id == record_id)).scalar()


def _refusals(conn: sa.Connection, compiled: CompiledModel, project: dict, rows: list[Any]) -> dict[int, str | None]:
    """Why each user (a row of id, name, company_id) could not join `project`; None for those who could."""
    could = holders.on_team(conn, compiled.model, [r.id for r in rows])
    company = None if all(r.company_id is None for r in rows) else company_of(conn, compiled, project)
    out: dict[int, str | None] = {}
    for r in rows:
        why = could.get(r.id, "There is no such user.")
        if why is None and r.company_id is not None and r.company_id != company:
            why = f"{r.name} is another customer's user; only people of this project's customer may join it."
        out[r.id] = why
    return out


def _people(conn: sa.Connection, where) -> list[Any]:
    return list(conn.execute(sa.select(users.c.id, users.c.name, users.c.username, users.c.company_id).where(where)
                             .order_by(users.c.name, users.c.id)))


def candidates(conn: sa.Connection, compiled: CompiledModel, project: dict, typed: str = "", limit: int = 20) -> list[dict]:
    """Whom the member picker offers: people who may join the project and are not on its team yet, by name.

    What was typed is found in the name or the user name, whatever the case: "Ann Sales" and "ann" both find Ann."""
    team = [*member_ids(conn, project["id"]), *([project["manager_id"]] if project["manager_id"] else [])]
    where = sa.and_(users.c.active, users.c.id.not_in(team) if team else sa.true())
    words = typed.replace("\x00", "").lower().split()  # a NUL is in no name (and PostgreSQL refuses it in a pattern)
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = sa.and_(where, sa.or_(sa.func.lower(users.c.name).like(pattern, escape="\\"),
                                      sa.func.lower(users.c.username).like(pattern, escape="\\")))
    found: list[dict] = []
    rows = _people(conn, where)
    refusals = _refusals(conn, compiled, project, rows)
    for r in rows:
        if refusals[r.id] is None:
            found.append({"id": r.id, "name": r.name})
            if len(found) >= limit:
                break
    return found


def add_member(conn: sa.Connection, compiled: CompiledModel, project: dict, user_id: Any, by: int) -> str:
    """Bring `user_id` onto the team; their name. TeamRefused says why not (unknown, deactivated, may not hold its tasks)."""
    if not holders.valid_id(user_id):
        raise TeamRefused("Choose someone from the list: there is no such user.")
    rows = _people(conn, users.c.id == user_id)
    if not rows:
        raise TeamRefused("Choose someone from the list: there is no such user.")
    person = rows[0]
    if user_id == project["manager_id"]:
        raise TeamRefused(f"{person.name} runs this project already.")
    if is_member(conn, project["id"], user_id):
        raise TeamRefused(f"{person.name} is on the team already.")
    why = _refusals(conn, compiled, project, rows)[person.id]
    if why:
        raise TeamRefused(f"{why} Nobody was added.")
    conn.execute(project_members.insert().values(project_id=project["id"], user_id=user_id))
    _history(conn, project, f"{person.name} joined the project team of {project['title']}", by)
    return person.name


def remove_member(conn: sa.Connection, project: dict, user_id: Any, by: int) -> str:
    """Take `user_id` off the team; their name. TeamRefused for the manager and for someone not on it."""
    rows = _people(conn, users.c.id == user_id) if holders.valid_id(user_id) else []
    if rows and user_id == project["manager_id"]:
        raise TeamRefused(f"{rows[0].name} is the project manager and stays on the team.")
    if not rows or not is_member(conn, project["id"], user_id):
        raise TeamRefused("That person is not on this project's team (someone may have taken them off already).")
    conn.execute(project_members.delete().where(project_members.c.project_id == project["id"], project_members.c.user_id == user_id))
    _history(conn, project, f"{rows[0].name} left the project team of {project['title']}", by)
    return rows[0].name


def _history(conn: sa.Connection, project: dict, summary: str, by: int) -> None:
    if project.get("entity") and project.get("record_id"):
        add_history(conn, project["entity"], project["record_id"], "project", summary, {"project_id": project["id"]}, by)


# -- the projects list ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectPage:
    """One page of the projects list: rows with their task counts, and how many there are in all."""

    rows: list[dict]
    total: int
    page: int
    per: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per))


def listing(conn: sa.Connection, *, user_id: int | None, status: str | None = None, page: int = 1, per: int = 25,
            now: dt.datetime | None = None) -> ProjectPage:
    """Projects newest first: those `user_id` runs or is on (None: all), of one status if given; with their open and
    late task counts."""
    where = []
    if user_id is not None:
        on = sa.select(project_members.c.project_id).where(project_members.c.user_id == user_id)
        where.append(sa.or_(projects.c.manager_id == user_id, projects.c.id.in_(on)))
    if status in STATUSES:
        where.append(projects.c.status == status)
    total = conn.execute(sa.select(sa.func.count()).select_from(projects).where(*where)).scalar_one()
    page = max(1, min(page, max(1, -(-total // per))))
    rows = [dict(r) for r in conn.execute(sa.select(projects).where(*where).order_by(projects.c.created_at.desc(), projects.c.id.desc())
                                          .limit(per).offset((page - 1) * per)).mappings()]
    ids = [r["id"] for r in rows]
    now = now or dt.datetime.now(dt.timezone.utc)
    counts: dict[int, tuple[int, int]] = {}
    if ids:
        late = sa.func.sum(sa.case((sa.and_(tasks.c.due_at.is_not(None), tasks.c.due_at < now), 1), else_=0))
        q = sa.select(tasks.c.project_id, sa.func.count(), late).where(tasks.c.project_id.in_(ids), tasks.c.status.in_(OPEN)) \
            .group_by(tasks.c.project_id)
        counts = {pid: (n, int(k or 0)) for pid, n, k in conn.execute(q)}
    for r in rows:
        r["open_tasks"], r["late_tasks"] = counts.get(r["id"], (0, 0))
    return ProjectPage(rows=rows, total=total, page=page, per=per)
