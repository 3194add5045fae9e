"""A task whose step title is a template is made in every language the packs translate into: the activity that writes
it renders the step's translated title (choices named as that language names them), and whoever it tells reads it in
their own language. On SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import datetime as dt
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from temporalio.testing import WorkflowEnvironment

from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.activities import Activities
from runtime.db import alembic_config, upgrade
from runtime.plan import apply, plan
from runtime.schema import notifications, tasks, users
from runtime.worker import make_worker
from runtime.workflows import ProcessInput, ProcessWorkflow
from tests.conftest import CRM

TEST_SERVER = str(Path(sys.executable).parent / "temporal-test-server")

CLIENT = {
    "check.yaml": """
        kind: process
        name: check_in
        entity: company
        steps:
          - {id: call, title: "Call {{ record.name }} ({{ record.status }})", assign: group:sales}
          - {id: visit, title: Visit the customer, assign: owner}
        """,
    "locales/de.yaml": """
        kind: labels
        locale: de
        processes:
          check_in:
            steps: {call: "{{ record.name }} anrufen ({{ record.status }})", visit: Den Kunden besuchen}
        """,
}


@pytest.fixture
def world(db, packs):
    compiled = compile_model(load([CRM, packs.write("client", CLIENT, extends="crm: '>=1.0'")]))
    now = dt.datetime.now(dt.UTC)
    with db.begin() as conn:
        upgrade(conn)
        apply(conn, compiled, plan(conn, compiled))
        ids = {name: conn.execute(users.insert().values(username=name, name=name.title(), roles=["staff"], locale=locale, created_at=now,
                                                        password_hash="-")
                                  .returning(users.c.id)).scalar_one() for name, locale in (("ann", None), ("uwe", "de"))}
        company = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer"}, None).id
    return Activities(db, compiled), db, ids, company


def _create(acts: Activities, company: int, step: str, title: str, who: str = "uwe") -> dict:
    return acts.create_task({"key": f"wf-1:{step}", "workflow_id": "wf-1", "process": "check_in", "step_id": step, "title": title,
                             "entity": "company", "record_id": company, "assign": {"kind": "user", "name": who}})["result"]


def test_a_templated_title_is_made_in_german_too_and_each_person_is_told_in_their_language(world):
    acts, engine, ids, company = world
    created = _create(acts, company, "call", "Call Acme Health (customer)")  # as the workflow rendered it, in English
    acts.reassign_task({"task_id": created["task_id"], "user_id": ids["ann"], "by": ids["uwe"], "key": "hand-1"})
    with engine.connect() as conn:
        row = conn.execute(sa.select(tasks.c.title, tasks.c.titles).where(tasks.c.id == created["task_id"])).one()
        told = conn.execute(sa.select(notifications.c.user_id, notifications.c.text).order_by(notifications.c.id)).all()
    assert row.title == "Call Acme Health (customer)"  # the title the API and the history keep
    assert row.titles == {"de": "Acme Health anrufen (Kunde)"}  # the German template, the choice's German label
    assert told == [(ids["uwe"], "New task for you: Acme Health anrufen (Kunde)"),  # Uwe reads German
                    (ids["ann"], "Handed to you: Call Acme Health (customer)")]  # Ann, who chose no language, as written


def test_a_plain_title_is_kept_in_its_translation_and_a_retry_writes_nothing_again(world):
    acts, engine, _, company = world
    first = _create(acts, company, "visit", "Visit the customer")
    again = _create(acts, company, "visit", "Visit the customer")
    with engine.connect() as conn:
        titles = conn.execute(sa.select(tasks.c.titles).where(tasks.c.id == first["task_id"])).scalar()
        told = conn.execute(sa.select(sa.func.count()).select_from(notifications)).scalar()
    assert first == again and titles == {"de": "Den Kunden besuchen"}
    assert told == 1  # once, not again on the retry


def test_migration_0014_adds_the_titles_and_goes_back(db):
    with db.begin() as conn:
        upgrade(conn)
        command.downgrade(alembic_config(conn), "0013")
        assert "titles" not in {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
        conn.execute(sa.text("INSERT INTO tasks (key, workflow_id, process, step_id, title, status, created_at, kind, round) "
                             "VALUES ('old', 'wf', 'p', 's', 'An old task', 'open', CURRENT_TIMESTAMP, 'task', 1)"))
        command.upgrade(alembic_config(conn), "0014")
        assert conn.execute(sa.select(tasks.c.title, tasks.c.titles)).one() == ("An old task", None)  # an old row keeps its one title


def test_a_process_makes_its_task_in_german_through_the_workflow(world):
    """The whole way: the workflow renders the English title, the activity the German one (on Temporal's test server)."""
    acts, engine, ids, company = world
    spec = acts.compiled.process_specs["check_in"]

    async def run() -> None:
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"q-{uuid.uuid4()}"
            with ThreadPoolExecutor(2) as pool:
                async with make_worker(env.client, engine, acts.compiled, queue, acts.mail, pool):
                    start = await env.get_current_time()
                    await env.client.start_workflow(
                        ProcessWorkflow.run, ProcessInput(spec=spec, entity="company", record_id=company,
                                                          record={"name": "Acme Health", "status": "customer"},
                                                          started_by=ids["uwe"], started_at=start.isoformat()),
                        id="check_in-1", task_queue=queue)
                    for _ in range(100):
                        with engine.connect() as conn:
                            if conn.execute(sa.select(tasks.c.id)).first():
                                return
                        await asyncio.sleep(0.1)

    asyncio.run(run())
    with engine.connect() as conn:
        made = conn.execute(sa.select(tasks.c.title, tasks.c.titles, tasks.c.assignee_id)).one()
        told = conn.execute(sa.select(notifications.c.user_id, notifications.c.text)).all()
    assert made.title == "Call Acme Health (customer)" and made.titles == {"de": "Acme Health anrufen (Kunde)"}
    # Uwe, who reads German, has it (the sales group has nobody), and so is told why in German too
    assert made.assignee_id == ids["uwe"] and sorted(text for _, text in told) == [
        "'Acme Health anrufen (Kunde)': The Sales group has no members, so it came to Uwe, who started the process.",
        "New task for you: Acme Health anrufen (Kunde)"]
