"""What the task page shows of an approval (`tasks/_decision.html`): the data decided on, who asks, whether the viewer
may decide; and, on work sent back for revision, who sent it back, when and why, with the earlier answers to revise.

Values look as everywhere else (`forms.widgets`): names, labels, local times, money with its currency.
"""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from markupsafe import Markup

from engine.compiler import CompiledModel
from engine.model import Field
from forms import widgets
from runtime import records, words
from runtime import tasks as task_service

from ..access import decide_refusal, may_see_task


def _rows(conn: sa.Connection, compiled: CompiledModel, task: dict, work: dict | None, zone: ZoneInfo) -> list[dict[str, Any]]:
    """The shown fields as {label, html}: `record.X` from the record as it is now, `STEP.X` from the work's form data as it
    was submitted for the approval's round (kept on the approval task)."""
    model = compiled.model
    subject = task.get("subject") or {}
    entity = model.entities.get(task["entity"]) if task["entity"] else None
    record: dict = {}
    if entity is not None and task["record_id"]:
        try:
            record = dict(records.get_record(conn, compiled, entity.name, task["record_id"]).data)
        except records.RecordNotFound:
            record = {}
    form = model.forms.get(work["form"]) if work and work["form"] else None
    data = task.get("data") if task.get("kind") == "approval" and task.get("data") is not None else (work or {}).get("data") or {}
    shown: list[tuple[Field, Any]] = []
    for path in subject.get("show") or []:
        head, _, name = path.partition(".")
        if head == "record" and entity is not None:
            f = next((x for x in entity.all_fields() if x.name == name), None)
            value = record.get(name)
        else:
            f = form.field(name) if form else None
            value = data.get(name)
        if f is not None:  # a definition changed since: what it no longer has is left out
            shown.append((f, value))
    names = widgets.Names(conn, compiled, zone)
    names.prefetch([f for f, _ in shown], [{f.name: v for f, v in shown}])
    return [{"label": f.label, "html": widgets.html(v, f, names) if v not in (None, "") else Markup('<span class="muted">Not given</span>')}
            for f, v in shown]


def _old_rows(conn: sa.Connection, compiled: CompiledModel, task: dict, zone: ZoneInfo) -> list[dict[str, Any]]:
    """A task awaiting its own approver (a process started before approval steps): its form's answers."""
    form = compiled.model.forms.get(task["form"]) if task["form"] else None
    if form is None:
        return []
    return _rows(conn, compiled, {**task, "subject": {"show": [f"{task['step_id']}.{f.name}" for f in form.fields]}}, task, zone)


def decision(conn: sa.Connection, compiled: CompiledModel, user: dict, task: dict, zone: ZoneInfo) -> dict[str, Any] | None:
    """An approval's part of the task page: the data decided on, the requester, the round, whether `user` may decide
    it now (and if not, why, in words); None for other tasks."""
    if task.get("kind") != "approval" and task["status"] != "awaiting_approval":
        return None
    if task.get("kind") == "approval":
        work = task_service.get_task(conn, (task.get("subject") or {}).get("task_id") or 0)
        rows = _rows(conn, compiled, task, work, zone)
    else:
        work, rows = task, _old_rows(conn, compiled, task, zone)
    requester = task_service.requester(conn, task)
    waiting = task["status"] == "open" if task.get("kind") == "approval" else task["status"] == "awaiting_approval"
    refusal = decide_refusal(compiled.model, user, task, task["_groups"], task["_pm"], requester) if waiting else None
    if refusal and task.get("kind") == "approval":  # on the page, say who it waits for
        holder = task_service.user_name(conn, task["assignee_id"]) if task["assignee_id"] else None
        locale = compiled.model.locale  # the page's language
        if requester == user["id"]:
            waits = words.text(locale, "it is waiting for %(who)s's decision", who=holder) if holder else \
                words.text(locale, "it is waiting for an administrator to hand it to someone")
            refusal = words.text(locale, "%(why)s: %(waits)s.", why=words.text(locale, refusal).rstrip("."), waits=waits)
        else:
            refusal = words.text(locale, "It is waiting for %(who)s's decision.", who=holder) if holder else \
                words.text(locale, "It is waiting for an administrator to hand it to someone.")
    return {"rows": rows, "requester": task_service.user_name(conn, requester) if requester else None, "round": task.get("round") or 1,
            "work_title": work["title"] if work else None,
            "work_link": f"/tasks/{work['id']}" if work and work is not task and may_see_task(
                compiled.model, user, work, task["_groups"], task["_pm"]) else None,
            "waiting": waiting, "can_decide": waiting and refusal is None, "refusal": refusal,
            "outcome": task.get("outcome"), "reason": task.get("reason"),
            "decided_by": task_service.user_name(conn, task["completed_by"]) if task.get("completed_by") else None,
            "decided_at": widgets.when_text(task.get("completed_at"), zone, locale=compiled.model.locale)}


def sent_back(conn: sa.Connection, compiled: CompiledModel, task: dict, zone: ZoneInfo) -> dict[str, Any] | None:
    """Work an approver sent back, while it is open again: who sent it back, when (the viewer's time) and why."""
    if task.get("kind") == "approval" or task["status"] != "open" or not task.get("reason"):
        return None
    rejection = task_service.last_rejection(conn, task)
    return {"by": task_service.user_name(conn, rejection["completed_by"]) if rejection else words.text(compiled.model.locale, "the approver"),
            "when": widgets.when_text(rejection["completed_at"], zone, locale=compiled.model.locale) if rejection else "", "reason": task["reason"],
            "round": task.get("round") or 1}


def earlier_answers(conn: sa.Connection, compiled: CompiledModel, task: dict, zone: ZoneInfo) -> dict[str, Any]:
    """What the requester submitted before, as the form's inputs show it, to revise rather than type again."""
    form = compiled.model.forms.get(task["form"]) if task["form"] else None
    data = task.get("data") or {}
    if form is None or not data:
        return {}
    names = widgets.Names(conn, compiled, zone)
    return {f.name: widgets.get(f.type).input_value(data[f.name], f, names) for f in form.fields if f.name in data}
