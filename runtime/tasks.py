"""Tasks, alerts, projects and process instances: the service the activities and the web share.

Every write is idempotent on a key (workflow id + step, + escalation level), so an
activity retried after a crash finds the row it already wrote instead of adding one.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import sqlalchemy as sa

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
            raise_alert(conn, routed_key(key), row, 0, list(where.tell), f"'{row['title']}': {where.routed}")
    return row


def routed_key(task_key: str) -> str:
    """The key of the alert that says why a task went to a fallback holder."""
    return f"{task_key}:routed"


def alert_by_key(conn: sa.Connection, key: str) -> dict | None:
    row = conn.execute(sa.select(alerts).where(alerts.c.key == key)).mappings().first()
    return dict(row) if row else None


def notify_holders(conn: sa.Connection, key: str, task: dict, text: str | None = None) -> None:
    """Tell whoever now holds `task` (its assignee, else its group's members) that it is theirs, once per `key`."""
    link = f"/tasks/{task['id']}"
    if task["assignee_id"]:
        notifications.notify(conn, key, [task["assignee_id"]], "task", text or f"New task for you: {task['title']}", link)
    elif task["group_name"]:
        queue = task["group_name"].replace("_", " ")
        notifications.notify(conn, key, parties.group_users(conn, task["group_name"]), "group_task",
                             text or f"New task in the {queue} queue: {task['title']}", link)


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
                   data: dict | None = None, comment: str = "", key: str | None = None) -> dict:
    """Record a task's new state (done, awaiting_approval, open again, skipped) and its history entry (once per `key`)."""
    values: dict[str, Any] = {"status": status}
    if outcome is not None:
        values["outcome"] = outcome
    if data is not None:
        values["data"] = data
    if status in ("done", "skipped", "cancelled"):
        values.update(completed_at=utcnow(), completed_by=user_id)
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
        notify_holders(conn, f"task-reassigned:{key}", task, f"Handed to you: {task['title']}" if user_id else None)
    return task


def add_comment(conn: sa.Connection, task_id: int, user_id: int, text: str, key: str) -> None:
    """A comment on a task, in the record's history (once per key)."""
    task = get_task(conn, task_id)
    if task and task["entity"] and task["record_id"]:
        add_history(conn, task["entity"], task["record_id"], "note", f"Comment on '{task['title']}': {text[:300]}",
                    {"task_id": task_id, "comment": text}, user_id, key=f"comment:{key}")


def raise_alert(conn: sa.Connection, key: str, task: dict, level: int, recipients: list[int], message: str,
                texts: dict[int, str] | None = None) -> tuple[dict, bool]:
    """The alert for (task, level): created once, with its history entry and each recipient's notification (in
    `texts`, their own wording of `message`: times in their zone); (row, created)."""
    row, created = _insert_once(conn, alerts, key, dict(task_id=task["id"], level=level, recipients=recipients, message=message,
                                                        entity=task["entity"], record_id=task["record_id"], project_id=task["project_id"],
                                                        due_at=task["due_at"], raised_at=utcnow()))
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
