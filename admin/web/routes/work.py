"""My work (the home page of staff: my tasks and my groups' by when due, approvals, alerts) and the team view of
managers (their groups' open tasks, and handing several over at once)."""
from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine.compiler import CompiledModel
from engine.labels import task_title
from forms.widgets import when_text, zone_of
from runtime import alertbox, holders, recent, words
from runtime.schema import tasks, users
from runtime.taskactions import ActionRefused

from ...access import allowed, may_approve, may_see_task
from ...deps import (
    CompiledDep,
    Conn,
    CsrfForm,
    EngineDep,
    Permitted,
    Staff,
    TaskActionsDep,
)
from .. import tasklist
from ..finders import MAX_ID
from ..pages import STATUS_TEXT, render

router = APIRouter(include_in_schema=False)
BULK_MOST = 200       # tasks one bulk reassignment hands over
BULK_AT_ONCE = 4      # of them, updates in flight together
APPROVALS_SHOWN = 50  # decisions My work lists
ALERTS_SHOWN = 10     # alerts My work lists, the newest; the alerts page has the rest
APPROVALS_PAGE, APPROVALS_READ = 200, 2000  # tasks awaiting their step's approver read at once, and at most


def home_extras(conn: sa.Connection, compiled: CompiledModel, user: dict) -> dict:
    """What My work shows besides the task lists: approvals waiting for me, my alerts, my customers, my team's counts."""
    model = compiled.model
    groups, _ = tasklist.user_groups(conn, user["id"])
    mine, alerts_total = alertbox.my_alerts(conn, user["id"], ALERTS_SHOWN)
    zone = zone_of(model, user)
    for a in mine:
        a["raised_text"] = when_text(a["raised_at"], zone, locale=model.locale)
    team = tasklist.team_of(conn, model, user)
    return {"approvals": waiting_for(conn, model, user, groups), "alerts": mine, "alerts_total": alerts_total,
            "customers": my_customers(conn, compiled, user),
            "new_customer": new_customer(compiled, user),
            "team_counts": tasklist.team_counts(conn, team) if team else None}


def my_customers(conn: sa.Connection, compiled: CompiledModel, user: dict) -> list[dict]:
    """The records the user deals with (runtime.recent), as My work lists them: the entity's label, the title, a link,
    and how and when (in the viewer's zone) they last dealt with it. Every entity the directory opens to staff."""
    model = compiled.model
    if not allowed(model, user, "access"):
        return []
    zone = zone_of(model, user)
    shown = []
    for d in recent.dealt_with(conn, compiled, user["id"], model.entities):
        when = when_text(d.at, zone, locale=model.locale)
        how = words.text(model.locale, {"touched": "last dealt with %(when)s", "task": "your open task since %(when)s",
                                        "owner": "%(owner)s: you · changed %(when)s"}[d.how], when=when, owner=d.owner_label)
        shown.append({"title": d.title, "label": model.entities[d.entity].label, "href": f"/records/{d.entity}/{d.record_id}", "how": how})
    return shown


def new_customer(compiled: CompiledModel, user: dict) -> dict | None:
    """Where an empty "My customers" sends the user: the first customer entity's directory, and its new-record page
    for those who may edit records."""
    model = compiled.model
    entity = next((e for e in model.entities.values() if e.customer), next(iter(model.entities.values()), None))
    if entity is None:
        return None
    return {"plural": entity.plural, "directory": f"/directory/{entity.name}", "label": entity.label,
            "new": f"/records/{entity.name}/new" if allowed(model, user, "edit_records") else None}


def waiting_for(conn: sa.Connection, model, user: dict, groups: set[str]) -> list[dict]:
    """The decisions `user` must make, soonest due first, at most APPROVALS_SHOWN: their own approval tasks (approval
    steps) and tasks awaiting the approver their step names (processes started before approval steps), each titled in
    the page's language. The second kind is read in pages (whose approver it is is told per task), at most
    APPROVALS_READ rows."""
    if not allowed(model, user, "approve_tasks"):
        return []
    order = (tasks.c.due_at.is_(None), tasks.c.due_at, tasks.c.id)
    found = [dict(r) for r in conn.execute(sa.select(tasks).where(tasks.c.kind == "approval", tasks.c.status == "open",
                                                                   tasks.c.assignee_id == user["id"])
                                           .order_by(*order).limit(APPROVALS_SHOWN)).mappings()]
    for offset in range(0, APPROVALS_READ, APPROVALS_PAGE):
        if len(found) >= APPROVALS_SHOWN:
            break
        page = [dict(r) for r in conn.execute(sa.select(tasks).where(tasks.c.status == "awaiting_approval", tasks.c.kind == "task")
                                              .order_by(*order).offset(offset).limit(APPROVALS_PAGE)).mappings()]
        found += [t for t in page if may_approve(model, user, t, groups, None)]
        if len(page) < APPROVALS_PAGE:
            break
    found.sort(key=lambda t: (t["due_at"] is None, t["due_at"] or 0, t["id"]))
    return [{**t, "title": task_title(t, model.locale, model)} for t in found[:APPROVALS_SHOWN]]


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: Staff, conn: Conn, compiled: CompiledDep):
    zone = zone_of(compiled.model, user)
    filters = tasklist.WorkFilters.parse(request.query_params, compiled.model)
    return render(request, "work/home.html", user=user, work=tasklist.my_work(conn, compiled, user, filters, zone),
                  statuses=tasklist.STATUSES, dues=tasklist.DUE, **home_extras(conn, compiled, user))


# -- the team view -------------------------------------------------------------------------


def team_or_403(conn: sa.Connection, compiled: CompiledModel, user: dict) -> tasklist.Team:
    team = tasklist.team_of(conn, compiled.model, user)
    if team is None:
        raise HTTPException(403, "The team view is for those who manage a group or look after other people's tasks.")
    return team


def targets(conn: sa.Connection, compiled: CompiledModel, members: set[int]) -> dict[str, list[tuple[int, str]]]:
    """Whom tasks may be handed to, by name (runtime.holders decides: active staff), the team's members first."""
    people = conn.execute(sa.select(users.c.id, users.c.name).where(users.c.active).order_by(users.c.name)).all()
    fine = set(holders.eligible(conn, compiled.model, [p.id for p in people], {"project_id": None}))
    offered = [(p.id, p.name) for p in people if p.id in fine]
    locale = compiled.model.locale  # the page's language
    return {words.text(locale, "On the team"): [p for p in offered if p[0] in members],
            words.text(locale, "Everyone else"): [p for p in offered if p[0] not in members]}


def team_page(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, params, status: int = 200,
              outcome: dict | None = None):
    team = team_or_403(conn, compiled, user)
    zone = zone_of(compiled.model, user)
    view = tasklist.team_tasks(conn, compiled, user, team, tasklist.TeamFilters.parse(params, team, compiled.model.locale), zone)
    groups, _ = tasklist.user_groups(conn, user["id"])
    for t in view.tasks:  # a manager without monitor_tasks opens only what they may see (their groups' queues)
        t["can_open"] = may_see_task(compiled.model, user, t, groups, None)
    return render(request, "work/team.html", user=user, status=status, view=view, outcome=outcome,
                  can_reassign=team.monitor, request_id=str(uuid.uuid4()),
                  targets=targets(conn, compiled, {uid for uid, _ in view.people}) if team.monitor else {})


@router.get("/work/team", response_class=HTMLResponse)
def team(request: Request, user: Staff, conn: Conn, compiled: CompiledDep):
    return team_page(request, conn, compiled, user, request.query_params)


def _task_ids(data) -> list[int]:
    found = []
    for raw in data.getlist("task"):
        text = str(raw).strip()
        if text.isdigit() and 0 < int(text) <= MAX_ID and int(text) not in found:
            found.append(int(text))
    return found[:BULK_MOST]


@router.post("/work/team/reassign", response_class=HTMLResponse)
async def team_reassign(request: Request, user: Permitted("monitor_tasks"), data: CsrfForm, engine: EngineDep,
                        compiled: CompiledDep, actions: TaskActionsDep):
    """Hand the ticked tasks to one person, each through runtime.taskactions: every refusal is reported with its task,
    the rest are done. The form's request id keys each update, so a second submission of the same form does nothing again."""
    ids, to_user = _task_ids(data), str(data.get("to_user") or "").strip()
    key = str(data.get("request_id") or "").strip()[:200] or None

    def load():
        with engine.connect() as conn:
            team_or_403(conn, compiled, user)
            rows = {r["id"]: dict(r) for r in conn.execute(sa.select(tasks).where(tasks.c.id.in_(ids))).mappings()} if ids else {}
            name = conn.execute(sa.select(users.c.name).where(users.c.id == int(to_user))).scalar() \
                if to_user.isdigit() and 0 < int(to_user) <= MAX_ID else None
        return rows, name

    rows, target = await run_in_threadpool(load)
    locale = request.state.locale  # set by the compiled dependency: the page's language
    outcome: dict = {"target": target, "done": [], "refused": {}, "ticked": len(ids)}
    problem = None
    if not ids:
        problem = words.text(locale, "Tick the tasks to hand over first.")
    elif target is None:
        problem = words.text(locale, "Choose who should have the tasks." if not to_user else "There is no such user.")
    if problem:
        outcome["problem"] = problem
    else:
        gate = asyncio.Semaphore(BULK_AT_ONCE)

        async def one(task_id: int) -> tuple[int, str, str | None]:
            row = rows.get(task_id)
            if row is None:
                return task_id, words.text(locale, "a task that no longer exists"), words.text(locale, "There is no such task.")
            if row["status"] not in tasklist.OPEN:
                status = words.text(locale, STATUS_TEXT.get(row["status"], row["status"]))
                return task_id, row["title"], words.text(locale, "It is %(status)s already.", status=words.noun(locale, status))
            if row["assignee_id"] == int(to_user):
                return task_id, row["title"], None  # already theirs (a second submission finds it so too)
            async with gate:
                try:
                    await actions.reassign(row, user, int(to_user), key=key)
                except ActionRefused as exc:
                    return task_id, row["title"], exc.message
            return task_id, row["title"], None

        for task_id, title, why in await asyncio.gather(*(one(i) for i in ids)):
            if why is None:
                outcome["done"].append((task_id, title))
            else:
                outcome["refused"].setdefault(why, []).append((task_id, title))
    # what was not done stays ticked, with the person chosen, to try again (or hand to someone else)
    outcome["retry"] = {i for items in outcome["refused"].values() for i, _ in items} | (set(ids) if problem else set())
    outcome["chosen"] = int(to_user) if target is not None and (problem or outcome["refused"]) else None
    status = 422 if problem or not outcome["done"] else 200

    def again():
        with engine.connect() as conn:
            return team_page(request, conn, compiled, user, data, status, outcome)

    return await run_in_threadpool(again)
