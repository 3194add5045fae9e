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
from .schema import alerts, assignment_cursor, group_members, process_instances, projects, tasks


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


def pick_assignee(conn: sa.Connection, party: dict | None, strategy: str, ctx: dict[str, Any],
                  keep: Callable[[list[int]], list[int]] | None = None) -> tuple[int | None, str | None]:
    """(user id, group name) for a task: groups by round robin or least busy, others as named.

    `keep` narrows the people a party names to those who may hold the task (`runtime.holders.eligible`)."""
    if not party:
        return ctx.get("started_by"), None
    if party["kind"] in ("group", "role"):
        candidates = parties.resolve(conn, party, ctx)
        candidates = keep(candidates) if keep else candidates
        group = party["name"] if party["kind"] == "group" else None
        if not candidates:
            return None, group  # nobody yet: the task waits in the group's queue
        if strategy == "least_busy":
            load = parties.open_load(conn, candidates)
            return min(candidates, key=lambda u: (load[u], u)), group
        cursor_key = f"{party['kind']}:{party['name']}"
        last = conn.execute(sa.select(assignment_cursor.c.last_user_id).where(assignment_cursor.c.group_name == cursor_key)).scalar()
        nxt = next((u for u in candidates if last is None or u > last), candidates[0])
        if last is None and not conn.execute(sa.select(assignment_cursor.c.group_name).where(assignment_cursor.c.group_name == cursor_key)).first():
            conn.execute(assignment_cursor.insert().values(group_name=cursor_key, last_user_id=nxt))
        else:
            conn.execute(assignment_cursor.update().where(assignment_cursor.c.group_name == cursor_key).values(last_user_id=nxt))
        return nxt, group
    users = parties.resolve(conn, party, ctx)
    users = keep(users) if keep else users
    return (users[0] if users else None), None


def create_task(conn: sa.Connection, key: str, values: dict, assign: dict | None, strategy: str, ctx: dict[str, Any]) -> dict:
    """The task row for `key`, created (and assigned) the first time only."""
    existing = conn.execute(sa.select(tasks).where(tasks.c.key == key)).mappings().first()
    if existing:
        return dict(existing)
    assignee, group = pick_assignee(conn, assign, strategy, ctx)
    row, created = _insert_once(conn, tasks, key, {**values, "assignee_id": assignee, "group_name": group, "status": "open",
                                                    "created_at": utcnow()})
    if created and row["entity"] and row["record_id"]:
        add_history(conn, row["entity"], row["record_id"], "task", f"Task created: {row['title']}",
                    {"task_id": row["id"], "due_at": row["due_at"].isoformat() if row["due_at"] else None}, None, key=f"task-created:{key}")
    if created:
        notify_holders(conn, f"task-created:{key}", row)
    return row


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
    """What task permissions depend on: the user's groups and the manager of the task's project."""
    groups = set(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user_id)).scalars())
    manager = conn.execute(sa.select(projects.c.manager_id).where(projects.c.id == task["project_id"])).scalar() if task["project_id"] else None
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
    """A comment on a task, in the record's history, and a notification to each '@username' it names (once per key)."""
    task = get_task(conn, task_id)
    if task and task["entity"] and task["record_id"]:
        add_history(conn, task["entity"], task["record_id"], "note", f"Comment on '{task['title']}': {text[:300]}",
                    {"task_id": task_id, "comment": text}, user_id, key=f"comment:{key}")
    if task:
        notifications.notify_mentions(conn, f"comment:{key}", user_id, text, f"'{task['title']}'", f"/tasks/{task_id}")


def raise_alert(conn: sa.Connection, key: str, task: dict, level: int, recipients: list[int], message: str) -> tuple[dict, bool]:
    """The alert for (task, level): created once, with its history entry; (row, created)."""
    row, created = _insert_once(conn, alerts, key, dict(task_id=task["id"], level=level, recipients=recipients, message=message,
                                                        entity=task["entity"], record_id=task["record_id"], project_id=task["project_id"],
                                                        due_at=task["due_at"], raised_at=utcnow()))
    if created and task["entity"] and task["record_id"]:
        add_history(conn, task["entity"], task["record_id"], "alert", f"Alert (level {level}): {message}",
                    {"alert_id": row["id"], "task_id": task["id"], "recipients": recipients}, None, key=f"alert:{key}")
    if created:
        notifications.notify(conn, f"alert:{key}", recipients, "alert", message, f"/tasks/{task['id']}")
    return row, created


def mark_emailed(conn: sa.Connection, alert_id: int) -> None:
    conn.execute(alerts.update().where(alerts.c.id == alert_id).values(emailed_at=utcnow()))


def acknowledge_alert(conn: sa.Connection, alert_id: int, user_id: int) -> None:
    conn.execute(alerts.update().where(alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
                 .values(acknowledged_at=utcnow(), acknowledged_by=user_id))
