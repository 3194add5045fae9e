"""Who may hold a task: the one rule every reassignment follows (the web, the API and escalation ladders).

A task may go to an active user who can log in and whose roles let them work on tasks
(`manage_own_tasks`, or `admin`). A customer's user (linked to their company, or with a role granting
`portal`) may hold only tasks of a project whose team they are on: their company's work, never another
customer's.
Permissions come from the user's own roles, as the web app grants them (`admin/access.py`).
"""
from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa

from engine.errors import TailorError
from engine.model import Model
from .schema import project_members, users

MAX_ID = 2**63 - 1  # the largest id a BIGINT holds: anything above names nobody (and SQLite could not even bind it)


class NotAHolder(TailorError):
    """This user may not hold the task; the message says why, naming them."""


def _permissions(model: Model, roles: Iterable[str]) -> set[str]:
    return {p for r in roles or () if r in model.roles for p in model.roles[r].permissions}


def _why_not(row: Any, model: Model, on_project: bool) -> str | None:
    if not row.active:
        return f"{row.name} is deactivated."
    perms = _permissions(model, row.roles)
    if ("portal" in perms or row.company_id is not None) and not on_project:
        return f"{row.name} is a customer's user and is not on this task's project team."
    if not {"manage_own_tasks", "admin"} & perms:
        return f"{row.name} may not work on tasks."
    if row.password_hash is None:
        return f"{row.name} cannot log in (an API-only account), so could never see the task."
    return None


def _rows(conn: sa.Connection, user_ids: list[int]) -> list[Any]:
    q = sa.select(users.c.id, users.c.name, users.c.roles, users.c.active, users.c.password_hash, users.c.company_id).where(
        users.c.id.in_(user_ids))
    return list(conn.execute(q))


def _on_project(conn: sa.Connection, task: dict, user_ids: list[int]) -> set[int]:
    if not task.get("project_id") or not user_ids:
        return set()
    q = sa.select(project_members.c.user_id).where(project_members.c.project_id == task["project_id"],
                                                   project_members.c.user_id.in_(user_ids))
    return set(conn.execute(q).scalars())


def valid_id(value: Any) -> bool:
    """Whether `value` can be a user id at all (a whole number a BIGINT holds; not a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def check(conn: sa.Connection, model: Model, user_id: Any, task: dict) -> str:
    """The name of the user who may hold `task`; NotAHolder saying why not otherwise."""
    if not valid_id(user_id):
        raise NotAHolder("There is no such user.")
    found = _rows(conn, [user_id])
    if not found:
        raise NotAHolder("There is no such user.")
    row = found[0]
    why = _why_not(row, model, row.id in _on_project(conn, task, [row.id]))
    if why:
        raise NotAHolder(why)
    return row.name


def refusals(conn: sa.Connection, model: Model, user_ids: list[int], task: dict) -> dict[int, str]:
    """Why each of `user_ids` who may not hold `task` may not (naming them); those who may are left out."""
    ids = [u for u in user_ids if valid_id(u)]
    if not ids:
        return {u: "There is no such user." for u in user_ids}
    on_project = _on_project(conn, task, ids)
    rows = {r.id: r for r in _rows(conn, ids)}
    out = {}
    for u in user_ids:
        why = _why_not(rows[u], model, u in on_project) if u in rows else "There is no such user."
        if why:
            out[u] = why
    return out


def eligible(conn: sa.Connection, model: Model, user_ids: list[int], task: dict) -> list[int]:
    """Those of `user_ids` who may hold `task`, in the order given."""
    refused = refusals(conn, model, user_ids, task) if user_ids else {}
    return [u for u in user_ids if u not in refused]


def permissions(model: Model, roles: Iterable[str]) -> set[str]:
    """What these roles allow (the web app grants the same: `admin/access.py`)."""
    return _permissions(model, roles)


def on_team(conn: sa.Connection, model: Model, user_ids: list[int]) -> dict[int, str | None]:
    """For each of `user_ids` (the unknown left out): why they could not hold a project's tasks even once on its team,
    or None if they could. Whom a project may take on (`runtime.projects`)."""
    ids = [u for u in user_ids if valid_id(u)]
    return {r.id: _why_not(r, model, True) for r in _rows(conn, ids)} if ids else {}
