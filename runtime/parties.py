"""Who a party is at run time: users for owner, manager, role:X, group:X, ..."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from engine.model import Model
from . import holders
from .schema import group_members, projects, tasks, users


def users_with_role(conn: sa.Connection, role: str) -> list[int]:
    rows = conn.execute(sa.select(users.c.id, users.c.roles).where(users.c.active).order_by(users.c.id)).all()
    return [r.id for r in rows if role in (r.roles or [])]


def group_users(conn: sa.Connection, group: str) -> list[int]:
    q = sa.select(group_members.c.user_id).join(users, users.c.id == group_members.c.user_id).where(
        group_members.c.group_name == group, users.c.active).order_by(group_members.c.user_id)
    return list(conn.execute(q).scalars())


def group_managers(conn: sa.Connection, group: str) -> list[int]:
    """The group's managers who are still active (a deactivated one hears of nothing and is handed nothing)."""
    q = sa.select(group_members.c.user_id).join(users, users.c.id == group_members.c.user_id).where(
        group_members.c.group_name == group, group_members.c.manager, users.c.active).order_by(group_members.c.user_id)
    return list(conn.execute(q).scalars())


def members(conn: sa.Connection, group: str, *, managers: bool | None = None) -> list[int]:
    """Everyone in the group, deactivated users too (to say why none of them may take a task); only its managers with
    `managers=True`, only the others with False."""
    q = sa.select(group_members.c.user_id).where(group_members.c.group_name == group).order_by(group_members.c.user_id)
    if managers is not None:
        q = q.where(group_members.c.manager if managers else sa.not_(group_members.c.manager))
    return list(conn.execute(q).scalars())


def users_allowed(conn: sa.Connection, model: Model, permission: str) -> list[int]:
    """The active users whose roles grant `permission` (or `admin`), by id."""
    rows = conn.execute(sa.select(users.c.id, users.c.roles).where(users.c.active).order_by(users.c.id)).all()
    return [r.id for r in rows if {permission, "admin"} & holders.permissions(model, r.roles or ())]


def user_id(conn: sa.Connection, username: str) -> int | None:
    """The active user of that name, if there is one."""
    return conn.execute(sa.select(users.c.id).where(users.c.username == username, users.c.active)).scalar()


def active(conn: sa.Connection, user_ids: list[int]) -> list[int]:
    """Those of `user_ids` who are still active, in the order given."""
    if not user_ids:
        return []
    found = set(conn.execute(sa.select(users.c.id).where(users.c.id.in_(user_ids), users.c.active)).scalars())
    return [u for u in user_ids if u in found]


def project_manager(conn: sa.Connection, project_id: int | None) -> int | None:
    if project_id is None:
        return None
    return conn.execute(sa.select(projects.c.manager_id).where(projects.c.id == project_id)).scalar()


def open_load(conn: sa.Connection, user_ids: list[int]) -> dict[int, int]:
    """Open tasks per user, for least-busy assignment."""
    q = sa.select(tasks.c.assignee_id, sa.func.count()).where(tasks.c.assignee_id.in_(user_ids), tasks.c.status.in_(("open", "awaiting_approval"))).group_by(tasks.c.assignee_id)
    counts = dict(conn.execute(q).all())
    return {u: counts.get(u, 0) for u in user_ids}


def names_owner(named: Iterable[dict | None]) -> bool:
    """Whether any of these parties is the record's owner (only then is the owner read for them)."""
    return any((party or {}).get("kind") == "owner" for party in named)


def resolve(conn: sa.Connection, party: dict | None, ctx: dict[str, Any]) -> list[int]:
    """User ids a party names. `ctx` carries owner_id, assignee_id, group, project_id, completers."""
    if not party:
        return []
    kind, name = party["kind"], party.get("name")
    if kind == "user":
        uid = user_id(conn, name)
        return [uid] if uid else []
    if kind == "role":
        return users_with_role(conn, name)
    if kind == "group":
        return group_users(conn, name)
    if kind == "owner":
        return [ctx["owner_id"]] if ctx.get("owner_id") else []
    if kind == "assignee":
        return [ctx["assignee_id"]] if ctx.get("assignee_id") else []
    if kind == "project_manager":
        pm = project_manager(conn, ctx.get("project_id"))
        return [pm] if pm else []
    if kind == "completer":
        uid = (ctx.get("completers") or {}).get(name)
        return [uid] if uid else []
    if kind == "manager":
        groups = [ctx["group"]] if ctx.get("group") else []
        if not groups and ctx.get("assignee_id"):
            groups = list(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == ctx["assignee_id"])).scalars())
        out: list[int] = []
        for g in groups:
            out.extend(m for m in group_managers(conn, g) if m not in out)
        return out
    return []
