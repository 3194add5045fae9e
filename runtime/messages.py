"""What alerts, alert emails and reminders say about a task, in words people read.

An escalation level's `message` template reads `task.due` and `task.assignee`: here they are the due time
as 'Thu 3 Dec, 09:00' in the reader's time zone and the assignee's name (or the group whose queue holds the
task), never a UTC ISO string or a user id; `record.X` is the field's display text (a choice's label, a user's
name, a referenced record's title, money with its currency, a date in words). The raw values stay available:
`task.due_at` (ISO, UTC), `task.assignee_id`, `record.raw.X`; step conditions (`when:`) always see raw values.
The steps done so far read the same way (`display_scope`, which task titles and descriptions use too): who completed
a step is their name, when a local time, its form's data display text. The workflow cannot read the database, so the
activity that records an alert renders its text with this context; values are shown through `forms.widgets`, like
everywhere else. A level without a message says "'<the task's title>' is overdue (escalation level N)", the title as
its reader reads it (in their language, with display values), not as the workflow rendered it.

Each recipient reads an alert in their own time zone and language: the text is rendered once per zone and language
among the recipients (their in-app notification and their email carry it), fields, choices, groups and task
titles named as that language calls them (engine.labels); the alert row keeps the organisation's zone and the
definitions' own labels.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import expressions, labels
from engine.compiler import CompiledModel
from engine.model import Model, walk
from forms.widgets import (
    Names,
    display_context,
    locale_of,
    organisation_zone,
    when_text,
    zone_of,
)

from . import words
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
    row = conn.execute(sa.select(users.c.name, users.c.email, users.c.time_zone, users.c.locale)
                       .where(users.c.id == user_id)).mappings().first()
    return dict(row) if row else None


def holder_text(conn: sa.Connection, model: Model, task: dict, locale: str | None = None) -> str:
    """Who has the task: the assignee's name, else the group whose queue it waits in, else 'nobody yet' — in `locale`'s
    words for an email's frame; as written (None) where it fills a pack's template (`task.assignee`), whose sentence is
    the pack's."""
    person = _user(conn, task.get("assignee_id"))
    if person:
        return person["name"]
    group = task.get("group_name")
    if group:
        return words.text(locale, "the %(group)s queue", group=model.groups[group].label if group in model.groups else group.replace('_', ' '))
    return words.text(locale, NOBODY)


def task_context(conn: sa.Connection, model: Model, task: dict, zone: ZoneInfo, locale: str | None = None) -> dict:
    """`task` in a message template: human `due` and `assignee`, raw `due_at` and `assignee_id` beside them; its title
    and its queue's group as `model` names them (in its reader's language, see `labels.translate`)."""
    due = _moment(task.get("due_at"))
    title = labels.task_title(task, model.locale, model)
    return {"id": task.get("id"), "title": title, "due": when_text(due, zone, locale=locale or model.locale) if due else "no set time",
            "due_at": due.astimezone(dt.UTC).isoformat() if due else None,
            "assignee": holder_text(conn, model, task), "assignee_id": task.get("assignee_id")}


def display_scope(scope: dict, model: Model, process: str | None, entity: str | None, names: Names) -> dict:
    """A template's scope (`runtime.interpreter.template_context`) as people read it, in `model`'s language (see
    `labels.translate`) and `names.zone`: the record's fields and the process's inputs as display text (raw values under
    `record.raw`, `inputs.raw`), the process's label, and every step with `completed_by` its completer's name,
    `completed_at` a local time ('Thu 3 Dec, 09:00') and its form's data as display text (`data.raw`); the step as the
    workflow keeps it under `steps.X.raw`. `outcome` stays the word templates compare ('done', 'approved', 'pending')."""
    shown = dict(scope)
    ent = model.entities.get(entity or "")
    if ent is not None and isinstance(scope.get("record"), dict):
        shown["record"] = display_context(scope["record"], ent.all_fields(), names)
    p = model.processes.get(process or "")
    if p is None:
        return shown
    if isinstance(scope.get("inputs"), dict):
        shown["inputs"] = display_context(scope["inputs"], p.inputs, names)
    if isinstance(scope.get("process"), dict):
        shown["process"] = {**scope["process"], "label": p.label}
    specs = {s.id: s for s in walk(p.steps)}
    shown["steps"] = {sid: _step_shown(model, specs.get(sid), done, names) if isinstance(done, dict) else done
                      for sid, done in (scope.get("steps") or {}).items()}
    return shown


def _step_shown(model: Model, step: Any, done: dict, names: Names) -> dict:
    shown = {**done, "raw": done}
    form = model.forms.get(getattr(step, "form", None) or "")
    if form is not None and isinstance(done.get("data"), dict):
        shown["data"] = display_context(done["data"], form.fields, names)
    who = done.get("completed_by")
    if isinstance(who, int) and not isinstance(who, bool):
        shown["completed_by"] = names.user(who)
    if done.get("completed_at"):
        shown["completed_at"] = when_text(done["completed_at"], names.zone, locale=names.compiled.model.locale)
    return shown


Reader = tuple[str, str]  # (time zone, language) a message is rendered for


@dataclass(frozen=True)
class Recipient:
    """A user a message is for: how they read it (`Reader`), where it is emailed (None: nowhere), and whether they are
    still active (a deactivated user hears of nothing)."""

    reader: Reader
    email: str | None
    active: bool


def recipients(conn: sa.Connection, model: Model, user_ids: list[int]) -> dict[int, Recipient]:
    """Those of `user_ids` who exist, in one read: each one's time zone (their own choice, else the organisation's),
    language (theirs, else the definitions'), email address and whether they are active."""
    if not user_ids:
        return {}
    rows = conn.execute(sa.select(users.c.id, users.c.time_zone, users.c.locale, users.c.email, users.c.active)
                        .where(users.c.id.in_(user_ids))).mappings()
    return {r["id"]: Recipient((zone_of(model, dict(r)).key, locale_of(model, dict(r))), r["email"] or None, bool(r["active"])) for r in rows}


def alert_texts(conn: sa.Connection, compiled: CompiledModel, req: dict, task: dict, readers: dict[int, Reader]) -> tuple[str, dict[int, str]]:
    """An escalation level's message for `task`: (in the organisation's zone, {recipient: as they read it}), for the
    recipients in `readers`.

    Rendered with the process's context as the workflow saw it (`req`: template, context, steps, now) and the
    record's display values; the workflow's own rendering (`req["message"]`) if the template fails."""
    model = compiled.model
    org = (organisation_zone(model).key, labels.DEFAULT)
    texts = {r: _alert_text(conn, compiled, req, task, ZoneInfo(r[0]), r[1]) for r in {org, *readers.values()}}
    return texts[org], {u: texts[r] for u, r in readers.items()}


def _alert_text(conn: sa.Connection, compiled: CompiledModel, req: dict, task: dict, zone: ZoneInfo, locale: str) -> str:
    """The level's message for a reader in `zone` and `locale`: its template with display values, else (none, or it
    renders empty) the overdue text naming the task as they read it; the workflow's rendering if the template fails."""
    model = labels.translate(compiled.model, locale)
    overdue = words.text(locale, "'%(title)s' is overdue (escalation level %(level)s)", title=labels.task_title(task, locale, model),
                         level=req.get("level"))
    if not req.get("template"):
        return overdue
    try:
        now = dt.datetime.fromisoformat(req["now"])
        ctx = req.get("context") or {"steps": {}}
        scope = display_scope(template_context(ctx, iter(req.get("steps") or ()), now), model, task.get("process"),
                              task.get("entity"), Names(conn, compiled, zone))
        scope["task"] = task_context(conn, model, task, zone)
        return expressions.render(req["template"], scope) or overdue
    except Exception:  # noqa: BLE001 - a template that fails at run time must not stop the alert
        return req.get("message") or overdue


def alert_mails(conn: sa.Connection, model: Model, alert: dict, task: dict, texts: dict[int, str], link: str,
                readers: dict[int, Reader]) -> list[tuple[list[int], str, str]]:
    """The emails of an alert: [(recipients, subject, body)], one per text and time zone, each recipient reading the
    alert's message (`texts`: theirs, else the alert's own) and the due time in their own zone (`readers`; the
    organisation's for one not in it), the task's title in their language; `link` opens the task."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for uid in alert["recipients"] or []:
        zone, locale = readers.get(uid) or (organisation_zone(model).key, labels.DEFAULT)
        groups.setdefault((texts.get(uid) or alert["message"], zone, locale), []).append(uid)
    mails = []
    for (message, key, locale), recipients in groups.items():
        ctx = task_context(conn, labels.translate(model, locale), task, ZoneInfo(key), locale)
        lines = [message, "", words.text(locale, "Task: %(title)s", title=ctx["title"])]
        if ctx["due_at"]:
            lines.append(words.text(locale, "Due: %(when)s (%(zone)s)", when=ctx["due"], zone=key))
        lines += [words.text(locale, "With: %(holder)s", holder=holder_text(conn, labels.translate(model, locale), task, locale)), words.text(locale, "Open it: %(link)s", link=link)]
        # level 0: not an escalation but a task whose party named nobody who may hold it (runtime.routing)
        subject = "[Tailor] " + words.text(locale, "Overdue: %(title)s" if alert.get("level") else "Handed on: %(title)s", title=ctx["title"])
        mails.append((recipients, subject, "\n".join(lines) + "\n"))
    return mails


def reminder_mail(conn: sa.Connection, model: Model, task: dict, link: str) -> tuple[str, str]:
    """(subject, body) of a reminder to the task's assignee, the due time in their own zone, the title in their language;
    `link` opens the task."""
    locale, zone, ctx = _for_reader(conn, model, task, task.get("assignee_id"))
    when = (words.text(locale, "This task is due %(when)s (%(zone)s).", when=ctx["due"], zone=zone.key) if ctx["due_at"]
            else words.text(locale, "This task is waiting for you."))
    return ("[Tailor] " + words.text(locale, "Reminder: %(title)s", title=ctx["title"]),
            f"{when}\n{words.text(locale, 'Open it: %(link)s', link=link)}\n")


def _for_reader(conn: sa.Connection, model: Model, task: dict, user_id: int | None) -> tuple[str, ZoneInfo, dict]:
    """The reader's language and time zone, and `task` as they read it (its title in their language, its due time in
    their zone)."""
    user = _user(conn, user_id)
    zone, locale = zone_of(model, user), locale_of(model, user)
    return locale, zone, task_context(conn, labels.translate(model, locale), task, zone, locale)


def _task_lines(locale: str, zone: ZoneInfo, ctx: dict, link: str) -> list[str]:
    """The end of a task's email: its title, its due time (if it has one) and the link that opens it, in `locale`."""
    lines = [words.text(locale, "Task: %(title)s", title=ctx["title"])]
    if ctx["due_at"]:
        lines.append(words.text(locale, "Due: %(when)s (%(zone)s)", when=ctx["due"], zone=zone.key))
    return lines + [words.text(locale, "Open it: %(link)s", link=link)]


def approval_mail(conn: sa.Connection, model: Model, task: dict, requester: str, link: str) -> tuple[str, str]:
    """(subject, body) asking an approval task's approver to decide: who asks, the title in their language, the due time
    in their zone; `link` opens the task."""
    locale, zone, ctx = _for_reader(conn, model, task, task.get("assignee_id"))
    lines = [words.text(locale, "%(who)s asks for your approval.", who=requester), "", *_task_lines(locale, zone, ctx, link)]
    return "[Tailor] " + words.text(locale, "Waiting for your approval: %(title)s", title=ctx["title"]), "\n".join(lines) + "\n"


def sent_back_mail(conn: sa.Connection, model: Model, task: dict, by: str, reason: str, link: str) -> tuple[str, str]:
    """(subject, body) telling whoever did a piece of work that an approver sent it back, and why; the title in their
    language, the due time in their zone; `link` opens the task."""
    locale, zone, ctx = _for_reader(conn, model, task, task.get("assignee_id"))
    said = (words.text(locale, "%(who)s sent this back for revision: %(reason)s", who=by, reason=reason) if reason
            else words.text(locale, "%(who)s sent this back for revision.", who=by))
    lines = [said, "", *_task_lines(locale, zone, ctx, link)]
    return "[Tailor] " + words.text(locale, "Sent back for revision: %(title)s", title=ctx["title"]), "\n".join(lines) + "\n"
