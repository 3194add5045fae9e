"""The CRM pack's demo past (the `past:` section of definitions/crm/demo/history.yaml): opportunities that moved
through the pipeline, support requests handled before, and finished tasks with the alerts their ladders raised, so the
reports and dashboards show something.

Written as the runtime writes them (records through the record service with their times, so the audit log holds
the stage changes; task rows with the due time the process's calendar gives), once, with the rest of the CRM pack's
demo (admin/demo.py); checked with it first, every problem at its line.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import sqlalchemy as sa

from engine.build import humanise
from engine.calendars import BusinessCalendar
from engine.compiler import CompiledModel
from engine.errors import Problem
from engine.model import Model
from engine.source import Document
from runtime import records
from runtime.schema import alerts, process_starts, tasks


class Known(Protocol):
    """What the demos loaded before made (admin.demo.Known): usernames, and records by key."""

    users: set[str]
    keys: dict[str, tuple[str, int | None, str]]

PARTS = {"opportunities": "opportunity", "support_requests": "support_request", "tasks": None}
NEEDS = {"opportunities": ("key", "company", "owner", "created"), "support_requests": ("key", "company", "created"),
         "tasks": ("process", "step", "record", "assignee", "started")}
DAYS = ("created", "started", "took", "late_by", "expected_close")  # whole numbers of days (hours for took and late_by)


def check_past(doc: Document, pointer: str, data: Any, model: Model, known: Known) -> list[Problem]:
    """Every problem of a `past:` section: what each entry needs, the users, keys, processes and steps it names; its
    records' keys become known."""
    problems: list[Problem] = []

    def at(p: str, code: str, message: str) -> None:
        problems.append(Problem(doc.loc(p), code, message, p))

    if not isinstance(data, dict):
        at(pointer, "demo.shape", f"past is a mapping of {', '.join(PARTS)}")
        return problems
    for part, rows in data.items():
        if part not in PARTS:
            at(f"{pointer}/{part}", "demo.section", f"unknown part '{part}' of the past (expected {', '.join(PARTS)})")
            continue
        if rows is not None and not isinstance(rows, list):
            at(f"{pointer}/{part}", "demo.shape", f"{part}: expected a list")
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            p = f"{pointer}/{part}/{i}"
            if not isinstance(row, dict):
                at(p, "demo.shape", f"each of {part} is a mapping")
                continue
            missing = [k for k in NEEDS[part] if row.get(k) is None]
            for k in missing:
                at(p, "demo.missing", f"'{k}' is missing")
            if missing:
                continue
            for name in DAYS:
                if name in row and (not isinstance(row[name], int) or isinstance(row[name], bool) or row[name] < 0):
                    at(f"{p}/{name}", "demo.days", f"{name} is a whole number from 0")
            for name in ("owner", "assignee"):
                if name in row and not (isinstance(row[name], str) and row[name] in known.users):
                    at(f"{p}/{name}", "demo.user", f"no user '{row[name]}' (users come from this or an earlier pack's demo)")
            ref = "company" if part != "tasks" else "record"
            key = str(row[ref]).split("/")[-1]
            if key not in known.keys:
                at(f"{p}/{ref}", "demo.key", f"no record with key '{key}' made before this")
            moves = row.get("moves") or []
            if not isinstance(moves, list) or not all(isinstance(m, list) and len(m) == 2 and isinstance(m[1], int) for m in moves):
                at(f"{p}/moves", "demo.shape", "moves is a list of [stage, days ago]")
            alerts = row.get("alerts") or []
            if not isinstance(alerts, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in alerts):
                at(f"{p}/alerts", "demo.shape", "alerts is a list of escalation levels (1, 2, …)")
            if part == "tasks":
                process = model.processes.get(row["process"]) if isinstance(row["process"], str) else None
                if process is None:
                    at(f"{p}/process", "demo.process", f"no process '{row['process']}'")
                elif row["step"] not in {s.id for s in process.steps}:
                    at(f"{p}/step", "demo.step", f"process {process.name} has no step '{row['step']}'")
            else:
                known.keys.setdefault(str(row["key"]), (PARTS[part], None, "crm"))
    return problems


def load_past(conn: sa.Connection, compiled: CompiledModel, data: dict, users: dict[str, int], keys: dict[str, tuple[str, int]],
              now: dt.datetime) -> None:
    """Write the demo's past; `users` and `keys` are the users and records by their names in the demo (the past's own
    records are added to `keys`)."""
    admin = users.get("admin")
    morning = now.replace(hour=10, minute=0, second=0, microsecond=0)

    def ago(days: int) -> dt.datetime:
        return morning - dt.timedelta(days=days)

    for row in data.get("opportunities") or []:
        values: dict[str, Any] = {k: v for k, v in row.items() if k not in ("key", "created", "moves", "company", "owner", "expected_close")}
        values.update(company=keys[row["company"]][1], owner=users[row["owner"]])
        if "expected_close" in row:
            values["expected_close"] = (now + dt.timedelta(days=row["expected_close"])).date().isoformat()
        rec = records.create_record(conn, compiled, "opportunity", values, users[row["owner"]], at=ago(row["created"]))
        for stage, days in row.get("moves", []):
            records.update_record(conn, compiled, "opportunity", rec.id, {"stage": stage}, users[row["owner"]], at=ago(days))
        keys[row["key"]] = ("opportunity", rec.id)
    for row in data.get("support_requests") or []:
        values = {k: v for k, v in row.items() if k not in ("key", "created", "company")}
        rec = records.create_record(conn, compiled, "support_request", {**values, "company": keys[row["company"]][1]}, admin,
                                    at=ago(row["created"]))
        # their support processes ran before the demo began (their finished tasks below): nothing to start now
        conn.execute(process_starts.delete().where(process_starts.c.workflow_id.in_(rec.starts)))
        keys[row["key"]] = ("support_request", rec.id)
    for n, row in enumerate(data.get("tasks") or []):
        _task(conn, compiled, n, row, users, keys, ago(row["started"]))


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
