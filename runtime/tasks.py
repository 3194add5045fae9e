"""Tasks, alerts, projects and process instances: the service the activities and the web share.

Every write is idempotent on a key (workflow id + step, + escalation level), so an
activity retried after a crash finds the row it already wrote instead of adding one.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import sqlalchemy as sa

from engine.labels import task_title

from . import notifications, parties
from .history import add_history
from .keyed import insert_new
from .routing import Route
from .schema import alerts, group_members, process_instances, projects, tasks, users


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _insert_once(conn: sa.Connection, table: sa.Table, key: str, values: dict) -> tuple[dict, bool]:
    """Insert a row keyed by `key` unless it exists; returns (row, inserted)."""
    row = insert_new(conn, table, {"key": key, **values}, ("key",))
    if row is not None:
        return dict(row._mapping), True
    return dict(conn.execute(sa.select(table).where(table.c.key == key)).mappings().one()), False  # a retry: the first write's row


def register_instance(conn: sa.Connection, workflow_id: str, process: str, version: str, entity: str | None,
                      record_id: int | None, inputs: dict, started_by: int | None, started_at: dt.datetime) -> None:
    insert_new(conn, process_instances, dict(workflow_id=workflow_id, process=process, version=version, entity=entity, record_id=record_id,
                                             status="running", inputs=inputs, started_by=started_by, started_at=started_at), ("workflow_id",))


def finish_instance(conn: sa.Connection, workflow_id: str, status: str, project_id: int | None = None) -> None:
    conn.execute(process_instances.update().where(process_instances.c.workflow_id == workflow_id, process_instances.c.status == "running")
                 .values(status=status, ended_at=utcnow()))
    if project_id:
        conn.execute(projects.update().where(projects.c.id == project_id).values(status="closed"))


def open_project(conn: sa.Connection, key: str, title: str, entity: str | None, record_id: int | None, manager_id: int | None) -> int:
    row, created = _insert_once(conn, projects, key, dict(title=title, entity=entity, record_id=record_id, manager_id=manager_id,
                                                          status="open", created_at=utcnow()))
    if created and entity and record_id:
        add_history(conn, entity, record_id, "project", f"Project opened: {title}", {"project_id": row["id"]}, None, key=f"project:{key}")
    return row["id"]


def create_task(conn: sa.Connection, key: str, values: dict, route: Callable[[], Route]) -> dict:
    """The task row for `key`, created the first time only, where `route()` says (`runtime.routing`; asked only then:
    it moves a group's round-robin turn). A task that went to a fallback holder keeps why (`routed`), and an alert keyed
    `{key}:routed` says the same to whom the route tells (the holder, the group's managers)."""
    existing = conn.execute(sa.select(tasks).where(tasks.c.key == key)).mappings().first()
    if existing:
        return dict(existing)
    where = route()
    row, created = _insert_once(conn, tasks, key, {**values, "assignee_id": where.assignee_id, "group_name": where.group,
                                                    "routed": where.routed, "status": "open", "created_at": utcnow()})
    if created and row["entity"] and row["record_id"]:
        add_history(conn, row["entity"], row["record_id"], "task", f"Task created: {row['title']}",
                    {"task_id": row["id"], "due_at": row["due_at"].isoformat() if row["due_at"] else None}, None, key=f"task-created:{key}")
    if created:
        notify_holders(conn, f"task-created:{key}", row)
        if where.routed and where.tell:  # nobody to tell: nobody at all may hold it, and `routed` says so on the task
            tell = list(where.tell)
            raise_alert(conn, routed_key(key), row, 0, tell, f"'{row['title']}': {where.routed}",
                        {u: f"'{title}': {where.routed}" for title, us in by_title(conn, row, tell).items() for u in us})
    return row


def routed_key(task_key: str) -> str:
    """The key of the alert that says why a task went to a fallback holder."""
    return f"{task_key}:routed"


def alert_by_key(conn: sa.Connection, key: str) -> dict | None:
    row = conn.execute(sa.select(alerts).where(alerts.c.key == key)).mappings().first()
    return dict(row) if row else None


def by_title(conn: sa.Connection, task: dict, user_ids: list[int]) -> dict[str, list[int]]:
    """`user_ids` by the title of `task` each reads (in their language, `engine.labels.task_title`), in the order given."""
    ids = [u for u in dict.fromkeys(user_ids) if u]
    locales = dict(conn.execute(sa.select(users.c.id, users.c.locale).where(users.c.id.in_(ids))).all()) if ids else {}
    out: dict[str, list[int]] = {}
    for uid in ids:
        out.setdefault(task_title(task, locales.get(uid)), []).append(uid)
    return out


def notify_task(conn: sa.Connection, key: str, user_ids: list[int], kind: str, words: Callable[[str], str], task: dict) -> None:
    """Notify `user_ids` of `task` once per `key`, each with `words(title)`: the task's title in their language."""
    for title, users_ in by_title(conn, task, user_ids).items():
        notifications.notify(conn, key, users_, kind, words(title), f"/tasks/{task['id']}")


def notify_holders(conn: sa.Connection, key: str, task: dict, words: Callable[[str], str] | None = None) -> None:
    """Tell whoever now holds `task` (its assignee, else its group's members) that it is theirs, once per `key`
    (`words(title)`: what they are told, the title in their language)."""
    if task["assignee_id"]:
        notify_task(conn, key, [task["assignee_id"]], "task", words or (lambda t: f"New task for you: {t}"), task)
    elif task["group_name"]:
        queue = task["group_name"].replace("_", " ")
        notify_task(conn, key, parties.group_users(conn, task["group_name"]), "group_task",
                    words or (lambda t: f"New task in the {queue} queue: {t}"), task)


def access_context(conn: sa.Connection, user_id: int, task: dict) -> tuple[set[str], int | None]:
    """What task permissions depend on: the user's groups and the active manager of the task's project (None when it has
    none, or they have been deactivated)."""
    groups = set(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user_id)).scalars())
    manager = conn.execute(sa.select(projects.c.manager_id).join(users, users.c.id == projects.c.manager_id)
                           .where(projects.c.id == task["project_id"], users.c.active)).scalar() if task["project_id"] else None
    return groups, manager


def get_task(conn: sa.Connection, task_id: int) -> dict | None:
    row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
    return dict(row) if row else None


def set_task_state(conn: sa.Connection, task_id: int, status: str, user_id: int | None, outcome: str | None = None,
                   data: dict | None = None, comment: str = "", key: str | None = None,
                   work_time: Callable[[dict, dt.datetime], float] | None = None) -> dict:
    """Record a task's new state (done, awaiting_approval, open again, skipped) and its history entry (once per `key`);
    a finished task also its working time, `work_time(task, completed_at)` (`runtime.metrics.WorkTime.of`: the reports
    pick their percentiles of it)."""
    values: dict[str, Any] = {"status": status}
    if outcome is not None:
        values["outcome"] = outcome
    if data is not None:
        values["data"] = data
    if status in ("done", "skipped", "cancelled"):
        values.update(completed_at=utcnow(), completed_by=user_id)
        before = get_task(conn, task_id) if work_time is not None else None
        if before is not None:
            values["work_seconds"] = work_time(before, values["completed_at"])
    elif status == "open":
        values["work_seconds"] = None  # reopened: its time is counted again when it is finished
    conn.execute(tasks.update().where(tasks.c.id == task_id).values(**values))
    task = get_task(conn, task_id)
    assert task is not None
    if task["entity"] and task["record_id"]:
        words = {"done": "completed", "awaiting_approval": "submitted for approval", "open": "reopened", "skipped": "skipped"}
        summary = f"Task {words.get(status, status)}: {task['title']}" + (f" ({outcome})" if outcome and outcome != "done" else "")
        add_history(conn, task["entity"], task["record_id"], "task", summary, {"task_id": task_id, "data": data, "comment": comment or None},
                    user_id, key=f"task-state:{key}" if key else None)
    return task


def reassign_task(conn: sa.Connection, task_id: int, user_id: int | None, group: str | None, by: int | None,
                  key: str | None = None) -> dict:
    """Move a task to another person or group, with its history entry (once per `key`)."""
    conn.execute(tasks.update().where(tasks.c.id == task_id).values(assignee_id=user_id, group_name=group))
    task = get_task(conn, task_id)
    assert task is not None
    if task["entity"] and task["record_id"]:
        add_history(conn, task["entity"], task["record_id"], "task", f"Task reassigned: {task['title']}",
                    {"task_id": task_id, "assignee_id": user_id, "group": group}, by, key=f"task-reassigned:{key}" if key else None)
    if key and user_id != by:
        notify_holders(conn, f"task-reassigned:{key}", task, (lambda t: f"Handed to you: {t}") if user_id else None)
    return task


def add_comment(conn: sa.Connection, task_id: int, user_id: int, text: str, key: str) -> None:
    """A comment on a task, in the record's history, and a notification to each '@username' it names (once per key)."""
    task = get_task(conn, task_id)
    if task and task["entity"] and task["record_id"]:
        add_history(conn, task["entity"], task["record_id"], "note", f"Comment on '{task['title']}': {text[:300]}",
                    {"task_id": task_id, "comment": text}, user_id, key=f"comment:{key}")
    if task:
        notifications.notify_mentions(conn, f"comment:{key}", user_id, text, f"'{task['title']}'", f"/tasks/{task_id}")


def raise_alert(conn: sa.Connection, key: str, task: dict, level: int, recipients: list[int], message: str,
                texts: dict[int, str] | None = None, emailed: bool = False) -> tuple[dict, bool]:
    """The alert for (task, level): created once, with its history entry and each recipient's notification (in
    `texts`, their own wording of `message`: times in their zone), and marked emailed with `emailed` (its emails go
    into the outbox in the same transaction: `runtime.taskmail.new_alert`); (row, created)."""
    now = utcnow()
    row, created = _insert_once(conn, alerts, key, dict(task_id=task["id"], level=level, recipients=recipients, message=message,
                                                        entity=task["entity"], record_id=task["record_id"], project_id=task["project_id"],
                                                        due_at=task["due_at"], raised_at=now, emailed_at=now if emailed else None))
    if created and task["entity"] and task["record_id"]:
        add_history(conn, task["entity"], task["record_id"], "alert", f"Alert (level {level}): {message}" if level else f"Alert: {message}",
                    {"alert_id": row["id"], "task_id": task["id"], "recipients": recipients}, None, key=f"alert:{key}")
    if created:
        by_text: dict[str, list[int]] = {}
        for uid in recipients:
            by_text.setdefault((texts or {}).get(uid) or message, []).append(uid)
        for text, users in by_text.items():
            notifications.notify(conn, f"alert:{key}", users, "alert", text, f"/tasks/{task['id']}")
    return row, created


def mark_emailed(conn: sa.Connection, alert_id: int) -> None:
    conn.execute(alerts.update().where(alerts.c.id == alert_id).values(emailed_at=utcnow()))


def acknowledge_alert(conn: sa.Connection, alert_id: int, user_id: int) -> None:
    conn.execute(alerts.update().where(alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
                 .values(acknowledged_at=utcnow(), acknowledged_by=user_id))


# -- approvals (the approval step kind: runtime/approvals.py says who decides) ---------------------------------------


def user_name(conn: sa.Connection, user_id: int | None) -> str:
    """A user's name, for history entries and notifications ('someone' for nobody)."""
    name = conn.execute(sa.select(users.c.name).where(users.c.id == user_id)).scalar() if user_id else None
    return name or "someone"


def requester(conn: sa.Connection, task: dict) -> int | None:
    """Who asks for a decision: whoever completed the work an approval task decides on (of a task awaiting its own
    approver, from a process started before approval steps: its assignee, who completed it)."""
    if task.get("kind") == "approval":
        work = get_task(conn, (task.get("subject") or {}).get("task_id") or 0)
        return (work["completed_by"] or work["assignee_id"]) if work else None
    return task["completed_by"] or task["assignee_id"]


def approval_tasks(conn: sa.Connection, workflow_id: str, step_id: str, round_: int) -> list[dict]:
    """The approval tasks of one round of an approval step, in the order they were created."""
    q = sa.select(tasks).where(tasks.c.workflow_id == workflow_id, tasks.c.step_id == step_id, tasks.c.kind == "approval",
                               tasks.c.round == round_).order_by(tasks.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def create_approval_tasks(conn: sa.Connection, key: str, values: dict, approvers: list[int], routed: str | None) -> list[dict]:
    """One approval task per approver (key `KEY:uUSER`), each with its history entry and a notification to the approver;
    nobody to ask: one task nobody holds (`KEY:nobody`), whose `routed` says why. Written once per key."""
    rows = []
    for uid in approvers or [None]:
        row_key = f"{key}:u{uid}" if uid else f"{key}:nobody"
        row, created = _insert_once(conn, tasks, row_key, {**values, "kind": "approval", "assignee_id": uid, "group_name": None,
                                                           "status": "open", "routed": routed, "created_at": utcnow()})
        rows.append(row)
        if not created:
            continue
        if row["entity"] and row["record_id"]:
            who = f" from {user_name(conn, uid)}" if uid else ""
            add_history(conn, row["entity"], row["record_id"], "task", f"Approval requested{who}: {row['title']}",
                        {"task_id": row["id"], "approval_of": (row["subject"] or {}).get("task_id"), "routed": routed}, None,
                        key=f"task-created:{row_key}")
        if uid:
            notify_task(conn, f"approval-waiting:{row_key}", [uid], "approval", lambda t: f"Waiting for your approval: {t}", row)
    return rows


def decide_approval(conn: sa.Connection, key: str, task_id: int, user_id: int, approve: bool, reason: str = "",
                    comment: str = "") -> dict:
    """An approver's decision on their approval task, with its history entry ("Approved by …", "Rejected by …: reason")."""
    outcome = "approved" if approve else "rejected"
    conn.execute(tasks.update().where(tasks.c.id == task_id, tasks.c.status == "open").values(
        status="done", outcome=outcome, reason=None if approve else reason, completed_at=utcnow(), completed_by=user_id))
    task = get_task(conn, task_id)
    assert task is not None
    if task["entity"] and task["record_id"]:
        name = user_name(conn, user_id)
        summary = (f"Approved by {name}" + (f": {comment}" if comment else "")) if approve else f"Rejected by {name}: {reason}"
        add_history(conn, task["entity"], task["record_id"], "task", summary[:500],
                    {"task_id": task_id, "approval_of": (task["subject"] or {}).get("task_id"), "decision": outcome,
                     "reason": reason or None, "comment": comment or None}, user_id, key=f"approval-decided:{key}")
    return task


def cancel_approvals(conn: sa.Connection, key: str, task_ids: list[int], decided_by: int) -> None:
    """The other approvers' tasks of a round that is decided: cancelled, each with its history entry."""
    decider = user_name(conn, decided_by)
    for task_id in task_ids:
        conn.execute(tasks.update().where(tasks.c.id == task_id, tasks.c.status == "open").values(
            status="cancelled", outcome="cancelled", completed_at=utcnow()))
        task = get_task(conn, task_id)
        if task and task["entity"] and task["record_id"]:
            add_history(conn, task["entity"], task["record_id"], "task",
                        f"Approval no longer needed from {user_name(conn, task['assignee_id'])}: {decider} decided",
                        {"task_id": task_id, "approval_of": (task["subject"] or {}).get("task_id")}, None,
                        key=f"approval-cancelled:{key}:t{task_id}")


def send_back(conn: sa.Connection, key: str, task_id: int, round_: int, reason: str, by: int) -> dict:
    """A rejected piece of work's task open again for whoever completed it, in its next round, with the approver's reason;
    its history entry ("Sent back to … for revision") and a notification to them ("Sent back by …: reason")."""
    task = get_task(conn, task_id)
    assert task is not None
    requester = task["completed_by"] or task["assignee_id"]
    conn.execute(tasks.update().where(tasks.c.id == task_id).values(
        status="open", outcome="rejected", round=round_, reason=reason, assignee_id=requester, group_name=None if requester else task["group_name"],
        completed_at=None, completed_by=None, work_seconds=None))
    task = get_task(conn, task_id)
    assert task is not None
    if task["entity"] and task["record_id"]:
        add_history(conn, task["entity"], task["record_id"], "task", f"Sent back to {user_name(conn, requester)} for revision: {task['title']}",
                    {"task_id": task_id, "round": round_, "reason": reason}, by, key=f"sent-back:{key}")
    notifications.notify(conn, f"sent-back:{key}", [requester] if requester else [], "returned",
                         f"Sent back by {user_name(conn, by)}: {reason}", f"/tasks/{task_id}")
    return task


def last_rejection(conn: sa.Connection, task: dict) -> dict | None:
    """The approval task whose rejection sent `task` back (its reason, who and when), if it was sent back."""
    if not task.get("reason") or task.get("kind") == "approval":
        return None
    q = sa.select(tasks).where(tasks.c.workflow_id == task["workflow_id"], tasks.c.kind == "approval",
                               tasks.c.outcome == "rejected").order_by(tasks.c.completed_at.desc(), tasks.c.id.desc())
    return next((dict(r) for r in conn.execute(q).mappings() if (r["subject"] or {}).get("task_id") == task["id"]), None)
