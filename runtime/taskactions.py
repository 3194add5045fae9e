"""Staff actions on tasks — complete, decide, reassign, comment — the one service the web pages and the API call.

Each action is an update of the task's process workflow. Its update id comes from `update_id`: a request
without an idempotency key is a new request; with one, a repeat gets the first answer (Temporal keeps
the update's outcome) and does nothing again. Completing a task also runs its step form's on-submit
actions, keyed by the same request, so both channels leave the same rows.

Who may act is the caller's concern (`admin/access.py`: the task's assignee, its approver, a monitor);
whom a task may go to is decided here (`runtime/holders.py`), before the update, since the workflow
cannot read the database; the workflow's own write checks it once more.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from engine.compiler import CompiledModel
from engine.errors import TailorError
from forms import submit as forms
from . import approvals, holders
from .starter import UNREACHABLE, start_enqueued
from .workflows import DATA_ERROR, NOT_A_HOLDER, ProcessWorkflow, TaskAction

# how each kind of refusal answers over HTTP
STATUS = {"Invalid": 422, NOT_A_HOLDER: 422, DATA_ERROR: 422, "Forbidden": 403, "NotFound": 404, "Conflict": 409, "Unavailable": 503}


class ActionRefused(TailorError):
    """A task action that was not done: `kind` says why (see STATUS), `errors` holds a message per form field."""

    def __init__(self, message: str, kind: str = "Invalid", errors: dict[str, str] | None = None):
        super().__init__(message)
        self.message, self.kind, self.errors = message, kind, errors or {}

    @property
    def status(self) -> int:
        """The HTTP status that answers this refusal."""
        return STATUS.get(self.kind, 422)


def update_id(key: str | None, *, user_id: int, task_id: int, action: str) -> str:
    """The update id of one staff action: new for every request without a key; the same for a repeat of a keyed one.

    The key is the caller's (an API Idempotency-Key, the web form's request id), scoped to the user, the task and the
    action, and hashed: any length or character fits, and one user's key never answers another's request.
    """
    if key is None:
        return f"{action}-{task_id}-{user_id}-{uuid.uuid4().hex}"
    return f"{action}-{task_id}-{user_id}-{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"


def _target(value: Any) -> int:
    """The user id a request names: a whole number, or its digits as a web form sends them."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise ActionRefused("Choose who should do the task.")
    if not holders.valid_id(value):
        raise ActionRefused("There is no such user.", NOT_A_HOLDER)
    return value


@dataclass(frozen=True)
class TaskActions:
    """Staff actions on tasks, bound to the store, the model and the process engine (`client` None: not connected)."""

    engine: sa.Engine
    compiled: CompiledModel
    client: Client | None
    task_queue: str
    announce: Sequence[str] = ()  # webhook events someone receives, for processes a completion's form starts
    clock: Callable[[], dt.datetime] | None = None  # when processes a completion starts start (default: now; a test's fake clock)

    async def complete(self, task: dict, user: dict, data: Mapping[str, Any], *, key: str | None, comment: str = "") -> dict:
        """Complete `task` as `user`: check the step form's values, run its on-submit actions (e.g. the opportunity moves on)
        as a submission keyed by this request, then the process's `complete` update.

        The actions come first because the steps that follow read the record as the form leaves it (the proposal goes
        to the owner the qualification names). A form that cannot update the record leaves the task open; a repeat of
        the request (same key) finds its submission done and completes the task.
        """
        form = self.compiled.model.forms.get(task["form"]) if task["form"] else None
        if not isinstance(data, Mapping):
            raise ActionRefused("The form's values must be an object of field names and values.")
        values, errors = forms.parse(form, data) if form else ({}, {})
        if errors:
            raise ActionRefused("The form has errors.", "Invalid", errors)
        uid = update_id(key, user_id=user["id"], task_id=task["id"], action="complete")
        starts: Sequence[str] = ()
        # a task no longer open changes no record: the update replays a keyed repeat's first answer, or refuses
        if form and form.actions and task["status"] == "open":
            def submit() -> forms.Submission:
                with self.engine.begin() as conn:
                    return forms.submit(conn, self.compiled, form.name, values, submission_id=f"task-{task['id']}-{uid}", user=user,
                                        record_id=task["record_id"])
            try:
                starts = (await asyncio.to_thread(submit)).starts
            except forms.SubmissionInvalid as exc:
                raise ActionRefused(f"The form could not update the record: {exc}", "Invalid", exc.errors) from exc
        result = await self._update(task, ProcessWorkflow.complete, uid, TaskAction(
            step=task["step_id"], user_id=user["id"], data=forms.jsonable(values), comment=comment))
        if starts and self.client is not None:
            await start_enqueued(self.client, self.engine, self.compiled, self.task_queue, starts, announce=self.announce,
                                 now=self.clock() if self.clock else None)
        return result

    async def decide(self, task: dict, user: dict, approve: bool, *, key: str | None, comment: str = "") -> dict:
        """Approve (`comment`: an optional note), or reject with a reason (`comment`: required), an approval task of
        `user`'s (or, from a process started before approval steps, a task awaiting their approval). A rejection without
        a reason is refused here; a decision on one's own work by the process, before anything is recorded."""
        comment = comment if isinstance(comment, str) else ""
        if not approve and not comment.strip():
            raise ActionRefused("Say why you are sending it back.", "Invalid", {"reason": "Say why you are sending it back."})
        uid = update_id(key, user_id=user["id"], task_id=task["id"], action="decide")
        return await self._update(task, ProcessWorkflow.decide, uid, TaskAction(
            step=task["step_id"], user_id=user["id"], approve=bool(approve), comment=comment.strip(), task_id=task["id"]))

    async def reassign(self, task: dict, user: dict, to_user: Any, *, key: str | None) -> dict:
        """Hand `task` to `to_user` (an id, or its digits) if they may hold it (`runtime.holders`): refused before the process
        hears of it otherwise, naming them and why."""
        target = _target(to_user)

        def check() -> str:
            with self.engine.connect() as conn:
                name = holders.check(conn, self.compiled.model, target, task)
                if task.get("kind") == "approval" and not approvals.may_approve(conn, self.compiled.model, [target], task):
                    raise holders.NotAHolder(f"{name} may not approve.")
                return name
        try:
            name = await asyncio.to_thread(check)
        except holders.NotAHolder as exc:
            raise ActionRefused(str(exc), NOT_A_HOLDER) from exc
        uid = update_id(key, user_id=user["id"], task_id=task["id"], action="reassign")
        return await self._update(task, ProcessWorkflow.reassign, uid, TaskAction(
            step=task["step_id"], user_id=user["id"], to_user=target, to_name=name, task_id=task["id"]))

    async def comment(self, task: dict, user: dict, text: str, *, key: str | None) -> dict:
        """Add a comment to `task` (in its record's history)."""
        if not isinstance(text, str) or not text.strip():
            raise ActionRefused("Write a comment first.")
        uid = update_id(key, user_id=user["id"], task_id=task["id"], action="comment")
        return await self._update(task, ProcessWorkflow.comment, uid, TaskAction(step=task["step_id"], user_id=user["id"], comment=text.strip(),
                                                                            task_id=task["id"]))

    async def _update(self, task: dict, update: Any, uid: str, action: TaskAction) -> dict:
        if self.client is None:
            raise ActionRefused("The process engine is not connected.", "Unavailable")
        try:
            return await self.client.get_workflow_handle(task["workflow_id"]).execute_update(update, action, id=uid)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            details = getattr(cause, "details", None) or ()
            raise ActionRefused(_sentence(getattr(cause, "message", None) or str(cause)), getattr(cause, "type", None) or "Invalid",
                                details[0] if details and isinstance(details[0], dict) else None) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ActionRefused("The process this task belongs to has ended.", "Conflict") from None
            if exc.status in UNREACHABLE:
                raise ActionRefused("The process engine is not answering; try again shortly.", "Unavailable") from None
            raise


def _sentence(text: str) -> str:
    """The workflow's terse refusals ('the form has errors') as the sentences pages and problems show."""
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")) if text else text
