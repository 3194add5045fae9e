"""A task whose step title is a template is made in the definitions' own language and in every language the packs
translate into: the activity that writes it renders the step's title again with display values (a choice's label, a
date in words), and whoever it tells reads it in their own language. A plain title stays as written; a template that
fails keeps the workflow's title, and the log says why. On SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import datetime as dt
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from temporalio.testing import WorkflowEnvironment

from engine import labels
from engine.compiler import compile_model
from engine.loader import load
from forms.widgets import when_text
from runtime import records, tasktitles
from runtime.activities import Activities
from runtime.db import alembic_config, upgrade
from runtime.plan import apply, plan
from runtime.schema import alerts, notifications, tasks, users
from runtime.worker import make_worker
from runtime.workflows import ProcessWorkflow, process_input
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
          - {id: quote, title: "Quote {{ record.name }} for {{ record.employees + 1 }} seats", assign: owner}
          - id: brief
            title: Brief the team
            description: "{{ record.name }} is a {{ record.status }} of {{ record.employees }} staff"
            assign: owner
          - {id: thank, title: "Thank {{ steps.visit.completed_by }} for the visit on {{ steps.visit.completed_at }}", assign: owner}
        """,
    "chase.yaml": """
        kind: process
        name: chase
        entity: opportunity
        steps:
          - {id: call, title: "Call {{ record.name }} ({{ record.source }}), closing {{ record.expected_close }}", assign: owner}
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
        company = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer", "employees": 120},
                                        None).id
    return Activities(db, compiled), db, ids, company


def _create(acts: Activities, company: int, step: str, title: str, who: str = "uwe", process: str = "check_in",
            entity: str = "company") -> dict:
    return acts.create_task({"key": f"wf-1:{step}", "workflow_id": "wf-1", "process": process, "step_id": step, "title": title,
                             "entity": entity, "record_id": company, "assign": {"kind": "user", "name": who}})["result"]


def test_a_templated_title_is_made_in_german_too_and_each_person_is_told_in_their_language(world):
    acts, engine, ids, company = world
    created = _create(acts, company, "call", "Call Acme Health (customer)")  # as the workflow rendered it, in English
    acts.reassign_task({"task_id": created["task_id"], "user_id": ids["ann"], "by": ids["uwe"], "key": "hand-1"})
    with engine.connect() as conn:
        row = conn.execute(sa.select(tasks.c.title, tasks.c.titles).where(tasks.c.id == created["task_id"])).one()
        told = conn.execute(sa.select(notifications.c.user_id, notifications.c.text).order_by(notifications.c.id)).all()
    assert row.title == "Call Acme Health (Customer)"  # in the definitions' language, the choice's label: what the API gives
    assert row.titles == {"de": "Acme Health anrufen (Kunde)"}  # the German template, the choice's German label
    assert told == [(ids["uwe"], "New task for you: Acme Health anrufen (Kunde)"),  # Uwe reads German
                    (ids["ann"], "Handed to you: Call Acme Health (Customer)")]  # Ann, who chose no language, in English


def test_a_plain_title_is_kept_in_its_translation_and_a_retry_writes_nothing_again(world):
    acts, engine, _, company = world
    first = _create(acts, company, "visit", "Visit the customer")
    again = _create(acts, company, "visit", "Visit the customer")
    with engine.connect() as conn:
        titles = tuple(conn.execute(sa.select(tasks.c.title, tasks.c.titles).where(tasks.c.id == first["task_id"])).one())
        told = conn.execute(sa.select(sa.func.count()).select_from(notifications)).scalar()
    assert first == again and titles == ("Visit the customer", {"de": "Den Kunden besuchen"})
    assert told == 1  # once, not again on the retry


def test_an_english_reader_sees_a_choices_label_and_a_date_in_words_not_raw_values(world):
    acts, engine, _, company = world
    deal = _opportunity(acts, engine, company)
    created = _create(acts, deal, "call", "Call Big deal (existing_customer), closing 2027-01-15", who="ann", process="chase",
                      entity="opportunity")  # as the workflow rendered it, with raw values
    with engine.connect() as conn:
        row = conn.execute(sa.select(tasks).where(tasks.c.id == created["task_id"])).mappings().one()
        told = conn.execute(sa.select(notifications.c.text)).scalars().all()
    english = "Call Big deal (Existing customer), closing Fri 15 Jan 2027"
    assert labels.task_title(row, "en", acts.compiled.model) == english and row["title"] == english
    assert told == [f"New task for you: {english}"]  # what Ann is told, and every page or email that shows the title
    assert row["titles"] == {"de": "Call Big deal (Bestandskunde), closing Fri 15 Jan 2027"}  # no German template: the English one


def test_a_template_that_fails_with_display_values_keeps_the_workflows_title_and_says_why(world, caplog):
    acts, engine, _, company = world
    created = _create(acts, company, "quote", "Quote Acme Health for 121 seats")  # the workflow added to the raw 120
    with engine.connect() as conn:
        row = conn.execute(sa.select(tasks.c.title, tasks.c.titles).where(tasks.c.id == created["task_id"])).one()
    assert tuple(row) == ("Quote Acme Health for 121 seats", {"de": "Quote Acme Health for 121 seats"})
    assert [r.getMessage().split(" (")[0] for r in caplog.records if r.name == "runtime.tasktitles"] == [
        "the en title of step check_in.quote did not render", "the de title of step check_in.quote did not render"]


def test_without_any_translation_the_title_still_reads_with_labels(db, packs):
    compiled = compile_model(load([packs.write("plain", {
        "company.yaml": """
            kind: entity
            name: company
            fields:
              name: {type: string, required: true}
              industry: {type: choice, choices: [{value: health, label: Healthcare}, retail]}
            """,
        "call.yaml": """
            kind: process
            name: call
            entity: company
            steps:
              - {id: call, title: "Call {{ record.name }} about {{ record.industry }}"}
            """,
        "roles.yaml": "kind: role\nname: staff\npermissions: [access]\n"})]))
    assert not compiled.model.translations
    with db.begin() as conn:
        upgrade(conn)
        apply(conn, compiled, plan(conn, compiled))
        company = records.create_record(conn, compiled, "company", {"name": "Acme", "industry": "health"}, None).id
        made = tasktitles.render(conn, compiled, {"process": "call", "step_id": "call", "title": "Call Acme about health",
                                                  "workflow_id": "wf-1", "entity": "company", "record_id": company})
    assert made == {"title": "Call Acme about Healthcare", "titles": None, "description": None}


def test_a_description_shows_a_choices_label_not_its_value(world):
    acts, engine, _, company = world
    created = acts.create_task({"key": "wf-1:brief", "workflow_id": "wf-1", "process": "check_in", "step_id": "brief",
                                "title": "Brief the team", "description": "Acme Health is a customer of 120 staff",  # the workflow's
                                "entity": "company", "record_id": company, "assign": {"kind": "user", "name": "ann"}})["result"]
    with engine.connect() as conn:
        description = conn.execute(sa.select(tasks.c.description).where(tasks.c.id == created["task_id"])).scalar()
    assert description == "Acme Health is a Customer of 120 staff"  # what the task page shows under its title


def test_a_title_names_who_completed_an_earlier_step_and_when_in_local_time(world):
    acts, engine, ids, company = world
    visit = _create(acts, company, "visit", "Visit the customer")
    acts.set_task_state({"task_id": visit["task_id"], "status": "done", "user_id": ids["ann"], "outcome": "done", "data": {},
                         "key": "visit-done"})
    created = _create(acts, company, "thank", f"Thank {ids['ann']} for the visit on 2026-12-02T13:00:00+00:00")  # raw, as rendered
    with engine.connect() as conn:
        done = conn.execute(sa.select(tasks.c.completed_at).where(tasks.c.id == visit["task_id"])).scalar()
        row = conn.execute(sa.select(tasks.c.title, tasks.c.titles).where(tasks.c.id == created["task_id"])).one()
    thanks = f"Thank Ann for the visit on {when_text(done, ZoneInfo('Europe/London'))}"  # the organisation's zone
    assert row.title == thanks and row.titles == {"de": thanks}  # not the user's id and a UTC ISO string


def test_an_alert_without_a_message_names_the_task_as_each_reader_reads_it(world):
    acts, engine, ids, company = world
    created = _create(acts, company, "call", "Call Acme Health (customer)")  # the workflow's title: the raw choice value
    acts.raise_alert({"key": "wf-1:call:L1", "task_id": created["task_id"], "level": 1, "entity": "company", "record_id": company,
                      "alert": [{"kind": "user", "name": "ann"}, {"kind": "user", "name": "uwe"}],
                      "message": "'Call Acme Health (customer)' is overdue (escalation level 1)", "template": None,
                      "context": {"record": {"name": "Acme Health", "status": "customer"}, "steps": {}},
                      "steps": ["call", "visit"], "now": dt.datetime.now(dt.UTC).isoformat()})
    with engine.connect() as conn:
        message = conn.execute(sa.select(alerts.c.message)).scalar()
        told = dict(conn.execute(sa.select(notifications.c.user_id, notifications.c.text).where(notifications.c.kind == "alert")).all())
    assert message == "'Call Acme Health (Customer)' is overdue (escalation level 1)"
    assert told == {ids["ann"]: "'Call Acme Health (Customer)' is overdue (escalation level 1)",
                    ids["uwe"]: "„Acme Health anrufen (Kunde)“ ist überfällig (Eskalationsstufe 1)"}  # Uwe reads German, words too


def test_an_alerts_message_names_who_did_a_step_and_when_in_each_readers_zone(world):
    acts, engine, ids, company = world
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == ids["uwe"]).values(time_zone="Asia/Tokyo"))
    created = _create(acts, company, "call", "Call Acme Health (customer)")
    at = "2026-12-02T13:05:00+00:00"  # as the workflow keeps it
    acts.raise_alert({"key": "wf-1:call:L1", "task_id": created["task_id"], "level": 1, "entity": "company", "record_id": company,
                      "alert": [{"kind": "user", "name": "ann"}, {"kind": "user", "name": "uwe"}],
                      "message": f"Visited by {ids['ann']} at {at}", "template": "Visited by {{ steps.visit.completed_by }} at "
                      "{{ steps.visit.completed_at }} (user {{ steps.visit.raw.completed_by }})",
                      "context": {"record": {"name": "Acme Health", "status": "customer"},
                                  "steps": {"visit": {"outcome": "done", "data": {}, "completed_by": ids["ann"], "completed_at": at}}},
                      "steps": ["call", "visit"], "now": dt.datetime.now(dt.UTC).isoformat()})
    with engine.connect() as conn:
        message = conn.execute(sa.select(alerts.c.message)).scalar()
        told = dict(conn.execute(sa.select(notifications.c.user_id, notifications.c.text).where(notifications.c.kind == "alert")).all())
    said = lambda zone: f"Visited by Ann at {when_text(at, ZoneInfo(zone))} (user {ids['ann']})"
    assert message == said("Europe/London") and told == {ids["ann"]: said("Europe/London"), ids["uwe"]: said("Asia/Tokyo")}


def _opportunity(acts: Activities, engine: sa.Engine, company: int) -> int:
    with engine.begin() as conn:
        return records.create_record(conn, acts.compiled, "opportunity", {
            "name": "Big deal", "company": company, "source": "existing_customer", "expected_close": "2027-01-15"}, None).id


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
                        ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=company,
                                                          record={"name": "Acme Health", "status": "customer"},
                                                          started_by=ids["uwe"], started_at=start.isoformat()),
                        id="check_in-1", task_queue=queue)
                    for _ in range(600):  # up to a minute: a busy CI machine starts the test server slowly
                        with engine.connect() as conn:
                            if conn.execute(sa.select(tasks.c.id)).first():
                                return
                        await asyncio.sleep(0.1)
                    raise AssertionError("no task row within a minute of the start")

    asyncio.run(run())
    with engine.connect() as conn:
        made = conn.execute(sa.select(tasks.c.title, tasks.c.titles, tasks.c.assignee_id)).one()
        told = conn.execute(sa.select(notifications.c.user_id, notifications.c.text)).all()
    assert made.title == "Call Acme Health (Customer)" and made.titles == {"de": "Acme Health anrufen (Kunde)"}
    # Uwe, who reads German, has it (the sales group has nobody), and so is told why in German too
    assert made.assignee_id == ids["uwe"] and sorted(text for _, text in told) == [
        "'Acme Health anrufen (Kunde)': The Sales group has no members, so it came to Uwe, who started the process.",
        "New task for you: Acme Health anrufen (Kunde)"]


def test_a_title_reads_the_process_inputs_and_an_owner_step_goes_to_the_records_owner(world):
    acts, engine, ids, _ = world
    with engine.begin() as conn:
        birch = records.create_record(conn, acts.compiled, "company", {"name": "Birch Ltd", "owner": ids["ann"]}, None).id
    now = dt.datetime.now(dt.UTC).isoformat()
    created = acts.create_task({"key": "wf-9:call_back", "workflow_id": "wf-9", "process": "callback", "step_id": "call_back",
                                "title": "Call back Birch Ltd: pricing", "entity": "company", "record_id": birch,
                                "assign": {"kind": "owner"},
                                "instance": {"workflow_id": "wf-9", "process": "callback", "version": "1", "entity": "company",
                                             "record_id": birch, "inputs": {"topic": "Preise"}, "started_by": None,
                                             "started_at": now}})["result"]
    with engine.connect() as conn:
        row = conn.execute(sa.select(tasks.c.title, tasks.c.titles, tasks.c.assignee_id).where(tasks.c.id == created["task_id"])).one()
    assert row.title == "Call back Birch Ltd: Preise"  # the inputs as the instance row has them, read in the write
    assert row.titles == {"de": "Birch Ltd zurückrufen: Preise"}
    assert row.assignee_id == ids["ann"]  # the owner, read because the step names the owner
