"""What alerts, alert emails and reminders say about a task, in words people read.

An escalation level's `message` template reads `task.due` and `task.assignee`: here they are the due time
as 'Thu 3 Dec, 09:00' in the reader's time zone and the assignee's name (or the group whose queue holds the
task), never a UTC ISO string or a user id. The raw values stay available as `task.due_at` (ISO, UTC) and
`task.assignee_id`. The workflow cannot read the database, so the activity that records an alert renders
its text with this context; values are shown through `forms.widgets`, like everywhere else.

An alert is one text for all its recipients, so it reads in the organisation's time zone (and its email says
which zone that is); a reminder goes to one person and reads in theirs.
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import expressions
from engine.model import Model
from forms.widgets import organisation_zone, when_text, zone_of

from .interpreter import template_context
from .schema import users

NOBODY = "nobody yet"


def _moment(value: Any) -> dt.datetime | None:
    if isinstance(value, str) and value:
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # the store keeps UTC
    return None


def _user(conn: sa.Connection, user_id: int | None) -> dict | None:
    if not user_id:
        return None
    row = conn.execute(sa.select(users.c.name, users.c.email, users.c.time_zone).where(users.c.id == user_id)).mappings().first()
    return dict(row) if row else None


def holder_text(conn: sa.Connection, model: Model, task: dict) -> str:
    """Who has the task: the assignee's name, else the group whose queue it waits in, else 'nobody yet'."""
    person = _user(conn, task.get("assignee_id"))
    if person:
        return person["name"]
    group = task.get("group_name")
    if group:
        return f"the {model.groups[group].label if group in model.groups else group.replace('_', ' ')} queue"
    return NOBODY


def task_context(conn: sa.Connection, model: Model, task: dict, zone: ZoneInfo) -> dict:
    """`task` in a message template: human `due` and `assignee`, raw `due_at` and `assignee_id` beside them."""
    due = _moment(task.get("due_at"))
    return {"id": task.get("id"), "title": task.get("title") or "", "due": when_text(due, zone) if due else "no set time",
            "due_at": due.astimezone(dt.UTC).isoformat() if due else None,
            "assignee": holder_text(conn, model, task), "assignee_id": task.get("assignee_id")}


def alert_text(conn: sa.Connection, model: Model, req: dict, task: dict) -> str:
    """An escalation level's message for `task`, rendered with the process's context as the workflow saw it
    (`req`: template, context, steps, now); the workflow's own rendering (`req["message"]`) if that fails."""
    fallback = req.get("message") or ""
    if not req.get("template"):
        return fallback
    try:
        now = dt.datetime.fromisoformat(req["now"])
        scope = {**template_context(req.get("context") or {"steps": {}}, iter(req.get("steps") or ()), now),
                 "task": task_context(conn, model, task, organisation_zone(model))}
        return expressions.render(req["template"], scope) or fallback
    except Exception:  # noqa: BLE001 - a template that fails at run time must not stop the alert
        return fallback


def alert_mail(conn: sa.Connection, model: Model, alert: dict, task: dict, link: str) -> tuple[str, str]:
    """(subject, body) of an alert's email to all its recipients, times in the organisation's zone; `link` opens the task."""
    zone = organisation_zone(model)
    ctx = task_context(conn, model, task, zone)
    lines = [alert["message"], "", f"Task: {ctx['title']}"]
    if ctx["due_at"]:
        lines.append(f"Due: {ctx['due']} ({zone.key})")
    lines += [f"With: {ctx['assignee']}", f"Open it: {link}"]
    # level 0: not an escalation but a task whose party named nobody who may hold it (runtime.routing)
    return f"[Tailor] {'Overdue' if alert.get('level') else 'Handed on'}: {ctx['title']}", "\n".join(lines) + "\n"


def reminder_mail(conn: sa.Connection, model: Model, task: dict, link: str) -> tuple[str, str]:
    """(subject, body) of a reminder to the task's assignee, the due time in their own zone; `link` opens the task."""
    zone = zone_of(model, _user(conn, task.get("assignee_id")))
    ctx = task_context(conn, model, task, zone)
    when = f"due {ctx['due']} ({zone.key})" if ctx["due_at"] else "waiting for you"
    return f"[Tailor] Reminder: {ctx['title']}", f"This task is {when}.\nOpen it: {link}\n"
