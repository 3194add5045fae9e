"""What the web app asks of Temporal besides staff actions (runtime.taskactions): start enqueued processes, announce submissions."""
from __future__ import annotations

from engine.compiler import CompiledModel
from forms import submit as forms
from runtime.starter import start_enqueued

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
                    "updated": result.updated, "by": user["id"]})
