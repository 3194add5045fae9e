"""What the web app asks of Temporal: start the processes a change enqueued, announce submissions, send staff actions."""
from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError

from engine.compiler import CompiledModel
from forms import submit as forms
from runtime.starter import start_enqueued
from runtime.workflows import TaskAction

from .deps import Services


async def started(services: Services, compiled: CompiledModel, starts) -> None:
    """Start the processes a change enqueued (the drainer retries any that fail here)."""
    if services.client is not None and starts:
        await start_enqueued(services.client, services.engine, compiled, services.task_queue, starts, announce=services.webhooks)


async def announce_submission(services: Services, form, result, values: dict, user: dict) -> None:
    """Tell webhook receivers about a new submission, if any of them asked to hear of it."""
    if services.client is None or "submission.created" not in services.webhooks:
        return
    from runtime.webhooks import announce

    await announce(services.client, services.task_queue, "submission.created", f"submission:{result.id}",
                   {"form": form.name, "submission_id": result.id, "values": forms.jsonable(values), "created": result.created,
                    "by": user["id"]})


async def send(services: Services, task: dict, update, action: TaskAction, update_id: str) -> str | None:
    """Run a staff action as a workflow update; the refusal's message, or None when it was taken."""
    if services.client is None:
        return "The process engine is not connected."
    try:
        await services.client.get_workflow_handle(task["workflow_id"]).execute_update(update, action, id=update_id)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        return getattr(cause, "message", None) or str(cause)
    return None
