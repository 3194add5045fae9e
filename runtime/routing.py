"""Who a task goes to: the party its step names, or the fallback when that names nobody who may hold it.

A step's party is asked first: a group or role hands the task round (round robin or least busy) among those of its
people who may hold it (`runtime.holders`: active, able to log in, allowed to work on tasks), its managers only if
the group lets them take turns (`managers: take_turns`, the default). When the party names nobody who may hold the
task (no owner set, an empty group, a deactivated user, a project without a manager), the task goes down the chain:

1. the step's `fallback`, else the process's;
2. for a group: its managers;
3. whoever started the process;
4. the active users who may monitor tasks (the least busy of them).

`Route.routed` says why, in words with names (never ids): "Acme Ltd has no owner, so it came to Bob Sales, who
started the process." `Route.tell` is who hears it in an alert: the new holder and the group's managers.
Escalation ladders' reassignments ask the same questions (`Router.find`), so their alerts say why in the same words.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.build import humanise
from engine.compiler import CompiledModel
from . import holders, parties
from .schema import assignment_cursor, group_members, projects, users


@dataclass(frozen=True)
class Route:
    """Where a new task goes: a person and/or the group whose queue it belongs to, and why when it is a fallback."""

    assignee_id: int | None
    group: str | None
    routed: str | None = None  # why it went to a fallback holder, in words (None: to whom its step names)
    tell: tuple[int, ...] = ()  # who hears why: the new holder and the group's managers


@dataclass(frozen=True)
class Found:
    """The people a party names who may hold the task, and when there are none, why (in words)."""

    people: list[int]
    why: str = ""


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _clause(reason: str) -> str:
    """A refusal from `runtime.holders` ('Gus is deactivated.') as part of a sentence."""
    return reason.strip().rstrip(".")


class Router:
    """Answers who a party is for one task, with the reasons, on one connection."""

    def __init__(self, conn: sa.Connection, compiled: CompiledModel, ctx: dict[str, Any], task: dict):
        self.conn, self.compiled, self.model = conn, compiled, compiled.model
        self.ctx, self.task = ctx, task

    # -- names -----------------------------------------------------------------
    def name(self, user_id: int | None) -> str:
        found = self.conn.execute(sa.select(users.c.name).where(users.c.id == user_id)).scalar() if user_id else None
        return found or "a former user"

    def group_label(self, group: str) -> str:
        g = self.model.groups.get(group)
        return g.label if g else humanise(group)

    def record_title(self) -> str | None:
        entity, record_id = self.ctx.get("entity") or self.task.get("entity"), self.ctx.get("record_id") or self.task.get("record_id")
        if not entity or not record_id or entity not in self.compiled.metadata.tables:
            return None
        table = self.compiled.metadata.tables[entity]
        title = self.conn.execute(sa.select(table.c.title).where(table.c.id == record_id)).scalar()
        label = self.model.entities[entity].label.lower() if entity in self.model.entities else entity
        return title or f"this {label}"

    # -- who a party is ----------------------------------------------------------
    def vet(self, ids: list[int], one: str, many: str) -> Found:
        """`ids` narrowed to those who may hold the task; when none may, why: for a single person "{one}, Gus, is
        deactivated" ("the owner of Acme Ltd, Gus, is deactivated"; just the refusal without `one`), "{many} ({refusals})"
        for several."""
        refused = holders.refusals(self.conn, self.model, ids, self.task)
        people = [u for u in ids if u not in refused]
        if people:
            return Found(people)
        reasons = [_clause(refused[u]) for u in ids]
        if len(reasons) == 1:
            if not one:
                return Found([], reasons[0])
            name = self.name(ids[0])
            if reasons[0].startswith(f"{name} "):  # the refusal names them first: "Gus is deactivated"
                return Found([], f"{one}, {name}, {reasons[0][len(name) + 1:]}")
            return Found([], f"{one}: {reasons[0]}")
        shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        return Found([], f"{many} ({shown})")

    def find(self, party: dict, *, takes_turns: bool = False) -> Found:
        """Who of the people `party` names may hold the task; for a group handing out a new task (`takes_turns`), its
        managers only if the group lets them take turns."""
        kind, name = party["kind"], party.get("name")
        if kind == "owner":
            record = self.record_title()
            if record is None:
                return Found([], "the process runs on no record, so there is no owner")
            owner = self.ctx.get("owner_id")
            if not owner:
                return Found([], f"{record} has no owner")
            return self.vet([owner], f"the owner of {record}", "")
        if kind == "user":
            row = self.conn.execute(sa.select(users.c.id).where(users.c.username == name)).first()
            if row is None:
                return Found([], f"there is no user '{name}'")
            return self.vet([row.id], "", "")
        if kind == "role":
            label = self.model.roles[name].label if name in self.model.roles else humanise(name)
            ids = parties.users_with_role(self.conn, name)
            if not ids:
                return Found([], f"nobody active has the role {label}")
            return self.vet(ids, f"the only one with the role {label}", f"nobody with the role {label} may hold it")
        if kind == "group":
            return self._group(name, takes_turns)
        if kind == "project_manager":
            project_id = self.ctx.get("project_id") or self.task.get("project_id")
            row = self.conn.execute(sa.select(projects.c.title, projects.c.manager_id).where(projects.c.id == project_id)).first() \
                if project_id else None
            if row is None:
                return Found([], "the process has no project, so no project manager")
            if row.manager_id is None:
                return Found([], f"the project '{row.title}' has no manager")
            return self.vet([row.manager_id], f"the manager of the project '{row.title}'", "")
        if kind == "completer":
            done = (self.ctx.get("completers") or {}).get(name)
            if not done:
                return Found([], f"nobody has completed the step '{humanise(name)}'")
            return self.vet([done], f"whoever completed the step '{humanise(name)}'", "")
        if kind == "assignee":
            held = self.ctx.get("assignee_id")
            return self.vet([held], "its assignee", "") if held else Found([], "it has no assignee")
        if kind == "manager":
            return self._managers()
        return Found([], f"'{kind}' names nobody")

    def _group(self, group: str, takes_turns: bool) -> Found:
        label = self.group_label(group)
        everyone = parties.members(self.conn, group)
        if not everyone:
            return Found([], f"the {label} group has no members")
        skip = takes_turns and group in self.model.groups and self.model.groups[group].managers == "skip"
        managers = set(parties.members(self.conn, group, managers=True)) if skip else set()
        takers = [u for u in everyone if u not in managers]
        if not takers:
            return Found([], f"the {label} group has only managers, who do not take turns")
        return self.vet(takers, f"the {label} group's only member", f"nobody in the {label} group may hold it")

    def _managers(self) -> Found:
        """The `manager` party: the managers of the task's group, else of the assignee's groups."""
        groups = [self.ctx["group"]] if self.ctx.get("group") else []
        if not groups and self.ctx.get("assignee_id"):
            groups = list(self.conn.execute(sa.select(group_members.c.group_name).where(
                group_members.c.user_id == self.ctx["assignee_id"]).order_by(group_members.c.group_name)).scalars())
        if not groups:
            return Found([], "it is in no group, so it has no manager")
        ids: list[int] = []
        for g in groups:
            ids.extend(m for m in parties.members(self.conn, g, managers=True) if m not in ids)
        where = f"the {self.group_label(groups[0])} group" if len(groups) == 1 else "its groups"
        if not ids:
            return Found([], f"{where} has no manager" if len(groups) == 1 else "its groups have no manager")
        return self.vet(ids, f"the manager of {where}", f"no manager of {where} may hold it")

    # -- choosing one ------------------------------------------------------------
    def pick(self, party: dict, people: list[int], strategy: str) -> int:
        """One of `people` (who may all hold the task): a group's or role's in turn or the least busy, else the first."""
        if party["kind"] not in ("group", "role") or len(people) == 1:
            return people[0]
        if strategy == "least_busy":
            return self.least_busy(people)
        cursor_key = f"{party['kind']}:{party['name']}"
        last = self.conn.execute(sa.select(assignment_cursor.c.last_user_id).where(assignment_cursor.c.group_name == cursor_key)).first()
        nxt = next((u for u in people if last is None or last.last_user_id is None or u > last.last_user_id), people[0])
        if last is None:
            self.conn.execute(assignment_cursor.insert().values(group_name=cursor_key, last_user_id=nxt))
        else:
            self.conn.execute(assignment_cursor.update().where(assignment_cursor.c.group_name == cursor_key).values(last_user_id=nxt))
        return nxt

    def least_busy(self, people: list[int]) -> int:
        load = parties.open_load(self.conn, people)
        return min(people, key=lambda u: (load[u], u))


def route(conn: sa.Connection, compiled: CompiledModel, party: dict | None, strategy: str, ctx: dict[str, Any], task: dict,
          fallback: dict | None = None, fallback_of: str = "step") -> Route:
    """Where a new task goes (see the module's docstring). `ctx` as `runtime.parties.resolve` takes it (owner_id,
    project_id, completers, started_by, entity, record_id); `task` what `runtime.holders` needs (its project_id);
    `fallback_of` says whose fallback `fallback` is ('step' or 'process')."""
    r = Router(conn, compiled, ctx, task)
    started_by = ctx.get("started_by")
    group = party["name"] if party and party["kind"] == "group" else None
    if party is None:  # a step that names nobody is its starter's
        if started_by:
            found = r.vet([started_by], "", "")
            if found.people:
                return Route(started_by, None)
            why = f"the step names nobody to do it, and {found.why}"
        else:
            why = "the step names nobody to do it and nobody started the process (it started on its own)"
    else:
        found = r.find(party, takes_turns=True)
        if found.people:
            return Route(r.pick(party, found.people, strategy), group)
        why = found.why
    managers = parties.group_managers(conn, group) if group else []  # they hear of it, whoever takes it

    def came(user_id: int, how: str, in_group: str | None = group) -> Route:
        text = _sentence(f"{why}, so it came to {r.name(user_id)}, {how}")
        tell = [user_id] + [m for m in managers if m != user_id]
        return Route(user_id, in_group, text, tuple(tell))

    if fallback:
        found = r.find(fallback, takes_turns=True)
        if found.people:
            holder = r.pick(fallback, found.people, strategy)
            if fallback["kind"] == "group":
                return came(holder, f"of the {r.group_label(fallback['name'])} group, the {fallback_of}'s fallback", fallback["name"])
            return came(holder, f"the {fallback_of}'s fallback")
        why = f"{why}, nor could the {fallback_of}'s fallback take it ({found.why})"
    if group:
        fine = holders.eligible(conn, compiled.model, parties.members(conn, group, managers=True), task)
        if fine:
            return came(r.least_busy(fine), f"a manager of the {r.group_label(group)} group")
    if party is not None and started_by and holders.eligible(conn, compiled.model, [started_by], task):
        return came(started_by, "who started the process")
    monitors = holders.eligible(conn, compiled.model, parties.users_allowed(conn, compiled.model, "monitor_tasks"), task)
    if monitors:
        return came(r.least_busy(monitors), "who may monitor tasks")
    return Route(None, group, _sentence(f"{why}, and nobody else may hold it: it waits for an administrator to hand it on"),
                 tuple(managers))
