"""What a task's page shows besides its form: the facts about it, the process's steps so far, and its comment thread.

The steps so far are the task rows of the same process instance (workflow id), in order, with the steps the
process skipped (a `when` that did not hold leaves no row: a step without a row before one with a row was
skipped), each with its outcome, who and when; the record's contact history adds what happened to each
(handed over, alerts, decisions and their reasons). The data earlier steps recorded is shown with their forms'
field labels and display values (forms/widgets.py), never raw values or ids. Pure reads.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup

from engine import expressions, labels
from engine.compiler import CompiledModel
from engine.errors import Loc
from engine.model import Field, Model
from forms import widgets
from runtime import words
from runtime.db import aware
from runtime.schema import contact_history, process_instances, projects, tasks

from .pages import STATUS_TEXT

HISTORY_READ = 500  # the record's newest history entries read for one process instance's events and comments
_USER = Field("user_id", "user", Loc("tasks"), "Who")


def group_label(model: Model, name: str | None) -> str:
    """A group as people read it: its label, else its name in words."""
    if not name:
        return ""
    group = model.groups.get(name)
    return group.label if group else name.replace("_", " ").capitalize()


@dataclass
class Event:
    """Something that happened to a step: when (local), what, who did it, and a reason or comment if given."""

    when: str
    text: str
    who: str
    detail: str = ""


@dataclass
class Approver:
    """One approver of an approval step's round: their name, where their decision stands, when, and the reason given."""

    name: str
    state: str
    tone: str
    when: str = ""
    reason: str = ""


@dataclass
class Step:
    """One entry of the process's timeline: a step's task (or an approval step's round), or a step the process skipped."""

    title: str
    state: str               # what a person reads: Done, With Ann Sales, Skipped, Approved, ...
    tone: str                # the badge's colour: good, bad, warn, info or ''
    who: str = ""            # who did it (done) or has it (open)
    when: str = ""           # when it was done (local), or when it is due
    task_id: int | None = None
    current: bool = False
    data: list[tuple[str, Markup]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    approvers: list[Approver] = field(default_factory=list)
    note: str = ""           # a word on the state (why a step was skipped)
    link: bool = False       # the viewer may open the step's task


@dataclass
class Comment:
    who: str
    when: str
    text: str
    public: bool = False


@dataclass
class TaskPage:
    """The facts at the top of a task's page, the process's steps so far, and the task's comments."""

    facts: list[tuple[str, Markup]]
    steps: list[Step]
    comments: list[Comment]
    process: str = ""


def gather(conn: sa.Connection, compiled: CompiledModel, task: dict, zone, *, insider: bool, viewer_id: int,
           may_open: Callable[[dict], bool], record_title: str | None = None, record: dict | None = None) -> TaskPage:
    """Everything the task's page shows about `task` for a viewer in `zone`; `insider` (staff) also sees the steps' data
    and events and every internal comment, a customer's user only the steps, the public entries and their own.
    `may_open(row)` says whether the viewer may open another step's task (its entry links to it then); `record` is the
    record's template context, for the titles of skipped steps."""
    model = compiled.model
    names = widgets.Names(conn, compiled, zone)
    rows = [dict(r) for r in conn.execute(sa.select(tasks).where(tasks.c.workflow_id == task["workflow_id"])
                                          .order_by(tasks.c.created_at, tasks.c.id)).mappings()]
    if not any(r["id"] == task["id"] for r in rows):
        rows.append(task)
    instance = conn.execute(sa.select(process_instances).where(process_instances.c.workflow_id == task["workflow_id"])).mappings().first()
    entries = _history(conn, task, {r["id"] for r in rows})
    names.prefetch([_USER], [{"user_id": u} for r in rows for u in (r["assignee_id"], r["completed_by"])]
                   + [{"user_id": e["user_id"]} for e in entries] + ([{"user_id": instance["started_by"]}] if instance else []))
    process = model.processes.get(task["process"])
    comments = [_comment(e, names) for e in entries if e["kind"] == "note" and e["data"].get("task_id") == task["id"]
                and (insider or e["public"] or e["user_id"] == viewer_id)]
    steps = _steps(model, names, rows, entries, task, insider, process, record or {})
    openable = {r["id"] for r in rows if r["id"] != task["id"] and may_open(r)}
    for step in steps:
        step.link = step.task_id in openable
    return TaskPage(facts=_facts(conn, model, names, task, instance, record_title), steps=steps, comments=comments,
                    process=process.label if process else task["process"].replace("_", " ").capitalize())


def _history(conn: sa.Connection, task: dict, task_ids: set[int]) -> list[dict]:
    """The record's history entries about the process's tasks, oldest first (a task without a record has none)."""
    if not (task["entity"] and task["record_id"]):
        return []
    q = (sa.select(contact_history).where(contact_history.c.entity == task["entity"], contact_history.c.record_id == task["record_id"])
         .order_by(contact_history.c.occurred_at.desc(), contact_history.c.id.desc()).limit(HISTORY_READ))
    found = []
    for row in conn.execute(q).mappings():
        data = row["data"] if isinstance(row["data"], dict) else {}
        if isinstance(data.get("task_id"), int) and data["task_id"] in task_ids:
            found.append({**row, "data": data, "occurred_at": aware(row["occurred_at"])})
    return found[::-1]


def _comment(e: dict, names: widgets.Names) -> Comment:
    text = e["data"].get("comment") if isinstance(e["data"].get("comment"), str) else e["summary"]
    return Comment(who=_who(e["user_id"], names), when=widgets.when_text(e["occurred_at"], names.zone, locale=names.compiled.model.locale), text=text, public=bool(e["public"]))


def _said(names: widgets.Names, message: str, **values) -> str:
    """`message` in the page's language (the language its labels are read in: `names.compiled`)."""
    return words.text(names.compiled.model.locale, message, **values)


def _who(user_id: int | None, names: widgets.Names) -> str:
    return widgets.text(user_id, _USER, names) if user_id else _said(names, "Tailor (automatic)")


# -- the facts -------------------------------------------------------------------------


def _facts(conn: sa.Connection, model: Model, names: widgets.Names, task: dict, instance, record_title: str | None) -> list[tuple[str, Markup]]:
    """(label, html) of who has the task, its group, when it is due, what it is for, its project and process."""
    esc = Markup.escape
    group = group_label(model, task["group_name"])
    if task["assignee_id"]:
        holder = esc(names.user(task["assignee_id"]))
    elif group:
        holder = esc(_said(names, "Nobody yet: waiting in the %(group)s queue", group=group))
    else:
        holder = esc(_said(names, "Nobody"))
    facts = [("Assigned to", holder)]
    if group:
        facts.append(("Group", esc(group)))
    due = aware(task["due_at"])
    if due is not None:
        late = task["status"] in ("open", "awaiting_approval") and due < dt.datetime.now(dt.UTC)
        facts.append(("Due", Markup('<span class="when">{0}</span>{1}').format(
            widgets.when_text(due, names.zone, locale=names.compiled.model.locale), Markup(' <span class="kind bad">{0}</span>').format(_said(names, "Overdue")) if late else "")))
    else:
        facts.append(("Due", Markup('<span class="muted">{0}</span>').format(_said(names, "No due date"))))
    if task["entity"] and task["record_id"]:
        ent = model.entities.get(task["entity"])
        title = record_title or names.title(task["entity"], task["record_id"])
        facts.append((ent.label if ent else "For", Markup('<a href="/records/{0}/{1}">{2}</a>').format(task["entity"], task["record_id"], title)))
    if task["project_id"]:
        project = conn.execute(sa.select(projects.c.title).where(projects.c.id == task["project_id"])).scalar()
        facts.append(("Project", Markup('<a href="/projects/{0}">{1}</a>').format(task["project_id"], project or _said(names, "the project"))))
    if instance is not None:
        by = " " + _said(names, "by %(who)s", who=names.user(instance["started_by"])) if instance["started_by"] else ""
        facts.append(("Started", Markup("{0}{1}").format(widgets.when_text(aware(instance["started_at"]), names.zone, locale=names.compiled.model.locale), by)))
    if task["status"] in ("done", "skipped", "cancelled") and task["completed_at"]:
        by = " " + _said(names, "by %(who)s", who=names.user(task["completed_by"])) if task["completed_by"] else ""
        facts.append(("Finished", Markup("{0}{1}").format(widgets.when_text(aware(task["completed_at"]), names.zone, locale=names.compiled.model.locale), by)))
    return facts


# -- the steps so far ----------------------------------------------------------------------


def _leaves(steps) -> Iterator[Any]:
    """The steps of a process definition that make tasks, in order (a parallel step's branches' steps included)."""
    for s in steps:
        branches = getattr(s, "branches", None)
        if branches:
            for _, inner in branches:
                yield from _leaves(inner)
        else:
            yield s


def _steps(model: Model, names: widgets.Names, rows: list[dict], entries: list[dict], task: dict, insider: bool, process,
           record: dict) -> list[Step]:
    """The timeline: each task row (approval rows of one step and round together), skipped steps where they fell."""
    defined = list(_leaves(process.steps)) if process else []
    order = {s.id: i for i, s in enumerate(defined)}
    events: dict[int, list[dict]] = {}
    for e in entries:
        if e["kind"] != "note":
            events.setdefault(e["data"]["task_id"], []).append(e)
    forms_of = [(model.forms[r["form"]], r) for r in rows if r["form"] in model.forms and isinstance(r["data"], dict)]
    for form, r in forms_of:
        names.prefetch(form.fields, [r["data"]])
    out: list[tuple[int, Step]] = []  # (position in the definition, entry): skipped steps go where they belong
    approvals: dict[tuple[str, int], Step] = {}
    for r in rows:
        position = order.get(r["step_id"], len(order))
        if r["kind"] == "approval":
            key = (r["step_id"], r["round"])
            if key not in approvals:
                approvals[key] = Step(title=labels.task_title(r, model.locale, model), state="", tone="", task_id=r["id"])
                out.append((position, approvals[key]))
            _add_approver(approvals[key], r, names, task["id"])
            continue
        out.append((position, _task_step(model, names, r, events.get(r["id"], []), task["id"], insider)))
    for step in approvals.values():
        _settle_approval(step)
    reached = max((p for p, _ in out if p < len(order)), default=-1)
    have = {r["step_id"] for r in rows}
    context = {**_context(rows), "record": record}
    for s in defined:
        if s.id not in have and order[s.id] < reached:
            out.append((order[s.id], Step(title=_title(s, context), state="Skipped", tone="",
                                          note="Its condition did not hold, so the process went on without it.")))
    out.sort(key=lambda pair: pair[0])  # stable: rows keep their order within a step
    if not insider:
        for _, step in out:
            step.data, step.events = [], []
    return [step for _, step in out]


def _task_step(model: Model, names: widgets.Names, r: dict, entries: list[dict], current_id: int, insider: bool) -> Step:
    status, outcome = r["status"], r["outcome"]
    # why a task came back is on its approval round's entry (and at the top of its page), not said twice
    step = Step(title=labels.task_title(r, model.locale, model), state=STATUS_TEXT.get(status, status.replace("_", " ").capitalize()), tone="",
                task_id=r["id"], current=r["id"] == current_id)
    if status == "done":
        step.state, step.tone = ("Approved", "good") if outcome == "approved" else ("Done", "good")
        step.who = names.user(r["completed_by"]) if r["completed_by"] else ""
        step.when = widgets.when_text(aware(r["completed_at"]), names.zone, locale=names.compiled.model.locale)
    elif status in ("open", "awaiting_approval"):
        step.tone = "info" if status == "open" else "warn"
        if r["assignee_id"]:
            step.state = _said(names, "With %(who)s", who=names.user(r["assignee_id"])) if status == "open" else "Waiting for approval"
        elif r["group_name"]:
            step.state = _said(names, "Waiting in the %(group)s queue", group=group_label(model, r["group_name"]))
        due = aware(r["due_at"])
        if due is not None:
            step.when = _said(names, "due %(when)s", when=widgets.when_text(due, names.zone, locale=names.compiled.model.locale))
            if due < dt.datetime.now(dt.UTC):
                step.tone, step.when = "bad", _said(names, "%(when)s (overdue)", when=step.when)
        if status == "open" and (r["round"] > 1 or outcome == "rejected"):
            step.state = _said(names, "Sent back to %(who)s", who=names.user(r["assignee_id"])) if r["assignee_id"] else "Sent back"
    elif status == "skipped":
        step.state, step.note = "Skipped", "The process went on without it."
    form = model.forms.get(r["form"]) if r["form"] else None
    submitted = status != "open" or r["round"] > 1 or outcome == "rejected"  # a task sent back keeps what it was sent with
    if form is not None and isinstance(r["data"], dict) and submitted:
        step.data = [(f.label, widgets.html(r["data"][f.name], f, names)) for f in form.fields
                     if r["data"].get(f.name) not in (None, "", [])]
    step.events = [ev for e in entries if (ev := _event(model, e, names)) is not None]
    if status == "done" and step.events and step.events[-1].text in ("Completed", "Approved"):
        step.events.pop()  # the step's own line says who did it and when
    return step


def _add_approver(step: Step, r: dict, names: widgets.Names, current_id: int) -> None:
    """One approver's row of an approval step's round: decided, waiting, or no longer needed."""
    name = names.user(r["assignee_id"]) if r["assignee_id"] else group_label(names.compiled.model, r["group_name"]) or "Nobody"
    when = widgets.when_text(aware(r["completed_at"]), names.zone, locale=names.compiled.model.locale) if r["completed_at"] else ""
    if r["outcome"] == "approved":
        state, tone = "Approved", "good"
    elif r["outcome"] == "rejected" or r["status"] == "rejected":
        state, tone = "Rejected", "bad"
    elif r["status"] in ("open", "awaiting_approval"):
        state, tone = "Waiting for their decision", "info"
    elif r["status"] == "cancelled":
        state, tone, when = "No longer needed", "", ""
    else:
        state, tone = STATUS_TEXT.get(r["status"], r["status"]), ""
    step.approvers.append(Approver(name=name, state=state, tone=tone, when=when, reason=r["reason"] or ""))
    step.current = step.current or r["id"] == current_id
    if r["id"] == current_id:
        step.task_id = r["id"]


def _settle_approval(step: Step) -> None:
    """An approval round's state: rejected if anyone rejected, approved if someone approved and nobody waits, else waiting."""
    states = [a.state for a in step.approvers]
    if "Rejected" in states:
        step.state, step.tone = "Rejected", "bad"
    elif "Waiting for their decision" in states:
        step.state, step.tone = "Waiting for approval", "warn"
    elif "Approved" in states:
        step.state, step.tone = "Approved", "good"
    else:
        step.state, step.tone = states[0] if states else "", ""


_PHRASES = (("Task completed", "Completed"), ("Task submitted for approval", "Sent for approval"), ("Task reopened", "Sent back"),
            ("Task skipped", "Skipped"))


def _event(model: Model, e: dict, names: widgets.Names) -> Event | None:
    """A history entry about a step, in a few words (its creation is the step itself, so it is left out)."""
    data, summary = e["data"], e["summary"]
    when, who = widgets.when_text(e["occurred_at"], names.zone, locale=names.compiled.model.locale), _who(e["user_id"], names)
    detail = data.get("comment") if isinstance(data.get("comment"), str) else ""
    if e["kind"] == "task":
        if summary.startswith("Task created"):
            return None
        if summary.startswith("Task reassigned"):
            target = data.get("assignee_id")
            if isinstance(target, int):
                text = _said(names, "Handed to %(who)s", who=names.user(target))
            elif data.get("group"):
                text = _said(names, "Put in the %(group)s queue", group=group_label(model, data["group"]))
            else:
                text = "Handed over"
            return Event(when, text, who if e["user_id"] else _said(names, "Tailor (an escalation)"))
        for prefix, phrase in _PHRASES:
            if summary.startswith(prefix):
                if summary.endswith("(approved)"):
                    phrase = "Approved"
                elif summary.endswith("(rejected)"):
                    phrase = "Rejected"
                return Event(when, phrase, who, detail)
    if e["kind"] == "alert":
        message = summary.split(": ", 1)[1] if summary.startswith("Alert (level") and ": " in summary else summary
        recipients = [r for r in data.get("recipients") or [] if isinstance(r, int)]
        names.prefetch([_USER], [{"user_id": r} for r in recipients])
        text = _said(names, "Alert to %(who)s", who=", ".join(names.user(r) for r in recipients)) if recipients else "Alert"
        return Event(when, text, _said(names, "Tailor (automatic)"), message)
    return Event(when, summary, who, detail)


def _context(rows: list[dict]) -> dict:
    """What a skipped step's title template may read: the steps' outcomes and data."""
    return {"steps": {r["step_id"]: {"outcome": r["outcome"] or "pending", "data": r["data"] if isinstance(r["data"], dict) else {}}
                      for r in rows}}


def _title(step, context: dict) -> str:
    """A skipped step's title: its template with what is known (the record's values are not), else its id in words."""
    try:
        return expressions.render(step.title.source, context).strip() or step.id.replace("_", " ").capitalize()
    except Exception:  # noqa: BLE001 - a template naming what a skipped step never had is expected here
        return step.id.replace("_", " ").capitalize()


def form_values(compiled: CompiledModel, form_name: str, data: dict, zone) -> dict:
    """What a step's form was sent with, as its inputs show it again (a task sent back is revised from there)."""
    form = compiled.model.forms.get(form_name)
    if form is None:
        return {}
    names = widgets.Names(None, compiled, zone)
    return {f.name: widgets.get(f.type).input_value(data[f.name], f, names) for f in form.fields if f.name in data}
