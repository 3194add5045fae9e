"""A task's page and what staff do with it: complete, approve or reject, comment, reassign, claim."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine.compiler import CompiledModel
from forms import submit as forms
from forms.widgets import zone_of
from runtime.schema import group_members
from runtime.workflows import ProcessWorkflow, TaskAction

from ...access import allowed, may_act_on_task, may_approve
from ..deps import CompiledDep, Conn, CsrfForm, EngineDep, Permitted, ServicesDep
from ..finders import options_for, record_or_404, staff_list, task_or_404
from ..pages import flash, redirect, render, task_view
from ..processes import send, started

router = APIRouter(include_in_schema=False)


def task_page(request: Request, conn, compiled: CompiledModel, user: dict, task: dict, status: int = 200, values=None, errors=None):
    """The task page as `user` may see it: only the actions they may take."""
    model = compiled.model
    view = task_view(task, zone_of(model, user))
    if task["entity"] and task["record_id"]:
        rec = record_or_404(conn, compiled, task["entity"], task["record_id"])
        view.update(record_link=f"/records/{task['entity']}/{task['record_id']}", record_title=rec.title)
    return render(request, "tasks/task.html", user=user, status=status, task=view,
                  layout=compiled.form_layouts.get(task["form"]) if task["form"] else None,
                  values=values or {}, errors=errors or {}, options=options_for(conn, compiled, task["form"]) if task["form"] else {},
                  can_complete=task["status"] == "open" and may_act_on_task(user, task, task["_groups"]),
                  can_decide=task["status"] == "awaiting_approval" and may_approve(model, user, task, task["_groups"], task["_pm"]),
                  can_reassign=task["status"] in ("open", "awaiting_approval") and allowed(model, user, "monitor_tasks"),
                  staff=staff_list(conn), request_id=str(uuid.uuid4()))


async def refused(request, engine, compiled, user, task, status, problem, values=None):
    """The task page again, with the refusal on it."""
    def again():
        with engine.connect() as conn:
            return task_page(request, conn, compiled, user, task, status, values, {"": problem} if isinstance(problem, str) else problem)

    return await run_in_threadpool(again)


def _load(engine, compiled, task_id: int, user: dict) -> dict:
    with engine.connect() as conn:
        return task_or_404(conn, compiled, task_id, user)


def _request_id(data) -> str:
    return str(data.get("request_id") or uuid.uuid4())[:100]


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_detail(request: Request, task_id: int, user: Permitted("manage_own_tasks"), conn: Conn, compiled: CompiledDep):
    return task_page(request, conn, compiled, user, task_or_404(conn, compiled, task_id, user))


@router.post("/tasks/{task_id}/complete", response_class=HTMLResponse)
async def task_complete(request: Request, task_id: int, user: Permitted("manage_own_tasks"), data: CsrfForm, engine: EngineDep,
                        compiled: CompiledDep, services: ServicesDep):
    task = await run_in_threadpool(_load, engine, compiled, task_id, user)
    if not may_act_on_task(user, task, task["_groups"]):
        raise HTTPException(403, "This task is assigned to someone else.")
    form = compiled.model.forms[task["form"]] if task["form"] else None
    values, errors = forms.parse(form, data) if form else ({}, {})
    request_id = _request_id(data)
    if not errors:
        problem = await send(services, task, ProcessWorkflow.complete,
                             TaskAction(step=task["step_id"], user_id=user["id"], data=forms.jsonable(values)), f"web-{request_id}")
        if problem:
            errors = {"": problem}
    if errors:
        return await refused(request, engine, compiled, user, task, 422, errors, {k: data.get(k) for k in data.keys()})
    if form and form.actions:
        # the step's form acts like any other submission (e.g. moves the opportunity on), keyed by this request
        def submit():
            with engine.begin() as conn:
                return forms.submit(conn, compiled, task["form"], values, submission_id=f"task-{task_id}-{request_id}",
                                    user=user, record_id=task["record_id"])

        result = await run_in_threadpool(submit)
        await started(services, compiled, result.starts)
    flash(request, f"Done: {task['title']}")
    return redirect("/")


@router.post("/tasks/{task_id}/decide", response_class=HTMLResponse)
async def task_decide(request: Request, task_id: int, user: Permitted("approve_tasks"), data: CsrfForm, engine: EngineDep,
                      compiled: CompiledDep, services: ServicesDep):
    task = await run_in_threadpool(_load, engine, compiled, task_id, user)
    if not may_approve(compiled.model, user, task, task["_groups"], task["_pm"]):
        raise HTTPException(403, "You are not the approver of this task.")
    approve = data.get("decision") == "approve"
    problem = await send(services, task, ProcessWorkflow.decide, TaskAction(step=task["step_id"], user_id=user["id"], approve=approve,
                         comment=str(data.get("comment", ""))), f"web-{_request_id(data)}")
    if problem:
        return await refused(request, engine, compiled, user, task, 409, problem)
    flash(request, f"{'Approved' if approve else 'Sent back'}: {task['title']}")
    return redirect("/")


@router.post("/tasks/{task_id}/comment", response_class=HTMLResponse)
async def task_comment(request: Request, task_id: int, user: Permitted("manage_own_tasks"), data: CsrfForm, engine: EngineDep,
                       compiled: CompiledDep, services: ServicesDep):
    task = await run_in_threadpool(_load, engine, compiled, task_id, user)
    text = str(data.get("comment", "")).strip()
    if not text:
        return await refused(request, engine, compiled, user, task, 422, "Write a comment first.")
    problem = await send(services, task, ProcessWorkflow.comment, TaskAction(step=task["step_id"], user_id=user["id"], comment=text),
                         f"web-{_request_id(data)}")
    if problem:
        return await refused(request, engine, compiled, user, task, 409, problem)
    flash(request, "Comment added.")
    return redirect(f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/reassign", response_class=HTMLResponse)
async def task_reassign(request: Request, task_id: int, user: Permitted("monitor_tasks"), data: CsrfForm, engine: EngineDep,
                        compiled: CompiledDep, services: ServicesDep):
    task = await run_in_threadpool(_load, engine, compiled, task_id, user)
    try:
        to_user = int(str(data.get("to_user", "")))
    except ValueError:
        return await refused(request, engine, compiled, user, task, 422, "Choose who should do the task.")
    problem = await send(services, task, ProcessWorkflow.reassign, TaskAction(step=task["step_id"], user_id=user["id"], to_user=to_user),
                         f"web-{_request_id(data)}")
    if problem:
        return await refused(request, engine, compiled, user, task, 409, problem)
    flash(request, "Task reassigned.")
    return redirect(f"/tasks/{task_id}")


@router.post("/tasks/{task_id}/claim")
async def task_claim(request: Request, task_id: int, user: Permitted("manage_own_tasks"), data: CsrfForm, engine: EngineDep,
                     compiled: CompiledDep, services: ServicesDep):
    def load():
        with engine.connect() as conn:
            task = task_or_404(conn, compiled, task_id)
            groups = set(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user["id"])).scalars())
        return task, groups

    task, groups = await run_in_threadpool(load)
    if task["assignee_id"] is not None or task["group_name"] not in groups:
        raise HTTPException(403, "Only a waiting task of one of your groups can be claimed.")
    problem = await send(services, task, ProcessWorkflow.reassign, TaskAction(step=task["step_id"], user_id=user["id"], to_user=user["id"]),
                         f"web-{_request_id(data)}")
    if problem:
        raise HTTPException(409, problem)
    flash(request, f"It's yours: {task['title']}")
    return redirect(f"/tasks/{task_id}")
