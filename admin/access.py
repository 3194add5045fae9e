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


def may_see_task(model: Model, user: dict, task: dict, groups: set[str], project_manager: int | None) -> bool:
    """A task is visible to its assignee, its group while unassigned, its project's manager, its approvers,
    and to whoever may monitor tasks assigned to others."""
    if allowed(model, user, "monitor_tasks"):
        return True
    if task["assignee_id"] == user["id"] or (task["assignee_id"] is None and task["group_name"] in groups):
        return True
    if project_manager is not None and project_manager == user["id"]:
        return True
    return task["status"] == "awaiting_approval" and may_approve(model, user, task, groups, project_manager)


def may_act_on_task(user: dict, task: dict, groups: set[str]) -> bool:
    """Completing or commenting: the assignee, or a member of its group while nobody has it (admins too)."""
    return task["assignee_id"] == user["id"] or (task["assignee_id"] is None and task["group_name"] in groups)


def may_approve(model: Model, user: dict, task: dict, groups: set[str], project_manager: int | None) -> bool:
    """Approving needs 'approve_tasks' and to be the approver the step names (a role, group, user or the project manager)."""
    if not allowed(model, user, "approve_tasks"):
        return False
    party = task.get("approver") or {}
    kind, name = party.get("kind"), party.get("name")
    if kind == "role":
        return name in (user.get("roles") or []) or allowed(model, user, "admin")
    if kind == "group":
        return name in groups
    if kind == "user":
        return user.get("username") == name
    if kind == "project_manager":
        return project_manager == user["id"]
    return True  # owner/manager/completer approvers are resolved by the process; the permission suffices


def report_viewer(conn: sa.Connection, model: Model, user: dict) -> reports.Viewer:
    """Whom reports are run for: the user's roles and groups, and whether they may count everyone's tasks."""
    return reports.viewer(conn, model, user, monitor=allowed(model, user, "monitor_tasks"))
