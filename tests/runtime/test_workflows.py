"""Processes on Temporal's time-skipping test server, with a real database and a real SMTP server."""
from __future__ import annotations

import asyncio
import datetime as dt
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from engine.calendars import BusinessCalendar
from engine.compiler import compile_model
from engine.loader import load
from runtime.activities import Activities
from runtime.mail import MailSettings
from runtime.schema import alerts, contact_history, group_members, metadata as platform, process_instances, projects, tasks, users
from runtime.worker import make_worker
from runtime.workflows import ProcessInput, ProcessWorkflow, TaskAction, process_input
from tests.runtime.conftest import Inbox, sending  # noqa: F401 - test_mail imports Inbox from here

TEST_SERVER = str(Path(sys.executable).parent / "temporal-test-server")

PACK = {
    "company.yaml": """
        kind: entity
        name: company
        title: "{{ record.name }}"
        fields:
          name: {type: string, required: true}
          owner: user
        """,
    "people.yaml": """
        kind: role
        name: staff
        permissions: [access, manage_own_tasks]
        ---
        kind: role
        name: director
        permissions: [access, approve_tasks]
        ---
        kind: role
        name: approver
        permissions: [access, manage_own_tasks, approve_tasks]
        ---
        kind: group
        name: sales
        ---
        kind: group
        name: leads
        ---
        kind: calendar
        name: office
        timezone: Europe/London
        working_hours: {mon-fri: "09:00-17:30"}
        holidays: {country: GB, subdivision: ENG}
        """,
    "forms.yaml": """
        kind: form
        name: call_result
        fields:
          outcome: {type: choice, choices: [interested, not_interested], required: true}
          notes: text
        """,
    "process.yaml": """
        kind: process
        name: follow_up
        entity: company
        calendar: office
        steps:
          - id: call
            title: "Call {{ record.name }}"
            assign: group:sales
            form: call_result
            due: 2 hours
            escalate:
              - {at: due, alert: manager, message: "{{ task.title }} is late" }
              - {at: due + 1 hour, alert: role:director, reassign: group:leads}
          - id: offer
            title: "Send offer ({{ steps.call.data.outcome }})"
            when: "steps.call.data.outcome == 'interested'"
            assign: owner
            approval: {by: role:approver}
          - id: thanks
            title: Say thanks
            assign: completer:call
            due: 1 business day
        """,
}


@pytest.fixture
def world(packs, tmp_path, smtp):
    return _world(packs, tmp_path, smtp, PACK)


def _world(packs, tmp_path, smtp, pack):
    compiled = compile_model(load([packs.write("t", pack)]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'tailor.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        # staff who may hold tasks (they can log in and work on tasks: runtime/holders.py); mia may approve; dave only approves
        # (he cannot hold a task, an approval's included)
        for name, roles in [("ann", ["staff"]), ("bob", ["staff"]), ("mia", ["staff", "approver"]), ("dave", ["director"]), ("lee", ["staff"])]:
            conn.execute(users.insert().values(username=name, name=name.title(), email=f"{name}@example.com", roles=roles,
                                               password_hash="argon2-hash", created_at=now))
        ids = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
        conn.execute(group_members.insert(), [{"group_name": g, "user_id": ids[u], "manager": m} for g, u, m in
                                              [("sales", "ann", False), ("sales", "bob", False), ("sales", "mia", True), ("leads", "lee", False)]])
        company = compiled.metadata.tables["company"]
        record_id = conn.execute(company.insert().values(title="Acme", data={"name": "Acme", "owner": ids["bob"]}, record_fields={},
                                                         created_at=now, updated_at=now)).inserted_primary_key[0]
    inbox, port = smtp
    acts = Activities(engine, compiled, MailSettings(port=port))
    return {"compiled": compiled, "engine": engine, "ids": ids, "record_id": record_id, "acts": acts, "inbox": inbox}


async def _with_worker(world, body):
    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
        queue = f"q-{uuid.uuid4()}"
        with ThreadPoolExecutor(4) as pool:
            acts = world["acts"]
            async with make_worker(env.client, acts.engine, acts.compiled, queue, acts.mail, pool, guard=True), sending(acts.engine, acts.mail):
                return await body(env, queue)


def rows(world, table, **where):
    with world["engine"].connect() as conn:
        q = sa.select(table)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return [dict(r) for r in conn.execute(q.order_by(table.c[list(table.primary_key.columns)[0].name])).mappings()]


def test_overdue_task_escalates_level_by_level_exactly_once_then_flows_on(world):
    spec = world["compiled"].process_specs["follow_up"]
    ids = world["ids"]

    async def body(env, queue):
        start = await env.get_current_time()
        handle = await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme", "owner": ids["bob"]},
                                              started_by=ids["ann"], started_at=start.isoformat()),
            id="follow_up-1", task_queue=queue)
        await env.sleep(60)
        [task] = rows(world, tasks)
        assert (task["title"], task["status"], task["group_name"], task["assignee_id"]) == ("Call Acme", "open", "sales", ids["ann"])
        assert task["due_at"].replace(tzinfo=dt.timezone.utc) == (start + dt.timedelta(hours=2)).replace(microsecond=task["due_at"].microsecond)
        assert rows(world, alerts) == []

        await env.sleep(2 * 3600 + 60)  # past due: level 1 only
        assert [(a["level"], a["recipients"], a["message"]) for a in rows(world, alerts)] == [(1, [ids["mia"]], "Call Acme is late")]
        await env.sleep(3600)  # past due + 1 hour: level 2, and the task moves to the leads group
        assert [(a["level"], a["recipients"]) for a in rows(world, alerts)] == [(1, [ids["mia"]]), (2, [ids["dave"]])]
        [task] = rows(world, tasks)
        assert (task["group_name"], task["assignee_id"]) == ("leads", ids["lee"])
        await env.sleep(5 * 3600)  # nothing more is raised, however long it stays overdue
        assert len(rows(world, alerts)) == 2
        assert sorted(to for to, _ in await world["inbox"].received(2)) == [["dave@example.com"], ["mia@example.com"]]

        # invalid form data is refused by the validator and changes nothing
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=ids["lee"], data={"outcome": "maybe"}))
        assert "the form has errors" in str(err.value.cause)
        assert rows(world, tasks)[0]["status"] == "open"

        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=ids["lee"], data={"outcome": "interested"}),
                                    id="req-1")
        # the same request id again is deduplicated, not a second completion
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=ids["lee"], data={"outcome": "interested"}),
                                    id="req-1")
        await env.sleep(5)
        offer = rows(world, tasks, step_id="offer")[0]
        assert (offer["title"], offer["assignee_id"]) == ("Send offer (Interested)", ids["bob"])  # the record owner; the label

        # the offer's approval (written `approval:` on the task) is a step of its own: a task for mia (the approver), who sends it back
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="offer", user_id=ids["bob"]))
        await env.sleep(5)
        assert rows(world, tasks, step_id="offer")[0]["status"] == "done"
        [ask] = rows(world, tasks, step_id="offer_approval")
        assert (ask["kind"], ask["assignee_id"], ask["title"]) == ("approval", ids["mia"], "Approve: Send offer (Interested)")
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="offer_approval", user_id=ids["mia"], approve=False,
                                                                       comment="too cheap", task_id=ask["id"]))
        offer = rows(world, tasks, step_id="offer")[0]
        assert (offer["status"], offer["round"], offer["reason"], offer["assignee_id"]) == ("open", 2, "too cheap", ids["bob"])
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="offer", user_id=ids["bob"]))
        await env.sleep(5)
        ask = rows(world, tasks, step_id="offer_approval", round=2)[0]
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="offer_approval", user_id=ids["mia"], approve=True,
                                                                       task_id=ask["id"]))
        await env.sleep(5)
        thanks = rows(world, tasks, step_id="thanks")[0]
        assert thanks["assignee_id"] == ids["lee"]  # completer of 'call'
        # due one business day after the process started, on the office calendar (weekends and English holidays skipped)
        office = BusinessCalendar(world["compiled"].process_specs["follow_up"]["calendar"])
        expected = office.add(start, {"unit": "business_days", "amount": 1})
        assert abs(thanks["due_at"].replace(tzinfo=dt.timezone.utc) - expected) < dt.timedelta(seconds=1)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="thanks", user_id=ids["lee"]))
        return await handle.result()

    result = asyncio.run(_with_worker(world, body))
    assert result == {"steps": {"call": "done", "offer": "done", "offer_approval": "done", "thanks": "done"}}
    [instance] = rows(world, process_instances)
    assert instance["status"] == "completed" and instance["version"] == world["compiled"].process_specs["follow_up"]["version"]
    summaries = [h["summary"] for h in rows(world, contact_history)]
    assert summaries.count("Alert (level 1): Call Acme is late") == 1
    assert "Task completed: Call Acme" in summaries and "Sent back to Bob for revision: Send offer (Interested)" in summaries
    assert ["Rejected by Mia: too cheap", "Approved by Mia"] == [x for x in summaries if x.startswith(("Rejected", "Approved"))]
    assert len(rows(world, tasks)) == 5  # call, offer, its two rounds of approval, thanks


def test_a_new_run_has_the_latest_behaviours_without_a_patch_marker_and_a_run_started_before_keeps_its_patches(world):
    """A run started by this code takes FEATURES from its input: its history holds no patch marker and none of the
    search-attribute upserts the SDK adds to each patch. A run whose input lists none (started by code before) asks
    workflow.patched, as it did then. Both raise the alert, email it, and take the completion alike."""
    spec = world["compiled"].process_specs["follow_up"]
    ids = world["ids"]

    async def body(env, queue):
        start = await env.get_current_time()
        handles = {}
        for name, make in (("new", process_input), ("before", ProcessInput)):
            handles[name] = await env.client.start_workflow(
                ProcessWorkflow.run, make(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme", "owner": ids["bob"]},
                                          started_by=ids["ann"], started_at=start.isoformat()), id=f"follow_up-{name}", task_queue=queue)
        await env.sleep(2 * 3600 + 60)  # past due: level 1
        assert sorted(to for to, _ in await world["inbox"].received(2)) == [["mia@example.com"], ["mia@example.com"]]
        for handle in handles.values():
            await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=ids["ann"], data={"outcome": "not_interested"}))
        await env.sleep(5)
        kinds = {}
        for name, handle in handles.items():
            events = (await handle.fetch_history()).events
            kinds[name] = ([e.marker_recorded_event_attributes.marker_name for e in events if e.HasField("marker_recorded_event_attributes")],
                           sum(e.HasField("upsert_workflow_search_attributes_event_attributes") for e in events))
        return kinds

    kinds = asyncio.run(_with_worker(world, body))
    assert "core_patch" not in kinds["new"][0] and kinds["new"][1] == 0
    assert kinds["before"][0].count("core_patch") == 3 and kinds["before"][1] == 3  # migratable, the alert's mail, the completion
    assert [a["level"] for a in rows(world, alerts)] == [1, 1]
    assert sorted((t["workflow_id"], t["status"]) for t in rows(world, tasks, step_id="call")) == [
        ("follow_up-before", "done"), ("follow_up-new", "done")]


def test_database_outage_is_retried_and_nothing_is_written_twice(world):
    """While the database refuses writes, activities fail and retry; once it is back, exactly one task exists."""
    spec = world["compiled"].process_specs["follow_up"]
    blocker = sa.create_engine(f"sqlite:///{world['engine'].url.database}", connect_args={"timeout": 0.1})
    lock = blocker.raw_connection()
    lock.execute("BEGIN EXCLUSIVE")  # nobody else may write (or read, outside WAL) until released
    released: list[dt.datetime] = []

    async def body(env, queue):
        handle = await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme"}),
            id="outage-1", task_queue=queue)
        await asyncio.sleep(12)  # real time: the first activity attempts fail on the lock
        released.append(dt.datetime.now(dt.timezone.utc))
        lock.rollback()
        lock.close()
        for _ in range(60):
            if rows(world, tasks):
                break
            await asyncio.sleep(0.5)
        state = await handle.query(ProcessWorkflow.state)
        return state

    state = asyncio.run(_with_worker(world, body))
    assert state["steps"]["call"]["status"] == "open"
    [task] = rows(world, tasks)
    assert len(rows(world, process_instances)) == 1
    assert task["created_at"].replace(tzinfo=dt.timezone.utc) >= released[0]  # written only once the database was back
    blocker.dispose()


PROJECT_PACK = {**PACK, "process.yaml": """
    kind: process
    name: onboard
    entity: company
    project:
      title: "Onboarding {{ record.name }}"
      manager: user:mia
    steps:
      - id: kickoff
        title: Kick-off
        assign: owner
        approval: {by: project_manager}
        due: 1 hour
        escalate:
          - {at: due, alert: project_manager}
    """}


def test_projects_have_a_manager_who_gets_alerts_and_approves(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, PROJECT_PACK)
    ids = world["ids"]
    spec = world["compiled"].process_specs["onboard"]

    async def body(env, queue):
        handle = await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme"}),
            id="onboard-1", task_queue=queue)
        await env.sleep(3700)
        await handle.execute_update(ProcessWorkflow.comment, TaskAction(step="kickoff", user_id=ids["bob"], comment="Booked for Tuesday"))
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="kickoff", user_id=ids["bob"]))
        await env.sleep(5)
        [ask] = rows(world, tasks, step_id="kickoff_approval")
        assert ask["assignee_id"] == ids["mia"]  # the project's manager
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="kickoff_approval", user_id=ids["mia"], approve=True,
                                                                       task_id=ask["id"]))
        return await handle.result()

    assert asyncio.run(_with_worker(world, body)) == {"steps": {"kickoff": "done", "kickoff_approval": "done"}}
    [project] = rows(world, projects)
    assert (project["title"], project["manager_id"], project["status"]) == ("Onboarding Acme", ids["mia"], "closed")
    task, ask = rows(world, tasks)
    assert (task["project_id"], task["assignee_id"], task["status"], task["outcome"]) == (project["id"], ids["bob"], "done", "done")
    assert (ask["project_id"], ask["assignee_id"], ask["status"], ask["outcome"]) == (project["id"], ids["mia"], "done", "approved")
    assert [a["recipients"] for a in rows(world, alerts)] == [[ids["mia"]]]
    assert "Comment on 'Kick-off': Booked for Tuesday" in [h["summary"] for h in rows(world, contact_history)]


LADDER_PACK = {**PACK, "process.yaml": """
    kind: process
    name: ladder
    entity: company
    calendar: office
    steps:
      - id: call
        title: Call back
        assign: group:sales
        due: 2 business days
        escalate:
          - {at: due, alert: manager}
          - {at: due + 1 business day, alert: role:director}
    """}


def test_business_day_ladder_waits_over_weekends_and_holidays(packs, tmp_path, smtp):
    """Started Wednesday 23 December at 16:00 London: due two working days later, skipping Christmas Day, the weekend
    and Monday 28th (the Boxing Day substitute) — so due Tuesday 29th, level 2 a working day later, Wednesday 30th."""
    world = _world(packs, tmp_path, smtp, LADDER_PACK)
    spec = world["compiled"].process_specs["ladder"]
    started = dt.datetime(2026, 12, 23, 16, 0, tzinfo=dt.timezone.utc)  # GMT in winter: 16:00 in London
    due = dt.datetime(2026, 12, 29, 16, 0, tzinfo=dt.timezone.utc)  # working days: Thu 24, Tue 29
    level2 = dt.datetime(2026, 12, 30, 16, 0, tzinfo=dt.timezone.utc)

    async def body(env, queue):
        now = await env.get_current_time()
        assert now < started, "this test needs the start in the future of the test server's clock"
        handle = await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme"},
                                              started_at=started.isoformat()),
            id="ladder-1", task_queue=queue)
        await env.sleep((due - now).total_seconds() - 60)  # a minute before due: nothing yet
        levels_before = [a["level"] for a in rows(world, alerts)]
        await env.sleep(120)
        levels_at_due = [a["level"] for a in rows(world, alerts)]
        await env.sleep((level2 - due).total_seconds() - 120)
        levels_before_2 = [a["level"] for a in rows(world, alerts)]
        await env.sleep(120)
        levels_after_2 = [a["level"] for a in rows(world, alerts)]
        [task] = rows(world, tasks)
        await handle.terminate()
        return levels_before, levels_at_due, levels_before_2, levels_after_2, task

    before, at_due, before_2, after_2, task = asyncio.run(_with_worker(world, body))
    assert task["due_at"].replace(tzinfo=dt.timezone.utc) == due
    assert (before, at_due, before_2, after_2) == ([], [1], [1], [1, 2])


def test_webhooks_are_signed_retried_until_delivered_and_carry_a_delivery_id(packs, tmp_path, smtp):
    import http.server
    import json
    import threading

    from runtime.webhooks import WebhookSettings, sign

    received: list[tuple[dict, dict]] = []
    failures = {"left": 1}

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if failures["left"]:
                failures["left"] -= 1
                self.send_response(500)  # the first delivery fails: it must be retried
            else:
                received.append((dict(self.headers), json.loads(body)))
                assert self.headers["X-Tailor-Signature"] == sign("s3cret", body)
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    world = _world(packs, tmp_path, smtp, PROJECT_PACK)
    spec = world["compiled"].process_specs["onboard"]
    hooks = WebhookSettings((f"http://127.0.0.1:{server.server_address[1]}/hook",), "s3cret")

    async def body(env, queue):
        with ThreadPoolExecutor(4) as pool:
            acts = world["acts"]
            async with make_worker(env.client, acts.engine, acts.compiled, f"{queue}-hooks", acts.mail, pool, hooks, guard=True):
                handle = await env.client.start_workflow(
                    ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme"},
                                                      announce=["alert.raised"]), id="hooked-1", task_queue=f"{queue}-hooks")
                await env.sleep(3700)  # past due: the alert is raised
                for _ in range(40):
                    if received:
                        break
                    await asyncio.sleep(0.5)
                await asyncio.sleep(1)  # anything else sent would be in by now: task.created was due an hour earlier
                await handle.terminate()

    asyncio.run(_with_worker(world, body))
    server.shutdown()
    events = [(h["X-Tailor-Event"], b["event"]) for h, b in received]
    assert events == [("alert.raised", "alert.raised")]  # only the event someone receives: no task.created was sent
    assert all(h["X-Tailor-Delivery"] == b["id"] for h, b in received)
    assert len({b["id"] for _, b in received}) == len(received)  # each event delivered once after the retry
