"""Tasks over the API: my open tasks, and completing, approving and reassigning one."""
from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from runtime import tasks as task_service
from runtime.schema import tasks
from runtime.taskactions import ActionRefused

from ..access import may_act_on_task, may_approve, may_see_task
from ..web.deps import CompiledDep, Conn, EngineDep, TaskActionsDep
from .auth import ApiPermitted
from .common import id_or_404, row_json
from .problems import Problem

router = APIRouter(tags=["tasks"])
IdempotencyKey = Annotated[str | None, Header(max_length=200, description="Repeat a request with the same key to get its first answer")]


class CompleteBody(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict, description="the step form's values")
    comment: str = Field("", max_length=10_000)


class ApproveBody(BaseModel):
    approve: bool = True
    comment: str = Field("", max_length=10_000)


class ReassignBody(BaseModel):
    to_user: int = Field(description="the id of the staff user who should do the task")


@router.get("/tasks")
def my_tasks(user: ApiPermitted("manage_own_tasks"), conn: Conn) -> list[dict]:
    rows = conn.execute(sa.select(tasks).where(tasks.c.assignee_id == user["id"], tasks.c.status.in_(("open", "awaiting_approval")))
                        .order_by(tasks.c.due_at.is_(None), tasks.c.due_at)).mappings().all()
    return [row_json(dict(r)) for r in rows]


def _task(engine, task_id: int, user: dict) -> tuple[dict, set[str], int | None]:
    with engine.connect() as conn:
        task = task_service.get_task(conn, id_or_404(task_id, "task"))
        if task is None:
            raise Problem(404, "Not found", f"There is no task {task_id}.")
        return task, *task_service.access_context(conn, user["id"], task)


async def act(engine, user: dict, task_id: int, permitted, action) -> dict:
    """Run a staff action on a task (through runtime.taskactions) once `permitted(task, groups, pm)` allows it."""
    task, groups, pm = await run_in_threadpool(_task, engine, task_id, user)
    if not permitted(task, groups, pm):
        raise Problem(403, "Forbidden", "This task is not yours to act on.")
    try:
        return await action(task)
    except ActionRefused as exc:
        raise Problem(exc.status, exc.message, errors=exc.errors or None) from None


@router.post("/tasks/{task_id}/complete", responses={409: {"description": "The task is no longer open"}})
async def complete(task_id: int, body: CompleteBody, user: ApiPermitted("manage_own_tasks"), engine: EngineDep,
                   actions: TaskActionsDep, idempotency_key: IdempotencyKey = None) -> dict:
    """Complete a task with its step form's values (the form's on-submit actions run as on the web page)."""
    return await act(engine, user, task_id, lambda t, g, pm: may_act_on_task(user, t, g),
                     lambda t: actions.complete(t, user, body.data, key=idempotency_key, comment=body.comment))


@router.post("/tasks/{task_id}/approve", responses={409: {"description": "The task is not awaiting approval"}})
async def approve(task_id: int, body: ApproveBody, user: ApiPermitted("approve_tasks"), engine: EngineDep, compiled: CompiledDep,
                  actions: TaskActionsDep, idempotency_key: IdempotencyKey = None) -> dict:
    """Approve, or send back with `approve: false`, a task awaiting the caller's approval."""
    return await act(engine, user, task_id, lambda t, g, pm: may_approve(compiled.model, user, t, g, pm),
                     lambda t: actions.decide(t, user, body.approve, key=idempotency_key, comment=body.comment))


@router.post("/tasks/{task_id}/reassign", responses={409: {"description": "The task is no longer open"}})
async def reassign(task_id: int, body: ReassignBody, user: ApiPermitted("monitor_tasks"), engine: EngineDep, compiled: CompiledDep,
                   actions: TaskActionsDep, idempotency_key: IdempotencyKey = None) -> dict:
    """Hand a task to another active staff user who may hold it."""
    return await act(engine, user, task_id, lambda t, g, pm: may_see_task(compiled.model, user, t, g, pm),
                     lambda t: actions.reassign(t, user, body.to_user, key=idempotency_key))
