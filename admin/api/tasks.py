"""Tasks over the API: my open tasks, and completing, approving and reassigning one."""
from __future__ import annotations

import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError

from runtime import tasks as task_service
from runtime.schema import tasks
from runtime.workflows import ProcessWorkflow, TaskAction

from ..access import may_act_on_task, may_approve, may_see_task
from ..web.deps import CompiledDep, Conn, EngineDep, ServicesDep
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


async def act(engine, compiled, services, user: dict, task_id: int, update, action_of, key: str | None) -> dict:
    """Run a staff action on a task as a workflow update, once its permission is checked."""
    def load():
        with engine.connect() as conn:
            task = task_service.get_task(conn, id_or_404(task_id, "task"))
            if task is None:
                raise Problem(404, "Not found", f"There is no task {task_id}.")
            return task, *task_service.access_context(conn, user["id"], task)

    task, groups, pm = await run_in_threadpool(load)
    model = compiled.model
    if update is ProcessWorkflow.decide:
        permitted = may_approve(model, user, task, groups, pm)
    elif update is ProcessWorkflow.reassign:
        permitted = may_see_task(model, user, task, groups, pm)
    else:
        permitted = may_act_on_task(user, task, groups)
    if not permitted:
        raise Problem(403, "Forbidden", "This task is not yours to act on.")
    if services.client is None:
        raise Problem(503, "Process engine unavailable")
    update_id = f"api-{key}-{user['id']}-{update.__name__}" if key else f"api-{uuid.uuid4()}"
    try:
        return await services.client.get_workflow_handle(task["workflow_id"]).execute_update(update, action_of(task), id=update_id)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        details = getattr(cause, "details", None) or ()
        raise Problem(409 if getattr(cause, "type", "") == "Conflict" else 422, getattr(cause, "message", str(cause)),
                      errors=details[0] if details and isinstance(details[0], dict) else None) from None


@router.post("/tasks/{task_id}/complete")
async def complete(task_id: int, body: CompleteBody, user: ApiPermitted("manage_own_tasks"), engine: EngineDep, compiled: CompiledDep,
                   services: ServicesDep, idempotency_key: IdempotencyKey = None) -> dict:
    return await act(engine, compiled, services, user, task_id, ProcessWorkflow.complete,
                     lambda t: TaskAction(step=t["step_id"], user_id=user["id"], data=body.data, comment=body.comment), idempotency_key)


@router.post("/tasks/{task_id}/approve")
async def approve(task_id: int, body: ApproveBody, user: ApiPermitted("approve_tasks"), engine: EngineDep, compiled: CompiledDep,
                  services: ServicesDep, idempotency_key: IdempotencyKey = None) -> dict:
    return await act(engine, compiled, services, user, task_id, ProcessWorkflow.decide,
                     lambda t: TaskAction(step=t["step_id"], user_id=user["id"], approve=body.approve, comment=body.comment), idempotency_key)


@router.post("/tasks/{task_id}/reassign")
async def reassign(task_id: int, body: ReassignBody, user: ApiPermitted("monitor_tasks"), engine: EngineDep, compiled: CompiledDep,
                   services: ServicesDep, idempotency_key: IdempotencyKey = None) -> dict:
    return await act(engine, compiled, services, user, task_id, ProcessWorkflow.reassign,
                     lambda t: TaskAction(step=t["step_id"], user_id=user["id"], to_user=body.to_user), idempotency_key)
