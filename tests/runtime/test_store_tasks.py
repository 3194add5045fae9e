"""Keyed process writes on SQLite and PostgreSQL: a write run again (a local activity replayed after a
worker crash) finds the first write's row and history entry instead of adding its own."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from runtime import records, tasks as task_service
from runtime.routing import Route
from runtime.schema import alerts, contact_history, process_instances, tasks

from .conftest import Store

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_instance_task_and_alert_are_written_once_per_key(store: Store):
    with store.begin() as conn:
        company = records.create_record(conn, store.compiled, "company", {"name": "Acme"}, store.alice)
        history_before = _count(conn, contact_history)
        values = {"workflow_id": "p/1", "process": "p", "step_id": "call", "title": "Call Acme", "entity": "company",
                  "record_id": company.id, "due_at": T0}
        for attempt in range(2):  # the second time round is the replay
            task_service.register_instance(conn, "p/1", "p", "v1", "company", company.id, {"n": attempt}, store.alice, T0)
            task = task_service.create_task(conn, "p/1:call", {**values, "title": f"Call Acme ({attempt})"}, lambda: Route(store.alice, None))
            alert, created = task_service.raise_alert(conn, "p/1:call:L1", task, 1, [store.bob], f"late ({attempt})")
            assert created == (attempt == 0)
        instance = conn.execute(sa.select(process_instances)).mappings().one()
        summaries = list(conn.execute(sa.select(contact_history.c.summary).order_by(contact_history.c.id)).scalars())
        counts = [_count(conn, t) for t in (process_instances, tasks, alerts)]
    assert counts == [1, 1, 1]
    assert (instance["inputs"], task["title"], alert["message"], alert["recipients"]) == ({"n": 0}, "Call Acme (0)", "late (0)", [store.bob])
    assert summaries[history_before:] == ["Task created: Call Acme (0)", "Alert (level 1): late (0)"]


def test_a_state_change_repeated_with_its_key_adds_one_history_entry(store: Store):
    with store.begin() as conn:
        company = records.create_record(conn, store.compiled, "company", {"name": "Acme"}, store.alice)
        task = task_service.create_task(conn, "p/2:call", {"workflow_id": "p/2", "process": "p", "step_id": "call", "title": "Call",
                                                           "entity": "company", "record_id": company.id}, lambda: Route(None, "sales"))
        for _ in range(2):
            task_service.set_task_state(conn, task["id"], "done", store.bob, "done", {"x": 1}, key="p/2:update-1")
        task_service.set_task_state(conn, task["id"], "open", store.bob, "rejected", key="p/2:update-2")
        summaries = [s for s in conn.execute(sa.select(contact_history.c.summary)).scalars() if s.startswith("Task ")]
    assert summaries == ["Task created: Call", "Task completed: Call", "Task reopened: Call (rejected)"]
