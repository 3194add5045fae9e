"""A task's page and what staff do with it: complete, approve or reject, comment, reassign, claim."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine.compiler import CompiledModel
from engine.labels import task_title
from forms.widgets import zone_of
from runtime import holders, words
from runtime import tasks as task_service
from runtime.schema import group_members, users
from runtime.taskactions import ActionRefused

from ...access import allowed, decide_refusal, may_act_on_task, may_see_task
from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, Permitted, TaskActionsDep
from .. import decisions, taskpage
from ..finders import options_for, record_or_404, task_or_404
from ..pages import flash, redirect, render, task_view
from ..pagewords import said

router = APIRouter(include_in_schema=False)
OPEN = ("open", "awaiting_approval")


def task_page(request: Request, conn, compiled: CompiledModel, user: dict, task: dict, status: int = 200, values=None, errors=None):
    """The task page as `user` may see it: who has it, when it is due, the process so far, the comments, and only the
    actions they may take."""
    model = compiled.model
    zone = zone_of(model, user)
    view = task_view(task, zone, model)
    rec = record_or_404(conn, compiled, task["entity"], task["record_id"]) if task["entity"] and task["record_id"] else None
    context = rec.context(model.entities[rec.entity]) if rec is not None else None
    shown = taskpage.gather(conn, compiled, task, zone, insider=allowed(model, user, "access"), viewer_id=user["id"],
                            may_open=lambda row: may_see_task(model, user, row, task["_groups"], task["_pm"]),
                            record_title=rec.title if rec is not None else None, record=context)
    can_complete = task["status"] == "open" and task["kind"] != "approval" and may_act_on_task(user, task, task["_groups"])
    if values is None and can_complete and task["form"] and isinstance(task["data"], dict):
        values = taskpage.form_values(compiled, task["form"], task["data"], zone)  # sent back: revised from what was sent
    # -- approvals (tasks/_decision.html): the decision and the data decided on; work sent back, with the reason
    decision = decisions.decision(conn, compiled, user, task, zone)
    sent_back = decisions.sent_back(conn, compiled, task, zone)
    # -- end of approvals
    can_reassign = task["status"] in OPEN and allowed(model, user, "monitor_tasks")
    return render(request, "tasks/task.html", user=user, status=status, task=view, page=shown,
                  layout=compiled.form_layouts.get(task["form"]) if task["form"] else None,
                  values=values or {}, errors=errors or {}, options=options_for(conn, compiled, task["form"], rec) if task["form"] else {},
                  can_complete=can_complete,
                  can_claim=task["status"] == "open" and task["assignee_id"] is None and task["group_name"] in task["_groups"],
                  can_decide=bool(decision and decision["can_decide"]), decision=decision, sent_back=sent_back,
                  can_comment=task["status"] in OPEN, can_reassign=can_reassign,
                  holders=holders_of(conn, compiled, task) if can_reassign else {}, request_id=str(uuid.uuid4()))


def holders_of(conn, compiled: CompiledModel, task: dict) -> dict[str, list[dict]]:
    """Whom the reassign picker offers, by name: the active users whom runtime.holders lets hold this task, the task's
    group's members first ({heading: people})."""
    people = [dict(r) for r in conn.execute(sa.select(users.c.id, users.c.name).where(users.c.active).order_by(users.c.name)).mappings()]
    fine = set(holders.eligible(conn, compiled.model, [p["id"] for p in people], task))
    team = set(conn.execute(sa.select(group_members.c.user_id).where(group_members.c.group_name == task["group_name"])).scalars()) \
        if task["group_name"] else set()
    offered = [p for p in people if p["id"] in fine]
    if not team:
        return {"": offered}
    locale = compiled.model.locale  # the page's language
    return {words.text(locale, "In %(group)s", group=taskpage.group_label(compiled.model, task["group_name"])): [p for p in offered if p["id"] in team],
            words.text(locale, "Everyone else"): [p for p in offered if p["id"] not in team]}


async def refused(request, engine, compiled, user, task, status, problem, values=None):
    """The task page again, with the refusal on it."""
    def again():
        with engine.connect() as conn:
            return task_page(request, conn, compiled, user, task, status, values, {"": problem} if isinstance(problem, str) else problem)

    return await run_in_threadpool(again)


def _load(engine, compiled, task_id: int, user: dict) -> dict:
    with engine.connect() as conn:
        return task_or_404(conn, compiled, task_id, user)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_detail(request: Request, task_id: int, user: Permitted("manage_own_tasks"), conn: Conn, compiled: CompiledDep):
    return task_page(request, conn, compiled, user, task_or_404(conn, compiled, task_id, user))


def _key(data) -> str | None:
    """The form's request id: a double click or a retried POST repeats it, so the action is done once."""
    value = str(data.get("request_id") or "").strip()
    return value[:200] or None


async def _act(request, engine, compiled, user, task, status, action, values=None):
    """Run a staff action; on refusal, the task page again with the reason (and per-field messages) on it."""
    try:
        await action
    except ActionRefused as exc:
        return await refused(request, engine, compiled, user, task, exc.status if exc.status != 422 else status,
                             exc.errors or exc.message, values)
    return None


@router.post("/tasks/{task_id}/complete", response_class=HTMLResponse)
async def task_complete(request: Request, task_id: int, user: Permitted("manage_own_tasks"), data: CsrfForm, engine: EngineDep,
                        compiled: CompiledDep, actions: TaskActionsDep):
    task = await run_in_threadpool(_load, engine, compiled, task_id, user)
    if not may_act_on_task(user, task, task["_groups"]):
        raise HTTPException(403, "This task is assigned to someone else.")
    typed = {k: (data.getlist(k) if len(data.getlist(k)) > 1 else data.get(k)) for k in data}
    page = await _act(request, engine, compiled, user, task, 422, actions.complete(task, user, data, key=_key(data)), typed)
    if page is not None:
        return page
    flash(request, said(request, "Done: %(task)s", task=task_title(task, compiled.model.locale, compiled.model)))
    return redirect("/")


def _refusal(engine, compiled, user: dict, task: dict) -> str | None:
    with engine.connect() as conn:
        return decide_refusal(compiled.model, user, task, task["_groups"], task["_pm"], task_service.requester(conn, task))


@router.post("/tasks/{task_id}/decide", response_class=HTMLResponse)
async def task_decide(request: Request, task_id: int, user: Permitted("approve_tasks"), data: CsrfForm, engine: EngineDep,
                      compiled: CompiledDep, actions: TaskActionsDep):
    """Approve, or reject with a reason: a rejection without one re-shows the page with the message at the reason."""
    task = await run_in_threadpool(_load, engine, compiled, task_id, user)
    if (why := await run_in_threadpool(_refusal, engine, compiled, user, task)) is not None:
        raise HTTPException(403, why)
    approve = data.get("decision") == "approve"
    typed = str(data.get("reason", ""))
    page = await _act(request, engine, compiled, user, task, 422,
                      actions.decide(task, user, approve, key=_key(data), comment="" if approve else typed), {"reason": typed})
    if page is not None:
        return page
    flash(request, said(request, "Approved: %(task)s" if approve else "Sent back: %(task)s",
                              task=task_title(task, compiled.model.locale, compiled.model)))
    return redirect("/")


@router.post("/tasks/{task_id}/comment", response_class=HTMLResponse)
async def task_comment(request: Request, task_id: int, user: Permitted("manage_own_tasks"), data: CsrfForm, engine: EngineDep,
                       compiled: CompiledDep, actions: TaskActionsDep):
    task = await run_in_threadpool(_load, engine, compiled, task_id, user)
    page = await _act(request, engine, compiled, user, task, 422, actions.comment(task, user, str(data.get("comment", "")), key=_key(data)))
    if page is not None:
        return page
    flash(request, said(request, "Comment added."))
    return redirect(f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/reassign", response_class=HTMLResponse)
async def task_reassign(request: Request, task_id: int, user: Permitted("monitor_tasks"), data: CsrfForm, engine: EngineDep,
                        compiled: CompiledDep, actions: TaskActionsDep):
    task = await run_in_threadpool(_load, engine, compiled, task_id, user)
    page = await _act(request, engine, compiled, user, task, 422, actions.reassign(task, user, data.get("to_user"), key=_key(data)))
    if page is not None:
        return page
    flash(request, said(request, "Task reassigned."))
    return redirect(f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/claim")
async def task_claim(request: Request, task_id: int, user: Permitted("manage_own_tasks"), data: CsrfForm, engine: EngineDep,
                     compiled: CompiledDep, actions: TaskActionsDep):
    def load():
        with engine.connect() as conn:
            task = task_or_404(conn, compiled, task_id)
            groups = set(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user["id"])).scalars())
        return task, groups

    task, groups = await run_in_threadpool(load)
    if task["assignee_id"] is not None or task["group_name"] not in groups:
        raise HTTPException(403, "Only a waiting task of one of your groups can be claimed.")
    try:
        await actions.reassign(task, user, user["id"], key=_key(data))
    except ActionRefused as exc:
        raise HTTPException(exc.status, exc.message) from None
    flash(request, said(request, "It's yours: %(task)s", task=task_title(task, compiled.model.locale, compiled.model)))
    return redirect(f"/tasks/{task_id}")
