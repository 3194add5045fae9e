"""Temporal activities: the only place processes touch the database and the mail server.

Each one is idempotent (keyed writes), so Temporal may retry it after a crash,
a timeout or a database outage without creating anything twice. The writes run as
local activities (see `runtime/workflows.py`); the emails they tell of (alerts, approval
requests, work sent back) go into the mail outbox in the same transaction (`runtime.taskmail`).
Reminders are regular activities.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.compiler import CompiledModel
from . import approvals, db, holders, messages, metrics, parties, records, routing, taskmail, tasktitles, tasks as task_service
from .instancemigration import move_rows
from .mail import MailSettings
from .schema import idempotency_keys
from .workflows import DATA_ERROR, NOT_A_HOLDER


def _when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def write(name: str) -> Callable:
    """A database write, run by the interpreter as a local activity: `fn(self, conn, req)` in one transaction.

    The process's first write also carries its instance row, recorded in the same commit. The result comes back
    with the time the write committed: a workflow's clock stands still for a whole workflow task, so a timer
    started after a write that queued for the database would otherwise be late by that wait.
    """
    def decorate(fn: Callable[[Any, sa.Connection, dict], Any]) -> Callable:
        def run(self, req: dict) -> dict:
            try:
                with self.transaction() as conn:
                    if (inst := req.get("instance")) is not None:
                        task_service.register_instance(conn, inst["workflow_id"], inst["process"], inst["version"], inst.get("entity"),
                                                       inst.get("record_id"), inst.get("inputs") or {}, inst.get("started_by"),
                                                       _when(inst["started_at"]))
                    result = fn(self, conn, req)
            except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
                # The database refused what was written, not the connection: a staff action's write must fail its
                # update at once (the workflow stops retrying DATA_ERROR there). The process's own writes retry
                # it as an outage, since on PostgreSQL a constraint error can be a race a second attempt wins.
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
                raise ApplicationError(f"the database refused this change ({reason})", type=DATA_ERROR) from exc
            except holders.NotAHolder as exc:
                raise ApplicationError(str(exc), type=NOT_A_HOLDER, non_retryable=True) from exc
            return {"result": result, "at": task_service.utcnow().isoformat()}

        run.__name__, run.__qualname__, run.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        return activity.defn(name=name)(run)
    return decorate


class Activities:
    """Activities bound to one database engine, compiled model and mail server."""

    def __init__(self, engine: sa.Engine, compiled: CompiledModel, mail: MailSettings = MailSettings()):
        self.engine = engine
        self.compiled = compiled
        self.mail = mail
        self._work_time = metrics.WorkTime(compiled)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction on the store, in turn with this worker's other writers on SQLite (`db.writing`)."""
        with db.writing(self.engine) as conn:
            yield conn

    @property
    def work_time(self) -> metrics.WorkTime:
        """How long a completed task took (stored for the SLA reports), on the calendars of the model in use: a newly
        activated release replaces `compiled`."""
        if self._work_time.compiled is not self.compiled:
            self._work_time = metrics.WorkTime(self.compiled)
        return self._work_time

    def all(self) -> list:
        return [self.open_project, self.create_task, self.set_task_state, self.reassign_task,
                self.raise_alert, self.email_alert, self.send_reminder, self.finish_instance, self.add_comment,
                self.create_approvals, self.decide_approval, self.move_instance]

    def _owner(self, conn: sa.Connection, entity: str | None, record_id: int | None) -> int | None:
        """The record's owner as it is now (not as it was when the process started), read through the record service:
        an owner field may be stored in a column of its own (`column: true`) rather than in the record's data."""
        if not entity or not record_id or entity not in self.compiled.model.entities:
            return None
        try:
            owner = records.get_record(conn, self.compiled, entity, record_id).data.get("owner")
        except records.RecordNotFound:
            return None
        return owner if holders.valid_id(owner) else None

    def _ctx(self, conn: sa.Connection, req: dict, *, owner: bool = True) -> dict[str, Any]:
        """What parties are resolved against (`parties.resolve`); without `owner`, the record's owner is not read (no
        party named asks for it)."""
        return {"owner_id": self._owner(conn, req.get("entity"), req.get("record_id")) if owner else None, "assignee_id": req.get("assignee_id"),
                "group": req.get("group"), "project_id": req.get("project_id"), "completers": req.get("completers") or {},
                "started_by": req.get("started_by"), "entity": req.get("entity"), "record_id": req.get("record_id")}

    def _named(self, conn: sa.Connection, req: dict, task: dict, named: list[dict]) -> list[int]:
        """The users the parties of an alert name, as the task is now (its assignee, group and project), each once."""
        ctx = self._ctx(conn, {**req, "assignee_id": task["assignee_id"], "group": task["group_name"], "project_id": task["project_id"],
                               "entity": task["entity"], "record_id": task["record_id"]},
                        owner=parties.names_owner(named))
        found: list[int] = []
        for party in named:
            found.extend(u for u in parties.resolve(conn, party, ctx) if u not in found)
        return found

    def _recipients(self, conn: sa.Connection, req: dict, task: dict, named: list[dict]) -> list[int]:
        """The active users the parties of an alert name (an owner or a project's manager may have left since)."""
        return parties.active(conn, self._named(conn, req, task, named))

    @write("tailor.open_project")
    def open_project(self, conn: sa.Connection, req: dict) -> int:
        """The process's project, managed by the first the `manager` party names who may hold its tasks, else by whoever
        started the process if they may, else by nobody (its project_manager tasks then go to their fallback)."""
        named = parties.resolve(conn, req.get("manager"), self._ctx(conn, req)) if req.get("manager") else []
        manager = holders.eligible(conn, self.compiled.model, named + [u for u in [req.get("started_by")] if u], {})
        return task_service.open_project(conn, req["key"], req["title"], req.get("entity"), req.get("record_id"),
                                         manager[0] if manager else None)

    @write("tailor.create_task")
    def create_task(self, conn: sa.Connection, req: dict) -> dict:
        values = {k: req.get(k) for k in ("workflow_id", "process", "step_id", "title", "description", "entity", "record_id",
                                          "project_id", "form", "approver")}
        values["due_at"] = _when(req.get("due_at"))
        values["created_by"] = req.get("started_by")
        values.update(tasktitles.render(conn, self.compiled, values))  # the title people read, in each language
        ctx = self._ctx(conn, req, owner=parties.names_owner((req.get("assign"), req.get("fallback"))))
        row = task_service.create_task(conn, req["key"], values, lambda: routing.route(
            conn, self.compiled, req.get("assign"), req.get("strategy") or "round_robin", ctx, values, req.get("fallback"),
            req.get("fallback_of") or "step"))
        out = {"task_id": row["id"], "assignee_id": row["assignee_id"], "group": row["group_name"]}
        if row["routed"]:  # the task went to a fallback holder: an alert says why, emailed with it
            out["routed"] = row["routed"]
            if (alert := task_service.alert_by_key(conn, task_service.routed_key(req["key"]))) is not None:
                out.update(alert_id=alert["id"], recipients=alert["recipients"], message=alert["message"])
                taskmail.alert(conn, self.compiled.model, alert["id"], self.mail.base_url)
        return out

    @write("tailor.set_task_state")
    def set_task_state(self, conn: sa.Connection, req: dict) -> None:
        task_service.set_task_state(conn, req["task_id"], req["status"], req.get("user_id"), req.get("outcome"), req.get("data"),
                                    req.get("comment", ""), key=req.get("key"), work_time=self.work_time.of)

    @write("tailor.reassign_task")
    def reassign_task(self, conn: sa.Connection, req: dict) -> dict:
        """Hand a task to the user a staff member chose, or to the party an escalation level names.

        The target is checked again here, in the transaction that writes it: they may have been deactivated since
        the request was checked. A level whose party names nobody who may hold the task (a portal user, someone
        deactivated, a group with nobody who may) leaves the task where it is and raises an alert saying why, in the
        words a task's fallback uses (`runtime.routing`): a task never moves to where nobody may hold it.
        """
        task = task_service.get_task(conn, req["task_id"])
        assert task is not None
        model = self.compiled.model
        if req.get("user_id") is not None:
            name = holders.check(conn, model, req["user_id"], task)
            if task["kind"] == "approval" and not approvals.may_approve(conn, model, [req["user_id"]], task):
                raise holders.NotAHolder(f"{name} may not approve.")
            user, group = req["user_id"], None
        else:
            party = req.get("party") or {}
            router = routing.Router(conn, self.compiled, self._ctx(conn, req), task)
            found = router.find(party, takes_turns=True)
            people = found.people
            if task["kind"] == "approval":  # an approval goes only to who may approve, never to its requester
                exclude = set(req.get("exclude") or ())
                people = [u for u in approvals.may_approve(conn, model, people, task) if u not in exclude]
                if found.people and not people:
                    found = routing.Found([], "nobody it names may approve it (its requester never may)")
            if not people:
                return self._unmoved(conn, req, task, router, found.why)
            user = router.pick(party, people, req.get("strategy") or "round_robin")
            group = party["name"] if party["kind"] == "group" else None
        task_service.reassign_task(conn, req["task_id"], user, group, req.get("by"), key=req.get("key"))
        return {"assignee_id": user, "group": group}

    def _unmoved(self, conn: sa.Connection, req: dict, task: dict, router: routing.Router, why: str) -> dict:
        """An escalation's reassignment that found nobody: the task stays, and the level's alert recipients (or the
        managers) hear why."""
        recipients = self._recipients(conn, req, task, req.get("alert") or [{"kind": "manager"}, {"kind": "project_manager"}])
        if not recipients and task["assignee_id"]:  # nobody the level names is left to hear it: whoever still has the task
            recipients = parties.active(conn, [task["assignee_id"]])
        if task["assignee_id"]:
            holder = f"with {router.name(task['assignee_id'])}"
        elif task["group_name"]:
            holder = f"in the {router.group_label(task['group_name'])} queue"
        else:
            holder = "where it is"
        message = f"'{task['title']}' could not be handed on: {why}, so it stays {holder}."
        alert, _ = task_service.raise_alert(conn, f"{req['key']}:unmoved", task, req.get("level") or 0, recipients, message)
        taskmail.alert(conn, self.compiled.model, alert["id"], self.mail.base_url)
        return {"assignee_id": task["assignee_id"], "group": task["group_name"], "alert_id": alert["id"], "recipients": alert["recipients"],
                "message": message}

    @write("tailor.create_approvals")
    def create_approvals(self, conn: sa.Connection, req: dict) -> dict:
        """One round of an approval step: a task for each approver (never the requester; else a fallback, saying why).

        The round's tasks are written together, so a retry finds them all, however the approvers have changed since."""
        existing = task_service.approval_tasks(conn, req["workflow_id"], req["step_id"], req["round"])
        if not existing:
            values = {k: req.get(k) for k in ("workflow_id", "process", "step_id", "title", "description", "entity", "record_id",
                                              "project_id", "subject", "round")}
            values.update(due_at=_when(req.get("due_at")), created_by=req.get("started_by"))
            values.update(tasktitles.render(conn, self.compiled, values))  # the title people read, in each language
            work = task_service.get_task(conn, req["subject"]["task_id"])
            values["data"] = work["data"] if work else None  # the work as submitted for this round: what the approver decided on
            # 'manager' names the requester's managers: of the group the work was given to, else of the requester's groups
            ctx = self._ctx(conn, {**req, "assignee_id": req.get("requester"), "group": work["group_name"] if work else None})
            choice = approvals.choose(conn, self.compiled.model, req.get("approvers") or [], ctx, req.get("requester"),
                                      {"project_id": req.get("project_id")}, req.get("fallback"))
            existing = task_service.create_approval_tasks(conn, req["key"], values, choice.approvers, choice.routed)
            for t in existing:  # each approver hears of it by email too (the app has told them already)
                taskmail.approval_requested(conn, self.compiled.model, t["key"], t, self.mail.base_url)
        return {"tasks": [{"task_id": t["id"], "assignee_id": t["assignee_id"]} for t in existing],
                "routed": existing[0]["routed"] if existing else None}

    @write("tailor.decide_approval")
    def decide_approval(self, conn: sa.Connection, req: dict) -> None:
        """An approver's decision, in one transaction with what it settles: the round's other tasks cancelled, and on a
        rejection the work's task sent back to whoever did it."""
        decided = task_service.decide_approval(conn, req["key"], req["task_id"], req["user_id"], req["approve"], req.get("reason") or "",
                                               req.get("comment") or "")
        self.work_time.store(conn, decided)  # the SLA counts the approver's decision as a task done
        if req.get("cancel"):
            task_service.cancel_approvals(conn, req["key"], req["cancel"], req["user_id"])
        if back := req.get("send_back"):
            work = task_service.send_back(conn, req["key"], back["task_id"], back["round"], req.get("reason") or "", req["user_id"])
            taskmail.sent_back(conn, self.compiled.model, req["key"], work, req["user_id"], req.get("reason") or "", self.mail.base_url)

    @write("tailor.raise_alert")
    def raise_alert(self, conn: sa.Connection, req: dict) -> dict:
        """Raise escalation level N of a task exactly once: the alert row, its history entry, its notifications and its emails."""
        task = task_service.get_task(conn, req["task_id"])
        assert task is not None
        named = self._named(conn, req, task, req.get("alert") or [])
        people = messages.recipients(conn, self.compiled.model, named)  # one read: who is active, how they read, their address
        recipients = [u for u in named if u in people and people[u].active]
        message, texts = messages.alert_texts(conn, self.compiled, req, task, {u: people[u].reader for u in recipients})
        alert, created = task_service.raise_alert(conn, req["key"], task, req["level"], recipients, message, texts, emailed=True)
        if created:
            taskmail.new_alert(conn, self.compiled.model, alert, task, texts, self.mail.base_url, people)
        else:  # a retry of a write that committed: its emails went with it, unless it was recorded before they did
            taskmail.alert(conn, self.compiled.model, alert["id"], self.mail.base_url)
        return {"alert_id": alert["id"], "recipients": alert["recipients"], "message": alert["message"]}

    @activity.defn(name="tailor.email_alert")
    def email_alert(self, req: dict) -> None:
        """An alert's emails into the outbox, unless they are there (`taskmail.alert`). Processes recorded before the
        alert's write did this schedule this activity after the write, and replay so (workflow.patched "alert-mail-outbox"):
        it stays registered for them."""
        with self.transaction() as conn:
            taskmail.alert(conn, self.compiled.model, req["alert_id"], self.mail.base_url)

    @activity.defn(name="tailor.send_reminder")
    def send_reminder(self, req: dict) -> None:
        with self.transaction() as conn:
            key = f"reminder:{req['key']}"
            if conn.execute(sa.select(idempotency_keys.c.key).where(idempotency_keys.c.key == key)).first():
                return
            task = task_service.get_task(conn, req["task_id"])
            emails = taskmail.emails(conn, [task["assignee_id"]] if task and task["assignee_id"] else [])
            if task and task["status"] in ("open", "awaiting_approval") and emails:
                subject, body = messages.reminder_mail(conn, self.compiled.model, task, f"{self.mail.base_url}/tasks/{task['id']}")
        if task and task["status"] in ("open", "awaiting_approval") and emails:
            self.mail.send(emails, subject, body, key=f"tailor-{key}")
        with self.transaction() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(idempotency_keys.insert().values(key=key, scope="reminder", result={}, created_at=task_service.utcnow()))
            except sa.exc.IntegrityError:
                pass

    @write("tailor.move_instance")
    def move_instance(self, conn: sa.Connection, req: dict) -> bool:
        """A migrated instance's rows on its new version (runtime/instancemigration.py), once."""
        return move_rows(conn, req)

    @write("tailor.add_comment")
    def add_comment(self, conn: sa.Connection, req: dict) -> None:
        task_service.add_comment(conn, req["task_id"], req["user_id"], req["comment"], key=req["key"])

    @write("tailor.finish_instance")
    def finish_instance(self, conn: sa.Connection, req: dict) -> None:
        task_service.finish_instance(conn, req["workflow_id"], req["status"], req.get("project_id"))
