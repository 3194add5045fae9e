"""Tasks over the API: my open tasks, and completing, approving and reassigning one."""
from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from runtime import tasks as task_service
from runtime.holders import MAX_ID
from runtime.schema import tasks
from runtime.taskactions import ActionRefused, TaskActions

from ..access import decide_refusal, may_act_on_task, may_see_task
from ..deps import Conn, EngineDep, ServicesDep, task_actions
from .auth import ApiPermitted
from .common import (
    ApiCompiled,
    FormValue,
    Moment,
    Text,
    id_or_404,
    key_parameter,
    optional_key,
    row_json,
)
from .problems import Problem, problems
from .routing import area_router

router = area_router("tasks")
IdempotencyKey = Annotated[str | None, Depends(optional_key)]


async def api_task_actions(services: ServicesDep, compiled: ApiCompiled) -> TaskActions:
    """The staff-action service over the active model, as written (see `api_compiled`)."""
    return task_actions(services, compiled)


ApiTaskActions = Annotated[TaskActions, Depends(api_task_actions)]
ACTION = {"responses": problems(400, 403, 404, 409, 413, 422, 503), "response_model_exclude_unset": True,
          "openapi_extra": {"parameters": [key_parameter(required=False)]}}


class CompleteBody(BaseModel):
    """Completes a task: the values of its step form (none for a step without a form), as the form's JSON Schema
    (GET /api/forms/{form}/schema) describes them."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"data": {"outcome": "qualified", "notes": "Budget agreed"},
                                                               "comment": "Called on Monday"}]})

    data: dict[str, FormValue] = Field(default_factory=dict, description="the step form's values, by field name")
    comment: Text = Field("", max_length=10_000, description="a note kept in the record's history with the completion (optional)")


class ApproveBody(BaseModel):
    """Decides an approval waiting for the caller: approve, or reject with a reason (the work goes back to whoever did it)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"approve": False, "reason": "20% is more than we give this customer"}]})

    approve: bool = Field(True, description="true to approve; false to reject and send the work back to whoever did it")
    reason: Text = Field("", max_length=10_000, description="why it is rejected: required with approve: false (the requester sees it)")
    comment: Text = Field("", max_length=10_000, description="a note with an approval; with a rejection, taken as the reason "
                                                             "when no reason is given")


class ReassignBody(BaseModel):
    """Hands a task to another user."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"to_user": 12}]})

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


@router.post("/tasks/{task_id}/complete", response_model=ActionResult, **ACTION)
async def complete(task_id: int, body: CompleteBody, user: ApiPermitted("manage_own_tasks"), engine: EngineDep,
                   actions: ApiTaskActions, idempotency_key: IdempotencyKey) -> dict:
    """Complete a task with its step form's values (the form's on-submit actions run as on the web page)."""
    return await act(engine, user, task_id, lambda t, g, pm: may_act_on_task(user, t, g),
                     lambda t: actions.complete(t, user, body.data, key=idempotency_key, comment=body.comment))


def _decider(engine, task_id: int, user: dict) -> tuple[dict, set[str], int | None, int | None]:
    task, groups, pm = _task(engine, task_id, user)
    with engine.connect() as conn:
        return task, groups, pm, task_service.requester(conn, task)


@router.post("/tasks/{task_id}/approve", response_model=ActionResult, **ACTION)
async def approve(task_id: int, body: ApproveBody, user: ApiPermitted("approve_tasks"), engine: EngineDep, compiled: ApiCompiled,
                  actions: ApiTaskActions, idempotency_key: IdempotencyKey) -> dict:
    """Approve an approval task of the caller's, or reject it with `approve: false` and a `reason` (422 without one): the
    work goes back to whoever did it. Nobody decides on their own work (403), nor on someone else's approval (403); a
    decided or cancelled approval answers 409. A task awaiting its own approver (a process started before approval
    steps) is decided the same way."""
    task, groups, pm, requester = await run_in_threadpool(_decider, engine, task_id, user)
    if (why := decide_refusal(compiled.model, user, task, groups, pm, requester)) is not None:
        raise Problem(403, "Forbidden", why)
    text = body.comment if body.approve else (body.reason or body.comment)
    try:
        return await actions.decide(task, user, body.approve, key=idempotency_key, comment=text)
    except ActionRefused as exc:
        raise Problem(exc.status, exc.message, errors=exc.errors or None) from None


@router.post("/tasks/{task_id}/reassign", response_model=ActionResult, **ACTION)
async def reassign(task_id: int, body: ReassignBody, user: ApiPermitted("monitor_tasks"), engine: EngineDep, compiled: ApiCompiled,
                   actions: ApiTaskActions, idempotency_key: IdempotencyKey) -> dict:
    """Hand a task to another active staff user who may hold it."""
    return await act(engine, user, task_id, lambda t, g, pm: may_see_task(compiled.model, user, t, g, pm),
                     lambda t: actions.reassign(t, user, body.to_user, key=idempotency_key))
