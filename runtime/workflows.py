"""ONE interpreter workflow runs every compiled process spec.

The spec (with its content hash) is the workflow input, so a running instance
keeps its version when definitions change, unless a pack's instance migration moves
it: the `migrate` update, after which the run continues as new on the new spec with
its step states carried over (runtime/instancemigration.py). Due times are absolute, computed from
the spec's business calendar at the moment each step starts, and enforced with
Temporal timers; staff actions arrive as updates whose validators keep invalid
input out of history.

Database writes (the instance, projects, tasks, task states, alerts, reassignments,
comments) are local activities: short, idempotent keyed writes that the worker running
the workflow does within the same workflow task, with no extra round trip through the
server. Email and webhooks stay regular activities, retried on their own for a day.
"""
import asyncio
import datetime as dt
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from .instancemigration import Move, carry, refusal, renames
    from .interpreter import (Calendar, ProcessInput, StepState, TaskAction, condition, deadlines, form_errors, render,
                              template_context, walk)

ACTIVITY_TIMEOUT = dt.timedelta(seconds=30)
RETRY = RetryPolicy(initial_interval=dt.timedelta(seconds=1), maximum_interval=dt.timedelta(seconds=30))
DATA_ERROR = "DataError"  # the database refused a write's data (a constraint, a value out of range)
NOT_A_HOLDER = "NotAHolder"  # a reassignment's target may not hold the task (runtime/holders.py)
# A staff action's write that the database refuses will be refused again: its update fails at once, with the reason,
# instead of the workflow task retrying it while every later action on the process waits behind it.
UPDATE_RETRY = RetryPolicy(initial_interval=dt.timedelta(seconds=1), maximum_interval=dt.timedelta(seconds=30),
                           non_retryable_error_types=[DATA_ERROR, NOT_A_HOLDER])
OPEN = ("open", "awaiting_approval")
STATE_AFTER_WRITE = "state-after-write"  # workflow.patched: a step takes its new state once the write is in (see _settle)
MIGRATABLE = "migratable"  # workflow.patched: the run can stop where it stands and go on under a new version (see migrate)
ALERT_MAIL_OUTBOX = "alert-mail-outbox"  # workflow.patched: an alert's write puts its emails in the outbox (see _email_alert)
# What a run started by this code has from its start (ProcessInput.features): no patch marker for them in its history, and
# none of the TemporalChangeVersion search-attribute upserts the SDK adds to each first patched() call, each one more
# history event and one more visibility write at the server: on every alert, on every first completion.
FEATURES = (MIGRATABLE, STATE_AFTER_WRITE, ALERT_MAIL_OUTBOX)


def _storable(*values: Any) -> None:
    """Refuse text no database stores (a NUL character; half of a surrogate pair): it would fail every write attempt."""
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str) and ("\x00" in v or any("\ud800" <= c <= "\udfff" for c in v)):
            raise ApplicationError("text may not contain NUL characters or unpaired surrogates", type="Invalid", non_retryable=True)


def process_input(**fields: Any) -> ProcessInput:
    """The input of a new run: it has every behaviour of this code from its start (see FEATURES)."""
    return ProcessInput(**fields, features=list(FEATURES))


@workflow.defn(name="TailorProcess")
class ProcessWorkflow:
    def __init__(self) -> None:
        self.states: dict[str, StepState] = {}
        self.specs: dict[str, dict] = {}
        self.ctx: dict[str, Any] = {}
        self.project_id: int | None = None
        self.input: ProcessInput | None = None
        self.background: list = []  # email activities still running
        self.instance: dict | None = None  # the instance row, until the first write has carried it
        self.clock: dt.datetime | None = None  # when the latest write committed (see _now)
        self.settling: set[str] = set()  # steps whose completion or decision is being written
        self.moving: Move | None = None  # a migration accepted: no staff action changes a step until the run moves
        self.moved = False  # its rows are on the new version: the run continues as new on it
        self.resumed_at: dt.datetime | None = None  # a run that continues a migrated one: when it moved
        self.migratable = False  # started by code that can move it (not a history recorded before)

    # -- run -------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: ProcessInput) -> dict:
        self.input = inp
        spec = inp.spec
        self.specs = {s["id"]: s for s in walk(spec["steps"])}
        self.states = {sid: StepState() for sid in self.specs}
        self.calendar = Calendar(spec["calendar"])
        started = dt.datetime.fromisoformat(inp.started_at) if inp.started_at else workflow.now()
        self.started_at = started
        wid = workflow.info().workflow_id
        self.instance = {"workflow_id": wid, "process": spec["name"], "version": spec["version"], "entity": inp.entity,
                         "record_id": inp.record_id, "inputs": inp.inputs, "started_by": inp.started_by, "started_at": started.isoformat()}
        self.ctx = {"record": {**inp.record, "id": inp.record_id}, "inputs": inp.inputs,
                    "process": {"name": spec["name"], "label": spec["label"], "id": wid}, "project": {}, "steps": {}}
        if inp.resume:  # a migrated instance, going on where its earlier version stood (its rows exist)
            r = inp.resume
            self.states.update({sid: StepState(**st) for sid, st in r["states"].items() if sid in self.specs})
            self.ctx["steps"], self.ctx["project"], self.project_id = dict(r["steps"]), dict(r["project"]), r["project_id"]
            self.instance, self.resumed_at = None, dt.datetime.fromisoformat(r["at"])
        elif spec.get("project"):
            title = self._render(spec["project"]["title"], spec["label"])
            self.project_id = await self._write("tailor.open_project", {
                "key": wid, "title": title, "entity": inp.entity, "record_id": inp.record_id, "manager": spec["project"]["manager"],
                "started_by": inp.started_by})
            self.ctx["project"] = {"title": title, "id": self.project_id}
        self.migratable = self._has(MIGRATABLE)
        if self.migratable:
            await self._until_moved(spec["steps"])
        else:  # a history recorded before instances could move: its steps ran in the run itself
            await self._sequence(spec["steps"])
        await workflow.wait_condition(workflow.all_handlers_finished)  # the last completion's DB write and reply
        for handle in self.background:  # let pending emails finish (or give up) before the process ends
            try:
                await handle
            except Exception:  # noqa: BLE001 - a mail that could not be sent must not fail the process
                workflow.logger.warning("an email activity gave up")
        await self._write("tailor.finish_instance", {"workflow_id": wid, "status": "completed", "project_id": self.project_id})
        return {"steps": {sid: s.status for sid, s in self.states.items()}}

    async def _until_moved(self, steps: list[dict]) -> None:
        """Run the steps, unless a migration moves the instance first: then go on as a new run of the new version, with
        the steps' states carried over (the steps still waiting are abandoned with this run: their timers with it)."""
        run = asyncio.ensure_future(self._sequence(steps))
        await workflow.wait_condition(lambda: run.done() or self.moved)
        if run.done():
            run.result()  # its failure, if it failed
            return
        await workflow.wait_condition(workflow.all_handlers_finished)  # the migrate update's reply
        move, inp = self.moving, self.input
        states, published = carry(inp.spec, move.spec, move.steps, self.states, self.ctx["steps"], StepState)
        workflow.continue_as_new(process_input(
            spec=move.spec, entity=inp.entity, record_id=inp.record_id, record=inp.record, inputs=inp.inputs, started_by=inp.started_by,
            started_at=self.started_at.isoformat(), announce=inp.announce,
            resume={"states": {sid: vars(st) for sid, st in states.items()}, "steps": published, "project": self.ctx["project"],
                    "project_id": self.project_id, "at": workflow.now().isoformat()}))

    async def _sequence(self, steps: list[dict]) -> None:
        for step in steps:
            if self.resumed_at is not None and self.states[step["id"]].status in ("done", "skipped"):
                self._publish(step["id"])  # a migrated instance: this step was over before it moved
                continue
            # moved here with a step of it open: its `when` held, and it goes on
            carried = self.resumed_at is not None and any(self.states[s["id"]].status in OPEN for s in walk([step]))
            if step.get("when") and not carried and not self._condition(step["when"]):
                await self._skip(step)
                continue
            if step["kind"] == "parallel":
                await asyncio.gather(*(self._sequence(b["steps"]) for b in step["branches"]))
                self.states[step["id"]].status = "done"
                self._publish(step["id"])
            elif step["kind"] == "approval":
                await self._approval(step)
            else:
                await self._task(step)

    async def _skip(self, step: dict) -> None:
        for s in walk([step]):
            self.states[s["id"]].status = "skipped"
            self.states[s["id"]].outcome = "skipped"
            self._publish(s["id"])

    # -- one task ----------------------------------------------------------------
    async def _task(self, step: dict) -> None:
        state = self.states[step["id"]]
        if self.resumed_at is not None and state.status in OPEN:  # moved here by a migration: its task, assignee and due stay
            due_at = dt.datetime.fromisoformat(state.due_at) if state.due_at else None
            await self._watch(step, state, due_at, since=self.resumed_at)
            self._publish(step["id"])
            return
        due_at = self._due(step)
        state.due_at = due_at.isoformat() if due_at else None
        title = self._render(step["title"], step["id"])
        # open before the row exists: someone may act on the row the moment the activity commits it
        state.status = "open"
        created = await self._write("tailor.create_task", {
            "key": f"{workflow.info().workflow_id}:{step['id']}", "workflow_id": workflow.info().workflow_id,
            "process": self.input.spec["name"], "step_id": step["id"], "title": title,
            "description": self._render(step["description"], "") if step.get("description") else None,
            "entity": self.input.entity, "record_id": self.input.record_id, "project_id": self.project_id, "form": step.get("form"),
            "approver": step.get("approval"), "due_at": state.due_at, "assign": step.get("assign"), "strategy": step.get("strategy"),
            "completers": self._completers(), "started_by": self.input.started_by,
            "fallback": step.get("fallback") or self.input.spec.get("fallback"), "fallback_of": "step" if step.get("fallback") else "process"})
        state.task_id, state.assignee_id, state.group = created["task_id"], created["assignee_id"], created["group"]
        state.routed = created.get("routed")  # its party named nobody who may hold it: it went to a fallback
        if created.get("alert_id"):  # and an alert says why
            state.alerts_raised.append(created["alert_id"])
            self._email_alert(created["alert_id"])
        self._announce("task.created", f"{workflow.info().workflow_id}:{step['id']}:created", {
            "task_id": state.task_id, "title": title, "step": step["id"], "process": self.input.spec["name"],
            "entity": self.input.entity, "record_id": self.input.record_id, "due_at": state.due_at, "assignee_id": state.assignee_id})
        await self._watch(step, state, due_at)
        self._publish(step["id"])

    async def _watch(self, step: dict, state: StepState, due_at: dt.datetime | None, since: dt.datetime | None = None) -> None:
        """Wait for the step to finish, firing reminders and escalation levels at their times, once each (`since`: those
        before it were the earlier version's, which fired its own)."""
        for at, kind, detail in deadlines(step, due_at, self.calendar):
            if since is not None and at <= since:
                continue
            if state.status not in OPEN:
                return
            wait = (at - self._now()).total_seconds()
            if wait > 0:
                try:
                    await workflow.wait_condition(lambda: state.status not in OPEN, timeout=wait)
                    return
                except asyncio.TimeoutError:
                    pass
            if kind == "reminder":
                self._background("tailor.send_reminder", {"key": f"{workflow.info().workflow_id}:{step['id']}:r{detail['index']}",
                                                          "task_id": state.task_id})
            else:
                await self._escalate(step, state, detail)
        await workflow.wait_condition(lambda: state.status not in OPEN)

    async def _escalate(self, step: dict, state: StepState, level: dict, key: str | None = None,
                        exclude: list[int] | None = None) -> None:
        """Escalation level `level` of the step's task (`key`: of one approver's task, for an approval step's; `exclude`:
        who may not be handed it, an approval's requester)."""
        n = level["level"]
        base = key or f"{workflow.info().workflow_id}:{step['id']}"
        title = self._render(step["title"], step["id"])
        task = {"id": state.task_id, "title": title, "due": state.due_at, "due_at": state.due_at, "assignee": state.assignee_id,
                "assignee_id": state.assignee_id}
        message = self._render(level["message"], "", task=task) if level.get("message") else ""
        message = message or f"'{title}' is overdue (escalation level {n})"
        if level.get("alert"):
            # the activity renders the message again with the database at hand (runtime/messages.py: task.due as local
            # time, task.assignee as a name); this rendering is the fallback, and what replays of older histories used
            result = await self._write("tailor.raise_alert", {
                "key": f"{base}:L{n}", "task_id": state.task_id, "level": n, "alert": level["alert"],
                "message": message, "entity": self.input.entity, "record_id": self.input.record_id, "completers": self._completers(),
                "template": level.get("message"), "context": self.ctx, "steps": list(self.specs), "now": workflow.now().isoformat()})
            message = result.get("message") or message
            state.alerts_raised.append(result["alert_id"])
            self._email_alert(result["alert_id"])
            self._announce("alert.raised", f"{base}:L{n}", {
                "alert_id": result["alert_id"], "task_id": state.task_id, "level": n, "message": message, "recipients": result["recipients"],
                "entity": self.input.entity, "record_id": self.input.record_id})
        if level.get("reassign"):
            key = f"{base}:L{n}"
            moved = await self._write("tailor.reassign_task", {
                "key": key, "task_id": state.task_id, "party": level["reassign"], "entity": self.input.entity, "record_id": self.input.record_id,
                "assignee_id": state.assignee_id, "group": state.group, "project_id": self.project_id, "completers": self._completers(),
                "level": n, "alert": level.get("alert"), **({"exclude": exclude} if exclude else {})})
            state.assignee_id, state.group = moved["assignee_id"], moved["group"]
            if moved.get("alert_id"):  # nobody the level names may hold the task: it stayed, and the alert says so
                state.alerts_raised.append(moved["alert_id"])
                self._email_alert(moved["alert_id"])
                self._announce("alert.raised", f"{key}:unmoved", {
                    "alert_id": moved["alert_id"], "task_id": state.task_id, "level": n, "message": moved["message"],
                    "recipients": moved["recipients"], "entity": self.input.entity, "record_id": self.input.record_id})

    # -- one approval ----------------------------------------------------------------
    async def _approval(self, step: dict) -> None:
        """Ask the approvers to decide on the work of the step it approves, round after round until it is approved: a
        rejection sends the work back to whoever did it, and their next completion starts the next round (unless the
        step's `when` no longer holds for the revised work)."""
        state, work = self.states[step["id"]], self.states[step["approve"]]
        if work.status != "done" or work.task_id is None:  # the work was skipped: there is nothing to approve
            await self._skip(step)
            return
        wid = workflow.info().workflow_id
        since = self.resumed_at if state.status == "open" and state.approvals else None  # moved here by a migration
        while True:
            if since is not None:  # the round under way goes on: its approvers' tasks, and their due, stay
                due_at = dt.datetime.fromisoformat(state.due_at) if state.due_at else None
                await self._watch_approval(step, state, due_at, work.completed_by, since=since)
                since = None
                if state.outcome == "approved":
                    break
                await workflow.wait_condition(lambda: work.status == "done")
                self._publish(step["approve"])
                state.round += 1
                if step.get("when") and not self._condition(step["when"]):
                    state.status = state.outcome = "skipped"
                    break
                continue
            due_at = self._due(step)
            state.due_at = due_at.isoformat() if due_at else None
            title = self._render(step["title"], step["id"])
            state.status, state.outcome, state.approvals = "open", None, []
            created = await self._write("tailor.create_approvals", {
                "key": f"{wid}:{step['id']}:r{state.round}", "workflow_id": wid, "process": self.input.spec["name"], "step_id": step["id"],
                "title": title, "description": self._render(step["description"], "") if step.get("description") else None,
                "entity": self.input.entity, "record_id": self.input.record_id, "project_id": self.project_id, "due_at": state.due_at,
                "round": state.round, "approvers": step["approvers"], "fallback": step.get("fallback") or self.input.spec.get("fallback"),
                "requester": work.completed_by, "subject": {"of": step["approve"], "task_id": work.task_id, "show": step.get("show") or []},
                "completers": self._completers(), "started_by": self.input.started_by})
            state.approvals = [{"task_id": t["task_id"], "assignee_id": t["assignee_id"], "decision": None} for t in created["tasks"]]
            state.task_id, state.assignee_id = state.approvals[0]["task_id"], state.approvals[0]["assignee_id"]
            for entry in state.approvals:
                self._announce("task.created", f"{wid}:{step['id']}:t{entry['task_id']}:created", {
                    "task_id": entry["task_id"], "title": title, "step": step["id"], "process": self.input.spec["name"],
                    "entity": self.input.entity, "record_id": self.input.record_id, "due_at": state.due_at, "assignee_id": entry["assignee_id"]})
            await self._watch_approval(step, state, due_at, work.completed_by)
            if state.outcome == "approved":
                break
            await workflow.wait_condition(lambda: work.status == "done")  # sent back: the requester revises and resubmits
            self._publish(step["approve"])
            state.round += 1
            if step.get("when") and not self._condition(step["when"]):  # the revised work needs no approval any more
                state.status = state.outcome = "skipped"
                break
        self._publish(step["id"])

    async def _watch_approval(self, step: dict, state: StepState, due_at: dt.datetime | None, requester: int | None,
                              since: dt.datetime | None = None) -> None:
        """Wait for the round's decision, reminding each approver still to decide and escalating their task, once each."""
        wid = workflow.info().workflow_id
        for at, kind, detail in deadlines(step, due_at, self.calendar):
            if since is not None and at <= since:
                continue
            if state.status not in OPEN:
                return
            wait = (at - self._now()).total_seconds()
            if wait > 0:
                try:
                    await workflow.wait_condition(lambda: state.status not in OPEN, timeout=wait)
                    return
                except asyncio.TimeoutError:
                    pass
            for entry in [e for e in state.approvals if e["decision"] is None]:
                key = f"{wid}:{step['id']}:t{entry['task_id']}"
                if kind == "reminder":
                    self._background("tailor.send_reminder", {"key": f"{key}:r{detail['index']}", "task_id": entry["task_id"]})
                    continue
                one = StepState(status="open", task_id=entry["task_id"], assignee_id=entry["assignee_id"], due_at=state.due_at)
                await self._escalate(step, one, detail, key=key, exclude=[requester] if requester else None)
                entry["assignee_id"] = one.assignee_id
                state.alerts_raised.extend(one.alerts_raised)
        await workflow.wait_condition(lambda: state.status not in OPEN)

    def _approval_entry(self, action: TaskAction) -> tuple[StepState, dict]:
        """The approval task of the round under way that `action` decides, if `action.user_id` may decide it now."""
        state = self.states[action.step]
        self._not_moving()
        if state.status != "open":
            why = {"rejected": "the work was sent back for revision: nothing waits for a decision until it is resubmitted",
                   "done": "this approval is already decided"}.get(state.status, f"step '{action.step}' is not waiting for a decision")
            raise ApplicationError(why, type="Conflict", non_retryable=True)
        entry = next((e for e in state.approvals if (e["task_id"] == action.task_id if action.task_id is not None
                                                       else e["assignee_id"] == action.user_id)), None)
        if entry is None:
            raise ApplicationError("this approval is no longer waiting for a decision (an earlier round's, already decided)",
                                   type="Conflict", non_retryable=True)
        if entry["decision"] is not None:
            word = "no longer needed: another approver decided" if entry["decision"] == "cancelled" else f"already {entry['decision']}"
            raise ApplicationError(f"this approval is {word}", type="Conflict", non_retryable=True)
        if action.user_id == self.states[self.specs[action.step]["approve"]].completed_by:
            raise ApplicationError("you submitted this work, so someone else must approve it", type="Forbidden", non_retryable=True)
        if action.user_id != entry["assignee_id"]:
            raise ApplicationError("this approval is waiting for someone else's decision", type="Forbidden", non_retryable=True)
        return state, entry

    async def _decide_approval(self, action: TaskAction) -> dict:
        # one decision of a step at a time: whether it settles the round depends on the others
        await workflow.wait_condition(lambda: action.step not in self.settling)
        state, entry = self._approval_entry(action)  # again: a decision written meanwhile may have settled the round
        spec = self.specs[action.step]
        work = self.states[spec["approve"]]
        approve = bool(action.approve)
        others = [e for e in state.approvals if e is not entry and e["decision"] is None]
        final = not approve or spec.get("decide") != "all" or not others
        text = action.comment.strip()
        self.settling.add(action.step)
        try:
            await self._write("tailor.decide_approval", {
                "key": self._request(), "task_id": entry["task_id"], "user_id": action.user_id, "approve": approve,
                "reason": "" if approve else text, "comment": text if approve else "",
                "cancel": [e["task_id"] for e in others] if final else [],
                "send_back": {"task_id": work.task_id, "round": work.round + 1} if final and not approve else None})
        finally:
            self.settling.discard(action.step)
        entry["decision"] = "approved" if approve else "rejected"
        if final:
            for e in others:
                e["decision"] = "cancelled"
            if approve:
                state.status, state.outcome = "done", "approved"
                state.completed_by, state.completed_at = action.user_id, workflow.now().isoformat()
            else:
                work.status, work.outcome, work.round = "open", "rejected", work.round + 1
                state.status, state.outcome = "rejected", "rejected"
        self._announce("task.completed", f"{self._request()}:completed", {
            "task_id": entry["task_id"], "step": action.step, "status": "done", "outcome": entry["decision"], "by": action.user_id})
        return {"step": action.step, "status": state.status, "outcome": entry["decision"]}

    def _validate_approval(self, action: TaskAction) -> None:
        self._approval_entry(action)
        _storable(action.comment)
        if action.approve is None:
            raise ApplicationError("say approve: true or false", type="Invalid", non_retryable=True)
        if not action.approve and not action.comment.strip():
            raise ApplicationError("say why you are sending it back", {"reason": "Say why you are sending it back."}, type="Invalid",
                                   non_retryable=True)

    # -- staff actions (updates) ---------------------------------------------------
    def _open_step(self, action: TaskAction, statuses: tuple[str, ...]) -> StepState:
        state = self.states.get(action.step)
        if state is None:
            raise ApplicationError(f"no step '{action.step}' in this process", type="NotFound", non_retryable=True)
        if action.step in self.settling:
            raise ApplicationError(f"step '{action.step}' is being changed by another request; try again", type="Conflict",
                                   non_retryable=True)
        self._not_moving()
        if state.status not in statuses:
            raise ApplicationError(f"step '{action.step}' is {state.status}, not {' or '.join(statuses)}", type="Conflict", non_retryable=True)
        return state

    async def _settle(self, action: TaskAction, state: StepState, changes: dict[str, Any], write: dict) -> None:
        """Write a step's new state, then take it: a write the database refuses fails the update and leaves the step (and
        the process, which moves on when the step does) as it was. Other actions on the step wait for the outcome."""
        if not self._has(STATE_AFTER_WRITE):  # a history recorded before: the state changed first, as it did then
            vars(state).update(changes)
            await self._write("tailor.set_task_state", write)
            return
        self.settling.add(action.step)
        try:
            await self._write("tailor.set_task_state", write)
        finally:
            self.settling.discard(action.step)
        vars(state).update(changes)

    @workflow.update
    async def complete(self, action: TaskAction) -> dict:
        state = self._open_step(action, ("open",))  # re-checked: another update may have won meanwhile
        self.settling.add(action.step)  # until _settle takes over: nobody else acts on the step while we wait for its task
        try:
            await workflow.wait_condition(lambda: state.task_id is not None)
        finally:
            self.settling.discard(action.step)
        approval = bool(self.specs[action.step].get("approval"))
        status = "awaiting_approval" if approval else "done"
        changes = {"status": status, "data": action.data, "completed_by": action.user_id, "completed_at": workflow.now().isoformat()}
        await self._settle(action, state, changes, {
            "key": self._request(), "task_id": state.task_id, "status": status, "user_id": action.user_id,
            "outcome": None if approval else "done", "data": action.data, "comment": action.comment})
        if not approval:
            state.outcome = "done"
        self._announce("task.completed", f"{self._request()}:completed",
                       {"task_id": state.task_id, "step": action.step, "status": state.status, "by": action.user_id, "data": action.data})
        return {"step": action.step, "status": state.status}

    @complete.validator
    def _validate_complete(self, action: TaskAction) -> None:
        if self.specs.get(action.step, {}).get("kind") == "approval":
            raise ApplicationError("an approval is decided (approve, or reject with a reason), not completed", type="Invalid",
                                   non_retryable=True)
        self._open_step(action, ("open",))
        _storable(action.data, action.comment)
        schema = self.specs[action.step].get("form_schema")
        if schema and (errors := form_errors(schema, action.data)):
            raise ApplicationError("the form has errors", errors, type="Invalid", non_retryable=True)

    @workflow.update
    async def decide(self, action: TaskAction) -> dict:
        if self.specs.get(action.step, {}).get("kind") == "approval":
            return await self._decide_approval(action)
        # a task step with its own approver: a process started from a spec compiled before approval steps
        state = self._open_step(action, ("awaiting_approval",))
        await workflow.wait_condition(lambda: state.task_id is not None)
        approved = bool(action.approve)
        status, outcome = ("done", "approved") if approved else ("open", "rejected")
        await self._settle(action, state, {"status": status, "outcome": outcome}, {
            "key": self._request(), "task_id": state.task_id, "status": status, "user_id": action.user_id, "outcome": outcome,
            "comment": action.comment})
        return {"step": action.step, "status": state.status, "outcome": state.outcome}

    @decide.validator
    def _validate_decide(self, action: TaskAction) -> None:
        if self.specs.get(action.step, {}).get("kind") == "approval":
            return self._validate_approval(action)
        state = self._open_step(action, ("awaiting_approval",))
        _storable(action.comment)
        if action.approve is None:
            raise ApplicationError("say approve: true or false", type="Invalid", non_retryable=True)
        if action.user_id == state.completed_by:
            raise ApplicationError("you submitted this work, so someone else must approve it", type="Forbidden", non_retryable=True)

    @workflow.update
    async def reassign(self, action: TaskAction) -> dict:
        if self.specs.get(action.step, {}).get("kind") == "approval":
            return await self._reassign_approval(action)
        state = self._open_step(action, OPEN)
        await workflow.wait_condition(lambda: state.task_id is not None)
        moved = await self._write("tailor.reassign_task", {"key": self._request(), "task_id": state.task_id, "user_id": action.to_user,
                                                           "by": action.user_id})
        state.assignee_id, state.group = moved["assignee_id"], moved["group"]
        return {"step": action.step, "assignee_id": state.assignee_id, "assignee": action.to_name}

    def _approval_to_hand(self, action: TaskAction) -> dict:
        """The approval task a reassignment moves, if its new holder may decide it: not the requester, not twice."""
        state = self.states[action.step]
        entry = next((e for e in state.approvals if e["task_id"] == action.task_id and e["decision"] is None), None)
        if state.status != "open" or entry is None:
            raise ApplicationError("this approval is no longer waiting for a decision", type="Conflict", non_retryable=True)
        if action.to_user == self.states[self.specs[action.step]["approve"]].completed_by:
            raise ApplicationError(f"{action.to_name} submitted this work, so may not approve it", type="Forbidden", non_retryable=True)
        if any(e["assignee_id"] == action.to_user and e["decision"] is None and e is not entry for e in state.approvals):
            raise ApplicationError(f"{action.to_name} has already been asked to approve this", type="Conflict", non_retryable=True)
        return entry

    async def _reassign_approval(self, action: TaskAction) -> dict:
        await workflow.wait_condition(lambda: action.step not in self.settling)
        entry = self._approval_to_hand(action)
        self.settling.add(action.step)
        try:
            moved = await self._write("tailor.reassign_task", {"key": self._request(), "task_id": entry["task_id"], "user_id": action.to_user,
                                                               "by": action.user_id})
        finally:
            self.settling.discard(action.step)
        entry["assignee_id"] = moved["assignee_id"]
        return {"step": action.step, "assignee_id": entry["assignee_id"], "assignee": action.to_name}

    @reassign.validator
    def _validate_reassign(self, action: TaskAction) -> None:
        """The workflow cannot read the database, so `runtime.taskactions.reassign_task` checks the target there first and
        names them in the action; what is checked here keeps anything else out of history. The write checks once more."""
        self._open_step(action, OPEN)
        if action.to_user is None:
            raise ApplicationError("say who to reassign to", type="Invalid", non_retryable=True)
        if not isinstance(action.to_user, int) or isinstance(action.to_user, bool) or not 0 < action.to_user < 2**63:
            raise ApplicationError("the new assignee must be a user's id", type="Invalid", non_retryable=True)
        if not action.to_name.strip():
            raise ApplicationError("the new assignee has not been checked: reassign through runtime.taskactions.reassign_task",
                                   type="Invalid", non_retryable=True)

    @workflow.update
    async def comment(self, action: TaskAction) -> dict:
        await self._write("tailor.add_comment", {"key": self._request(), "task_id": self._commented(action), "user_id": action.user_id,
                                                 "comment": action.comment})
        return {"step": action.step}

    def _commented(self, action: TaskAction) -> int | None:
        """The task a comment is on: the step's, or for an approval step the approver's task it names."""
        state = self.states[action.step]
        if self.specs[action.step].get("kind") == "approval" and action.task_id is not None:
            return action.task_id
        return state.task_id

    @comment.validator
    def _validate_comment(self, action: TaskAction) -> None:
        state = self.states.get(action.step)
        if state is None or state.task_id is None:
            raise ApplicationError(f"step '{action.step}' has no task yet", type="NotFound", non_retryable=True)
        if (self.specs[action.step].get("kind") == "approval" and action.task_id is not None
                and action.task_id not in {e["task_id"] for e in state.approvals}):
            raise ApplicationError("this approval is no longer waiting for a decision", type="Conflict", non_retryable=True)
        if not action.comment.strip():
            raise ApplicationError("a comment needs some text", type="Invalid", non_retryable=True)
        _storable(action.comment)

    # -- moving to a new version (runtime/instancemigration.py) ------------------------------------------------
    def _not_moving(self) -> None:
        if self.moving is not None:
            raise ApplicationError("this process is moving to a new version: try again in a moment", type="Conflict", non_retryable=True)

    def _refusal(self, move: Move) -> None:
        if self.moving is not None:
            raise ApplicationError("this process is moving to a new version already", type="Conflict", non_retryable=True)
        if not self.migratable and self.input is not None and self.input.spec["version"] != move.spec.get("version"):
            raise ApplicationError("it started before Tailor could move running processes: it finishes on its version",
                                   type="Unmapped", non_retryable=True)
        if self.settling:
            raise ApplicationError(f"step '{min(self.settling)}' is being changed by another request: try again", type="Conflict",
                                   non_retryable=True)
        why = refusal(self.input.spec, self.states, move)
        if why:
            raise ApplicationError(why[1], type=why[0], non_retryable=True)

    @workflow.update
    async def migrate(self, move: Move) -> dict:
        """Move the instance to a new version of its process: its rows first, then (the run, once this reply is out) a
        new run of the new spec that goes on where this one stands."""
        self._refusal(move)  # again: a staff action may have begun since the validator ran
        self.moving = move
        renamed, dropped = renames(self.input.spec, move.spec, move.steps)
        try:
            await self._write("tailor.move_instance", {"workflow_id": workflow.info().workflow_id, "version": move.spec["version"],
                                                       "from_version": self.input.spec["version"], "renames": renamed, "dropped": dropped})
        except BaseException:
            self.moving = None
            raise
        self.moved = True
        return {"from": self.input.spec["version"], "to": move.spec["version"],
                "open": {sid: s.task_id for sid, s in self.states.items() if s.status in OPEN}}

    @migrate.validator
    def _validate_migrate(self, move: Move) -> None:
        self._refusal(move)

    @workflow.query
    def state(self) -> dict:
        return {"version": self.input.spec["version"] if self.input else None, "project_id": self.project_id,
                "steps": {sid: vars(s) for sid, s in self.states.items()}}

    # -- helpers -------------------------------------------------------------------
    def _request(self) -> str:
        """The key of the staff action being handled: its update id, which Temporal deduplicates, so a write keyed by it
        happens once however often the request or the write is retried."""
        return f"{workflow.info().workflow_id}:{workflow.current_update_info().id}"

    def _announce(self, event: str, delivery_id: str, payload: dict) -> None:
        """A webhook event (delivered by its own retried activity; the worker knows the receivers), if anyone receives it."""
        if event not in self.input.announce:
            return
        self._background("tailor.webhook", {"id": delivery_id, "event": event, "payload": payload})

    def _has(self, feature: str) -> bool:
        """Whether this run has a behaviour added while runs were already running: from its start, if the code that started
        it listed it (FEATURES); else as workflow.patched says, which replays a history recorded before as it ran."""
        return feature in self.input.features or workflow.patched(feature)

    def _email_alert(self, alert_id: int) -> None:
        """The write that raised the alert has put its emails in the mail outbox (runtime/taskmail.py): nothing for the
        task queue to carry when a burst of deadlines fires. Histories recorded before that emailed it with an activity
        of its own after the write, and replay it so (the activity now only does what the write does, once)."""
        if not self._has(ALERT_MAIL_OUTBOX):
            self._background("tailor.email_alert", {"alert_id": alert_id})

    def _background(self, name: str, arg: dict) -> None:
        """Reminders, webhooks and the like: retried on their own for a day, never holding up the process or its ladder."""
        handle = workflow.start_activity(name, arg, start_to_close_timeout=ACTIVITY_TIMEOUT,
                                         retry_policy=RetryPolicy(initial_interval=dt.timedelta(seconds=5),
                                                                  maximum_interval=dt.timedelta(minutes=10)),
                                         schedule_to_close_timeout=dt.timedelta(days=1))
        self.background.append(handle)

    async def _write(self, name: str, arg: dict) -> Any:
        """A short, idempotent keyed write, as a local activity: run by the worker that runs the workflow, inside the same
        workflow task, so no extra round trips through the server. Retried with backoff while the database is away
        (the workflow task is kept alive meanwhile); a worker crash before the task completes re-runs it, and its key
        finds what the first run wrote. In a staff action, a write the database refuses (or a target who may not hold
        the task) fails the action's update at once with the reason."""
        instance = self.instance
        if instance is not None:  # the instance row travels with the first write instead of costing one of its own
            arg, self.instance = {**arg, "instance": instance}, None
        in_update = workflow.current_update_info() is not None
        try:
            out = await workflow.execute_local_activity(name, arg, start_to_close_timeout=ACTIVITY_TIMEOUT,
                                                        retry_policy=UPDATE_RETRY if in_update else RETRY)
        except ActivityError as exc:
            if instance is not None:
                self.instance = instance  # not written: the next write carries it
            cause = exc.cause
            if in_update and isinstance(cause, ApplicationError):
                # fail the update (not the workflow task) with what the write said, as the validators' refusals read
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise
        at = dt.datetime.fromisoformat(out["at"])
        self.clock = at if self.clock is None else max(self.clock, at)
        return out["result"]

    def _now(self) -> dt.datetime:
        """The time to start timers from. workflow.now() is when the current workflow task began and stands still
        until it ends, while a write inside it may have waited for the database; the timer only starts when the
        task ends, so it counts from the later of the two (recorded with the write's result: replay sees the same)."""
        now = workflow.now()
        return now if self.clock is None or self.clock < now else self.clock

    def _due(self, step: dict) -> dt.datetime | None:
        due = step.get("due")
        if not due:
            return None
        base = self.started_at
        if due["from"] != "start":
            done = self.states[due["from"]].completed_at
            base = dt.datetime.fromisoformat(done) if done else workflow.now()
        return self.calendar.add(base, due["duration"])

    def _completers(self) -> dict[str, int]:
        return {sid: s.completed_by for sid, s in self.states.items() if s.completed_by}

    def _publish(self, sid: str) -> None:
        s = self.states[sid]
        self.ctx["steps"][sid] = {"outcome": s.outcome or s.status, "data": s.data, "completed_by": s.completed_by,
                                  "completed_at": s.completed_at}

    def _render(self, source: str, fallback: str, **extra: Any) -> str:
        return render(source, {**template_context(self.ctx, self.specs, workflow.now()), **extra}, fallback)

    def _condition(self, source: str) -> bool:
        return condition(source, template_context(self.ctx, self.specs, workflow.now()))
