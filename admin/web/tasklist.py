"""The lists of tasks people work from: My work (mine and my groups' queues, by when they are due) and the team view
of managers (their groups' members' and queues' open tasks, filtered and paged).

Filters come from the query string, as the pages' GET forms send them, and never raise: a value that cannot be read
is ignored and a note says so. Pure reads; the routes render what these return.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

from engine.compiler import CompiledModel
from engine.errors import Loc
from engine.model import Field, Model
from forms import widgets
from runtime import words
from runtime.schema import OPEN_STATUSES, group_members, tasks, users

from ..access import allowed
from .pages import task_view
from .taskpage import group_label

OPEN = OPEN_STATUSES  # tasks someone still has to act on
SHOWN = 100       # tasks per section of My work; past this the section says how many more there are
TEAM_PAGE = 50    # tasks per page of the team view
DUE = {"overdue": "Overdue", "week": "Due this week", "later": "Later"}
STATUSES = {"open": "To do", "awaiting_approval": "Waiting for approval", "all": "All open"}
_ASSIGNEE = Field("assignee_id", "user", Loc("tasks"), "Assigned to")


def _week_end(now: dt.datetime, zone) -> dt.datetime:
    """The end of the viewer's calendar week (Monday 00:00 next, in their zone), as a UTC moment."""
    local = now.astimezone(zone)
    monday = (local - dt.timedelta(days=local.weekday())).date() + dt.timedelta(days=7)
    return dt.datetime.combine(monday, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def _bucket(now: dt.datetime, week_end: dt.datetime):
    return sa.case((tasks.c.due_at < now, "overdue"), (tasks.c.due_at < week_end, "week"), else_="later")


def _by_due():
    return (tasks.c.due_at.is_(None), tasks.c.due_at, tasks.c.id)


def _choice(params: Any, key: str, allowed_values, what: str, notes: list[str], locale: str = "") -> str:
    """The filter `key` as given, if it is one of `allowed_values`; else '' and a note (in `locale`) saying it is left out."""
    value = str(params.get(key) or "").strip()
    if value and value not in allowed_values:
        notes.append(words.text(locale, "“%(value)s” is not %(what)s, so that filter is left out.", value=value[:40], what=words.text(locale, what)))
        return ""
    return value


def rows_view(conn: sa.Connection, compiled: CompiledModel, rows: list[dict], zone) -> list[dict]:
    """Task rows as lists show them: due text and overdue (pages.task_view), who has it, its group, record and process."""
    model = compiled.model
    names = widgets.Names(conn, compiled, zone)
    names.prefetch([_ASSIGNEE], rows)
    by_entity: dict[str, list[dict]] = {}
    for r in rows:
        if r["entity"] and r["record_id"] and r["entity"] in model.entities:
            by_entity.setdefault(r["entity"], []).append({"record_id": r["record_id"]})
    for entity, refs in by_entity.items():
        names.prefetch([Field("record_id", "reference", Loc("tasks"), "For", entity=entity)], refs)
    out = []
    for r in rows:
        view = task_view(dict(r), zone, model)
        process = model.processes.get(r["process"])
        group = group_label(model, r["group_name"])
        view.update(
            assignee=names.user(r["assignee_id"]) if r["assignee_id"] else "",
            group=group,
            holder=names.user(r["assignee_id"]) if r["assignee_id"] else (words.text(model.locale, "Waiting in the %(group)s queue", group=group)
                                                                          if group else words.text(model.locale, "Nobody")),
            record_title=names.title(r["entity"], r["record_id"]) if r["entity"] in by_entity else "",
            record_link=f"/records/{r['entity']}/{r['record_id']}" if r["entity"] in by_entity else "",
            process_label=process.label if process else r["process"].replace("_", " ").capitalize(),
            approval=r.get("kind") == "approval")
        out.append(view)
    return out


def user_groups(conn: sa.Connection, user_id: int) -> tuple[set[str], set[str]]:
    """(the groups `user_id` is in, those of them they manage)."""
    rows = conn.execute(sa.select(group_members.c.group_name, group_members.c.manager).where(group_members.c.user_id == user_id)).all()
    return {g for g, _ in rows}, {g for g, m in rows if m}


# -- My work --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkFilters:
    """My work's filters as the query string gives them: status, when due, process."""

    status: str = "open"
    due: str = ""
    process: str = ""
    notes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, params: Any, model: Model) -> WorkFilters:
        notes: list[str] = []
        status = _choice(params, "status", STATUSES, "a status", notes, model.locale) or "open"
        due = _choice(params, "due", DUE, "a due date filter", notes, model.locale)
        process = _choice(params, "process", model.processes, "a process", notes, model.locale)
        return cls(status, due, process, tuple(notes))

    def query(self, **changes: str) -> str:
        """The query string of these filters with `changes` (a value '' leaves the filter out)."""
        values = {"status": self.status if self.status != "open" else "", "due": self.due, "process": self.process, **changes}
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def active(self) -> bool:
        return self.status != "open" or bool(self.due or self.process)


@dataclass
class Section:
    key: str
    heading: str
    tasks: list[dict]
    total: int


@dataclass
class MyWork:
    filters: WorkFilters
    sections: list[Section]
    counts: dict[str, int]          # bucket -> tasks in it under the status and process filters
    processes: list[tuple[str, str]]  # (name, label) of the processes of the tasks on the list
    started: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def my_work(conn: sa.Connection, compiled: CompiledModel, user: dict, filters: WorkFilters, zone,
            now: dt.datetime | None = None) -> MyWork:
    """My tasks and my groups' waiting tasks, overdue first, then due this week, then later (and those without a due date)."""
    now = now or dt.datetime.now(dt.UTC)
    groups, _ = user_groups(conn, user["id"])
    holder = sa.or_(tasks.c.assignee_id == user["id"], sa.and_(tasks.c.assignee_id.is_(None), tasks.c.group_name.in_(groups)))
    statuses = OPEN if filters.status == "all" else (filters.status,)
    where = [holder, tasks.c.status.in_(statuses)]
    processes = [(p, compiled.model.processes[p].label if p in compiled.model.processes else p.replace("_", " ").capitalize())
                 for p in conn.execute(sa.select(tasks.c.process).where(*where).distinct()).scalars()]
    if filters.process:
        where.append(tasks.c.process == filters.process)
        if filters.process not in {p for p, _ in processes}:
            processes.append((filters.process, compiled.model.processes[filters.process].label))
    bucket = _bucket(now, _week_end(now, zone))
    counts = {k: 0 for k in DUE}
    counts.update(dict(conn.execute(sa.select(bucket, sa.func.count()).where(*where).group_by(bucket)).all()))
    sections = []
    for key, heading in DUE.items():
        if filters.due and filters.due != key:
            continue
        rows = [dict(r) for r in conn.execute(sa.select(tasks).where(*where, bucket == key).order_by(*_by_due()).limit(SHOWN)).mappings()]
        sections.append(Section(key, heading, rows_view(conn, compiled, rows, zone), counts[key]))
    started = [dict(r) for r in conn.execute(
        sa.select(tasks).where(tasks.c.created_by == user["id"], tasks.c.status.in_(OPEN),
                               sa.or_(tasks.c.assignee_id.is_(None), tasks.c.assignee_id != user["id"]))
        .order_by(*_by_due()).limit(SHOWN)).mappings()]
    return MyWork(filters, sections, counts, sorted(processes, key=lambda p: p[1]), rows_view(conn, compiled, started, zone))


# -- the team view ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    """Whose tasks a manager looks after: the groups they may choose from and those shown unless they choose."""

    choices: tuple[str, ...]   # group names, by label
    mine: tuple[str, ...]      # the groups they manage (and, with monitor_tasks, those they are in)
    monitor: bool              # may look after anyone's tasks (and reassign them)


def team_of(conn: sa.Connection, model: Model, user: dict) -> Team | None:
    """The team a user looks after: the groups they manage, or with monitor_tasks any group; None if neither."""
    member, managed = user_groups(conn, user["id"])
    monitor = allowed(model, user, "monitor_tasks")
    if not managed and not monitor:
        return None
    known = set(model.groups) | set(conn.execute(sa.select(group_members.c.group_name).distinct()).scalars())
    choices = known if monitor else managed
    mine = managed | member if monitor else managed
    def by_label(group: str) -> str:
        return group_label(model, group).casefold()

    return Team(tuple(sorted(choices, key=by_label)), tuple(sorted(mine, key=by_label)), monitor)


@dataclass(frozen=True)
class TeamFilters:
    """The team view's filters: a group ('' mine, 'all' every group), an assignee (a user id or 'nobody'), overdue only."""

    group: str = ""
    assignee: str = ""
    overdue: bool = False
    page: int = 1
    notes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, params: Any, team: Team, locale: str = "") -> TeamFilters:
        """The filters as given; what does not parse is left out, with a note in `locale` (the page's language)."""
        notes: list[str] = []
        group = _choice(params, "group", {*team.choices, *(("all",) if team.monitor else ())}, "one of your groups", notes, locale)
        assignee = str(params.get("assignee") or "").strip()
        if assignee and assignee != "nobody" and not (assignee.isdigit() and 0 < int(assignee) < 2**63):
            notes.append(words.text(locale, "“%(value)s” is not someone on the team, so every assignee is shown.", value=assignee[:40]))
            assignee = ""
        raw, page = str(params.get("page") or "").strip(), 1
        if raw:
            if raw.isdigit() and int(raw) >= 1:
                page = min(int(raw), 10**9)
            else:
                notes.append(words.text(locale, "“%(value)s” is not a page number, so this is the first page.", value=raw[:40]))
        return cls(group, assignee, str(params.get("overdue") or "") in ("1", "on", "yes", "true"), page, tuple(notes))

    def query(self, **changes: Any) -> str:
        """The query string of these filters with `changes` (page 1 and empty values are left out)."""
        values = {"group": self.group, "assignee": self.assignee, "overdue": "1" if self.overdue else "", "page": "", **changes}
        if values["page"] in (1, "1"):
            values["page"] = ""
        return urlencode({k: str(v) for k, v in values.items() if v})


@dataclass
class TeamView:
    team: Team
    filters: TeamFilters
    tasks: list[dict]
    total: int
    overdue: int
    page: int
    pages: int
    groups: list[tuple[str, str]]     # (name, label) the group filter offers
    people: list[tuple[int, str]]     # (id, name) the assignee filter offers: the shown groups' members
    notes: list[str]


def _scope(conn: sa.Connection, team: Team, group: str) -> tuple[list, list[int]]:
    """(where clauses, member ids): the open tasks of the chosen groups' members and queues; with monitor_tasks, also
    those nobody has and no group holds (a task nobody could see otherwise)."""
    if group == "all":
        groups = list(team.choices)
    elif group:
        groups = [group]
    else:
        groups = list(team.mine or team.choices)
    members = sorted(set(conn.execute(sa.select(group_members.c.user_id).where(group_members.c.group_name.in_(groups))).scalars()))
    scope = [tasks.c.group_name.in_(groups), tasks.c.assignee_id.in_(members)]
    if team.monitor and group in ("", "all"):
        scope.append(sa.and_(tasks.c.assignee_id.is_(None), tasks.c.group_name.is_(None)))
    return [tasks.c.status.in_(OPEN), sa.or_(*scope)], members


def team_counts(conn: sa.Connection, team: Team, now: dt.datetime | None = None) -> tuple[int, int]:
    """(open tasks, overdue ones) of the groups a manager looks after unless they choose others."""
    now = now or dt.datetime.now(dt.UTC)
    where, _ = _scope(conn, team, "")
    late = sa.func.coalesce(sa.func.sum(sa.case((tasks.c.due_at < now, 1), else_=0)), 0)
    total, overdue = conn.execute(sa.select(sa.func.count(), late).select_from(tasks).where(*where)).one()
    return int(total), int(overdue)


def team_tasks(conn: sa.Connection, compiled: CompiledModel, user: dict, team: Team, filters: TeamFilters, zone,
               now: dt.datetime | None = None, per: int = TEAM_PAGE) -> TeamView:
    """One page of the team's open tasks, overdue first then by when due, as the filters narrow them."""
    model = compiled.model
    now = now or dt.datetime.now(dt.UTC)
    notes = list(filters.notes)
    where, members = _scope(conn, team, filters.group)
    if filters.assignee == "nobody":
        where.append(tasks.c.assignee_id.is_(None))
    elif filters.assignee:
        where.append(tasks.c.assignee_id == int(filters.assignee))
    overdue = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(*where, tasks.c.due_at < now)).scalar_one()
    if filters.overdue:
        where.append(tasks.c.due_at < now)
    total = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(*where)).scalar_one()
    pages = max(1, math.ceil(total / per))
    page = filters.page
    if page > pages:
        notes.append(words.text(model.locale, "There is no page %(page)s: this is the last page." if pages > 1
                                else "There is no page %(page)s: everything fits on one page.", page=page))
        page = pages
    late_first = sa.case((tasks.c.due_at < now, 0), else_=1)
    rows = [dict(r) for r in conn.execute(sa.select(tasks).where(*where).order_by(late_first, *_by_due())
                                          .limit(per).offset((page - 1) * per)).mappings()]
    people = [(uid, name) for uid, name in conn.execute(sa.select(users.c.id, users.c.name).where(users.c.id.in_(members))
                                                        .order_by(users.c.name)).all()]
    return TeamView(team, filters, rows_view(conn, compiled, rows, zone), total, overdue, page, pages,
                    [(g, group_label(model, g)) for g in team.choices], people, notes)
