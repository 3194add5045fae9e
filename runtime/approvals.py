"""Who decides an approval: the approvers its step names, never the requester; when that leaves nobody, a fallback,
and why, in words (it goes into `tasks.routed`).

An approver is an active user who may hold the task (`runtime.holders`) and whose roles grant `approve_tasks`
(or `admin`). The requester is whoever completed the step whose work is approved: separation of duties.
When the approvers name nobody else, the approval goes, in this order, to the step's (else the process's)
`fallback` party, the managers of the approvers' groups, and the users who may monitor tasks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.model import Model
from . import holders, parties
from .schema import group_members, users


@dataclass(frozen=True)
class Choice:
    """Who is asked to approve (user ids, in order) and, when it is a fallback, why (else None)."""

    approvers: list[int]
    routed: str | None = None


def _permits(model: Model, roles: Any, permission: str) -> bool:
    perms = {p for r in roles or () if r in model.roles for p in model.roles[r].permissions}
    return permission in perms or "admin" in perms


def may_approve(conn: sa.Connection, model: Model, user_ids: list[int], task: dict) -> list[int]:
    """Those of `user_ids` who may decide an approval like `task`, in the order given."""
    fine = holders.eligible(conn, model, user_ids, task)
    if not fine:
        return []
    roles = dict(conn.execute(sa.select(users.c.id, users.c.roles).where(users.c.id.in_(fine))).all())
    return [u for u in fine if _permits(model, roles.get(u), "approve_tasks")]


def _names(conn: sa.Connection, user_ids: list[int]) -> dict[int, str]:
    return dict(conn.execute(sa.select(users.c.id, users.c.name).where(users.c.id.in_(user_ids))).all()) if user_ids else {}


def _resolve(conn: sa.Connection, named: list[dict], ctx: dict[str, Any]) -> list[int]:
    out: list[int] = []
    for party in named:
        out.extend(u for u in parties.resolve(conn, party, ctx) if u not in out)
    return out


def _party_words(model: Model, party: dict) -> str:
    """Who a party is, as a sentence's subject ('the Sales director role')."""
    kind, name = party["kind"], party.get("name")
    if kind == "role":
        role = model.roles.get(name)
        return f"the {role.label if role else name} role"
    if kind == "group":
        group = model.groups.get(name)
        return f"the {group.label if group else name} group"
    return {"user": f"the user {name}", "owner": "the record's owner", "manager": "the requester's manager",
            "project_manager": "the project's manager", "completer": f"whoever completed '{name}'"}.get(kind, kind)


def _why(conn: sa.Connection, model: Model, named: list[dict], people: list[int], requester: int | None) -> str:
    """Why the approvers a step names leave nobody to decide: they name the requester (and nobody else who may
    approve), or nobody who may."""
    if requester is not None and requester in people:
        who = _names(conn, [requester]).get(requester, "The requester")
        return f"{who} submitted this work and may not approve it"
    return f"Nobody who may approve it is {' or '.join(_party_words(model, p) for p in named)}"


def _managers(conn: sa.Connection, named: list[dict], people: list[int]) -> tuple[list[int], list[str]]:
    """The managers of the approvers' groups: the groups a step names, else those of the people its parties name."""
    groups = [p["name"] for p in named if p["kind"] == "group" and p.get("name")]
    if not groups and people:
        groups = list(dict.fromkeys(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id.in_(people))
                                                 .order_by(group_members.c.group_name)).scalars()))
    out: list[int] = []
    for g in groups:
        out.extend(m for m in parties.group_managers(conn, g) if m not in out)
    return out, groups


def _monitors(conn: sa.Connection, model: Model) -> list[int]:
    rows = conn.execute(sa.select(users.c.id, users.c.roles).where(users.c.active).order_by(users.c.id)).all()
    return [r.id for r in rows if _permits(model, r.roles, "monitor_tasks")]


def choose(conn: sa.Connection, model: Model, named: list[dict], ctx: dict[str, Any], requester: int | None, task: dict,
           fallback: dict | None = None) -> Choice:
    """The approvers of one round: everyone the step's parties name who may approve, but the requester; else one
    fallback decider, with the reason. Nobody at all: no approvers, and the reason says so."""
    people = _resolve(conn, named, ctx)
    eligible = may_approve(conn, model, people, task)
    chosen = [u for u in eligible if u != requester]
    if chosen:
        return Choice(chosen)
    why = _why(conn, model, named, people, requester)
    managers, groups = _managers(conn, named, people or ([requester] if requester else []))
    candidates = []
    if fallback:
        candidates.append((_resolve(conn, [fallback], ctx), "who is named to decide when the approvers cannot"))
    labels = ", ".join(model.groups[g].label if g in model.groups else g for g in groups)
    candidates.append((managers, f"a manager of {labels}" if labels else "a group manager"))
    candidates.append((_monitors(conn, model), "who may monitor tasks"))
    for ids, role in candidates:
        pick = [u for u in may_approve(conn, model, ids, task) if u != requester]
        if pick:
            name = _names(conn, pick[:1]).get(pick[0], "someone")
            return Choice(pick[:1], f"{why}, so it came to {name}, {role}.")
    return Choice([], f"{why}, and nobody else may approve it: an administrator must hand it to someone.")
