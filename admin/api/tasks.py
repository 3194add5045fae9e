"""Tasks over the API: my open tasks, and completing, approving and reassigning one."""
from __future__ import annotations

import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from runtime import tasks as task_service
from runtime.schema import tasks
from runtime.workflows import ProcessWorkflow, TaskAction

from ..access import may_act_on_task, may_approve, may_see_task
from ..web.deps import CompiledDep, Conn, EngineDep, ServicesDep
from ..web.finders import MAX_ID
from .auth import ApiPermitted
from .common import FormValue, Text, id_or_404, key_parameter, optional_key, row_json
from .problems import Problem, problems
from .routing import ApiRoute

router = APIRouter(tags=["tasks"], route_class=ApiRoute)
IdempotencyKey = Annotated[str | None, Depends(optional_key)]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
ACTION = {"responses": problems(400, 403, 404, 409, 413, 422, 503), "response_model_exclude_unset": True,
          "openapi_extra": {"parameters": [key_parameter(required=False)]}}


class CompleteBody(BaseModel):
    data: dict[str, FormValue] = Field(default_factory=dict, description="the step form's values, by field name")
    comment: Text = Field("", max_length=10_000)


class ApproveBody(BaseModel):
    approve: bool = True
    comment: Text = Field("", max_length=10_000)


class ReassignBody(BaseModel):
    to_user: Annotated[int, Field(strict=True, ge=1, le=MAX_ID)] = Field(description="the id of the staff user who should do the task")


class TaskOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # every column of the task row

    id: int
    workflow_id: str
    process: str
    step_id: str
    title: str
    description: str | None
    entity: str | None
    record_id: int | None
    project_id: int | None
    form: str | None
    assignee_id: int | None
    group_name: str | None
    status: str = Field(description="open or awaiting_approval")
    due_at: Moment | None
    created_at: Moment


class ActionResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    step: str
    status: str | None = None
    outcome: str | None = None
    assignee_id: int | None = None


@router.get("/tasks", response_model=list[TaskOut], responses=problems(403))
def my_tasks(user: ApiPermitted("manage_own_tasks"), conn: Conn) -> list[dict]:
    """The caller's open tasks, soonest due first."""
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
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # the task row is open but its process has ended
            raise Problem(409, "Process not running", "The process this task belongs to is no longer running.") from None
        raise Problem(503, "Process engine unavailable", "The process engine did not answer; try again.") from None


@router.post("/tasks/{task_id}/complete", response_model=ActionResult, **ACTION)
async def complete(task_id: int, body: CompleteBody, user: ApiPermitted("manage_own_tasks"), engine: EngineDep, compiled: CompiledDep,
                   services: ServicesDep, idempotency_key: IdempotencyKey) -> dict:
    return await act(engine, compiled, services, user, task_id, ProcessWorkflow.complete,
                     lambda t: TaskAction(step=t["step_id"], user_id=user["id"], data=body.data, comment=body.comment), idempotency_key)


@router.post("/tasks/{task_id}/approve", response_model=ActionResult, **ACTION)
async def approve(task_id: int, body: ApproveBody, user: ApiPermitted("approve_tasks"), engine: EngineDep, compiled: CompiledDep,
                  services: ServicesDep, idempotency_key: IdempotencyKey) -> dict:
    return await act(engine, compiled, services, user, task_id, ProcessWorkflow.decide,
                     lambda t: TaskAction(step=t["step_id"], user_id=user["id"], approve=body.approve, comment=body.comment), idempotency_key)


@router.post("/tasks/{task_id}/reassign", response_model=ActionResult, **ACTION)
async def reassign(task_id: int, body: ReassignBody, user: ApiPermitted("monitor_tasks"), engine: EngineDep, compiled: CompiledDep,
                   services: ServicesDep, idempotency_key: IdempotencyKey) -> dict:
    return await act(engine, compiled, services, user, task_id, ProcessWorkflow.reassign,
                     lambda t: TaskAction(step=t["step_id"], user_id=user["id"], to_user=body.to_user), idempotency_key)
