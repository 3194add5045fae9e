"""Who may do what: role permissions from the definitions, API tokens."""
from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from engine.model import Model
from runtime import reports
from runtime.schema import users

# built once: a lookup runs on every request, and SQLAlchemy then finds its compiled form at once
_BY_TOKEN = sa.select(users).where(users.c.api_token_hash == sa.bindparam("token_hash"), users.c.active)
_BY_ID = sa.select(users).where(users.c.id == sa.bindparam("id"), users.c.active)


def permissions_of(model: Model, user: dict) -> set[str]:
    """Every permission the user's roles grant (admin implies all)."""
    return {p for r in user.get("roles") or [] if r in model.roles for p in model.roles[r].permissions}


def allowed(model: Model, user: dict, permission: str) -> bool:
    perms = permissions_of(model, user)
    return permission in perms or "admin" in perms


def new_token() -> tuple[str, str]:
    """(token to show once, hash to store): tokens are long random secrets, so a fast hash is enough."""
    token = "tl_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_user(conn: sa.Connection, token: str) -> dict | None:
    """The active user whose API token this is, or None."""
    row = conn.execute(_BY_TOKEN, {"token_hash": token_hash(token)}).mappings().first()
    return dict(row) if row else None


def active_user(conn: sa.Connection, user_id: int) -> dict | None:
    """The user with this id if they are still active (a session's user), or None."""
    row = conn.execute(_BY_ID, {"id": user_id}).mappings().first()
    return dict(row) if row else None


def may_see_task(model: Model, user: dict, task: dict, groups: set[str], project_manager: int | None,
                 requester: int | None = None, *, on_project: bool = False) -> bool:
    """A task is visible to its assignee, its group's members, whoever started it (My work lists the tasks they started
    for others), its project's manager and members (`on_project`), whoever may monitor tasks assigned to others, and
    (a task awaiting its own approver, from a process started before approval steps) its approvers. An approval task
    is its approver's (its assignee), and its `requester` may follow it."""
    if allowed(model, user, "monitor_tasks"):
        return True
    if task.get("kind") == "approval" and requester is not None and requester == user["id"]:
        return True
    if task["assignee_id"] == user["id"] or (task["group_name"] is not None and task["group_name"] in groups):
        return True
    if task.get("created_by") is not None and task["created_by"] == user["id"]:
        return True
    if (project_manager is not None and project_manager == user["id"]) or on_project:
        return True
    return task["status"] == "awaiting_approval" and may_approve(model, user, task, groups, project_manager)


def may_act_on_task(user: dict, task: dict, groups: set[str]) -> bool:
    """Completing or commenting: the assignee, or a member of its group while nobody has it (admins too)."""
    return task["assignee_id"] == user["id"] or (task["assignee_id"] is None and task["group_name"] in groups)


def may_approve(model: Model, user: dict, task: dict, groups: set[str], project_manager: int | None) -> bool:
    """Approving needs 'approve_tasks' and, for an approval task, to be its assignee (each approver has a task of their
    own); for a task awaiting its own approver, to be the approver the step names (a role, group, user or the project's
    manager)."""
    if not allowed(model, user, "approve_tasks"):
        return False
    if task.get("kind") == "approval":
        return task["assignee_id"] == user["id"]
    party = task.get("approver") or {}
    kind, name = party.get("kind"), party.get("name")
    if kind == "role":
        return name in (user.get("roles") or []) or allowed(model, user, "admin")
    if kind == "group":
        return name in groups
    if kind == "user":
        return user.get("username") == name
    if kind == "project_manager":  # a project with no (active) manager: whoever may monitor tasks approves in their stead
        return project_manager == user["id"] or (project_manager is None and allowed(model, user, "monitor_tasks"))
    return True  # owner/manager/completer approvers are resolved by the process; the permission suffices


def decide_refusal(model: Model, user: dict, task: dict, groups: set[str], project_manager: int | None,
                   requester: int | None) -> str | None:
    """Why `user` may not decide `task`, in words (None: they may). Nobody decides on their own work."""
    if requester is not None and requester == user["id"]:
        return "You submitted this work, so someone else must approve it."
    if not may_approve(model, user, task, groups, project_manager):
        return "This approval is waiting for someone else's decision."
    return None


def may_open_project(model: Model, user: dict, project: dict, member: bool) -> bool:
    """A project is open to its manager and its members (`member`), whatever their roles, and to staff whose roles
    grant `project_access` (admins too)."""
    return member or project["manager_id"] == user["id"] or (allowed(model, user, "access") and allowed(model, user, "project_access"))


def may_change_team(model: Model, user: dict, project: dict, member: bool) -> bool:
    """Adding people to a project's team or taking them off: its manager, and whoever holds `project_access` and may
    open the project (admins too)."""
    return may_open_project(model, user, project, member) and (project["manager_id"] == user["id"] or allowed(model, user, "project_access"))


def report_viewer(conn: sa.Connection, model: Model, user: dict) -> reports.Viewer:
    """Whom reports are run for: the user's roles and groups, and whether they may count everyone's tasks."""
    return reports.viewer(conn, model, user, monitor=allowed(model, user, "monitor_tasks"))
