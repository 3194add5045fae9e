"""The demo's past (definitions/demo/history.yaml): opportunities that moved through the pipeline, finished tasks with
the alerts their ladders raised, and contacts with customers, so the reports and dashboards show something.

Written as the runtime writes them (records through the record service with their times, so the audit log holds
the stage changes; task rows with the due time the process's calendar gives), once, with the rest of the demo data.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from engine.build import humanise
from engine.calendars import BusinessCalendar
from engine.compiler import CompiledModel
from runtime import records
from runtime.history import add_history
from runtime.schema import alerts, process_starts, tasks

HISTORY = Path(__file__).resolve().parent.parent / "definitions" / "demo" / "history.yaml"


def load_history(conn: sa.Connection, compiled: CompiledModel, users: dict[str, int], keys: dict[str, tuple[str, int]],
                 now: dt.datetime, path: Path = HISTORY) -> None:
    """Write the demo's past; `users` and `keys` are the demo's users and records by their names in the YAML."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    admin = users["admin"]
    morning = now.replace(hour=10, minute=0, second=0, microsecond=0)

    def ago(days: int) -> dt.datetime:
        return morning - dt.timedelta(days=days)

    for row in data.get("opportunities", []):
        values: dict[str, Any] = {k: v for k, v in row.items() if k not in ("key", "created", "moves", "company", "owner", "expected_close")}
        values.update(company=keys[row["company"]][1], owner=users[row["owner"]])
        if "expected_close" in row:
            values["expected_close"] = (now + dt.timedelta(days=row["expected_close"])).date().isoformat()
        rec = records.create_record(conn, compiled, "opportunity", values, users[row["owner"]], at=ago(row["created"]))
        for stage, days in row.get("moves", []):
            records.update_record(conn, compiled, "opportunity", rec.id, {"stage": stage}, users[row["owner"]], at=ago(days))
        keys[row["key"]] = ("opportunity", rec.id)
    for row in data.get("support_requests", []):
        values = {k: v for k, v in row.items() if k not in ("key", "created", "company")}
        rec = records.create_record(conn, compiled, "support_request", {**values, "company": keys[row["company"]][1]}, admin,
                                    at=ago(row["created"]))
        # their support processes ran before the demo began (their finished tasks below): nothing to start now
        conn.execute(process_starts.delete().where(process_starts.c.workflow_id.in_(rec.starts)))
        keys[row["key"]] = ("support_request", rec.id)
    for n, row in enumerate(data.get("tasks", [])):
        _task(conn, compiled, n, row, users, keys, ago(row["started"]))
    for row in data.get("contacts", []):
        entity, key = row["record"].split("/")
        form = row.get("form")
        add_history(conn, entity, keys[key][1], "submission" if form else "note", row["summary"], {"form": form} if form else {},
                    users[row["by"]], form=form, at=ago(row["days"]))


def _task(conn: sa.Connection, compiled: CompiledModel, n: int, row: dict, users: dict[str, int], keys: dict[str, tuple[str, int]],
          started: dt.datetime) -> None:
    spec = compiled.process_specs[row["process"]]
    step = next(s for s in spec["steps"] if s.get("id") == row["step"])
    entity, key = row["record"].split("/")
    record_id = keys[key][1]
    title = records.get_record(conn, compiled, entity, record_id).title
    due = BusinessCalendar(spec["calendar"]).add(started, step["due"]["duration"]) if step.get("due") else None
    if "late_by" in row and due is not None:
        done = due + dt.timedelta(hours=row["late_by"])
    else:
        hours = dt.timedelta(hours=row.get("took", row.get("late_by", 1)))
        done = min(started + hours, due) if due else started + hours
    assignee = users[row["assignee"]]
    task_id = conn.execute(tasks.insert().values(
        key=f"demo-history:{n}", workflow_id=f"demo-history/{row['process']}/{key}", process=row["process"], step_id=row["step"],
        title=f"{humanise(row['step'])}: {title}", entity=entity, record_id=record_id, assignee_id=assignee, group_name=row.get("group"),
        status="done", outcome="done", due_at=due, created_at=started, completed_at=done, completed_by=assignee)
        .returning(tasks.c.id)).scalar_one()
    ladder = step["escalate"] if due is not None else []
    for level in (n for n in row.get("alerts", []) if n <= len(ladder)):  # a client pack's overlay may change the ladder
        escalation = ladder[level - 1]
        raised = BusinessCalendar(spec["calendar"]).add(due, escalation["after_due"]) if escalation.get("after_due") else due
        conn.execute(alerts.insert().values(
            key=f"demo-history:{n}:{level}", task_id=task_id, level=level, recipients=[], entity=entity, record_id=record_id,
            message=f"{humanise(row['step'])} of {title} is late (level {level}).", due_at=due, raised_at=raised,
            acknowledged_at=raised + dt.timedelta(hours=1)))
