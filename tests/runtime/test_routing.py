"""Who a new task goes to (runtime.routing), on SQLite and PostgreSQL: the step's party among those who may hold it, else the
fallback chain, with the reason in words; and the create_task activity that writes it, its alert raised once however
often the activity runs."""
from __future__ import annotations

import asyncio
import datetime as dt
import email

import pytest
import sqlalchemy as sa

from engine.compiler import compile_model
from engine.loader import load
from runtime import records, routing
from runtime.activities import Activities
from runtime.db import upgrade
from runtime.plan import apply, plan
from runtime.schema import alerts, contact_history, group_members, notifications, projects, tasks, users
from runtime.workflows import ProcessWorkflow, TaskAction, process_input
from tests.runtime.test_workflows import _with_worker, _world, rows

PACK = {
    "entities.yaml": """
        kind: entity
        name: company
        title: "{{ record.name }}"
        fields:
          name: {type: string, required: true}
          owner: user
        ---
        kind: entity
        name: contract
        title: "{{ record.reference }}"
        fields:
          reference: {type: string, required: true}
          owner: {type: user, column: true}
        """,
    "people.yaml": """
        kind: role
        name: staff
        permissions: [access, manage_own_tasks]
        ---
        kind: role
        name: supervisor
        label: Supervisor
        permissions: [access, manage_own_tasks, monitor_tasks]
        ---
        kind: role
        name: customer
        permissions: [portal]
        ---
        kind: group
        name: sales
        managers: skip
        ---
        kind: group
        name: support
        ---
        kind: group
        name: night
        label: Night shift
        managers: skip
        ---
        kind: group
        name: empty
        label: Credit control
        """,
}

# name, roles, active, can log in
PEOPLE = [("ann", ["staff"], True, True), ("bob", ["staff"], True, True), ("mia", ["staff"], True, True),
          ("sue", ["staff"], True, True), ("lee", ["staff"], True, True), ("gus", ["staff"], False, True),
          ("raj", ["customer"], True, True), ("ivy", ["staff"], True, False), ("mo", ["staff", "supervisor"], True, True)]
# group, user, manager
MEMBERS = [("sales", "ann", False), ("sales", "bob", False), ("sales", "mia", True), ("support", "sue", False), ("support", "lee", True),
           ("night", "gus", False), ("night", "raj", False), ("night", "ivy", False), ("night", "mia", True)]


@pytest.fixture
def world(db, packs):
    compiled = compile_model(load([packs.write("t", PACK)]))
    now = dt.datetime.now(dt.timezone.utc)
    with db.begin() as conn:
        upgrade(conn)
        apply(conn, compiled, plan(conn, compiled))
        for name, roles, active, login in PEOPLE:
            conn.execute(users.insert().values(username=name, name=name.title(), email=f"{name}@example.com", roles=roles, active=active,
                                               password_hash="argon2-hash" if login else None, created_at=now))
        ids = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
        conn.execute(group_members.insert(), [{"group_name": g, "user_id": ids[u], "manager": m} for g, u, m in MEMBERS])
        acme = records.create_record(conn, compiled, "company", {"name": "Acme Ltd"}, ids["ann"]).id
    return {"engine": db, "compiled": compiled, "ids": ids, "acme": acme}


def _route(world, party: str | None, *, owner: str | None = None, starter: str | None = "bob", fallback: str | None = None,
           strategy: str = "round_robin", project: int | None = None, fallback_of: str = "step"):
    ids = world["ids"]

    def p(text):
        if text is None:
            return None
        kind, _, name = text.partition(":")
        return {"kind": kind, "name": name or None}
    ctx = {"owner_id": ids[owner] if owner else None, "started_by": ids[starter] if starter else None, "entity": "company",
           "record_id": world["acme"], "project_id": project, "completers": {}}
    with world["engine"].begin() as conn:
        r = routing.route(conn, world["compiled"], p(party), strategy, ctx, {"project_id": project}, p(fallback), fallback_of)
    names = {v: k for k, v in ids.items()}
    return names.get(r.assignee_id), r.group, r.routed, [names[u] for u in r.tell]


def test_a_party_that_names_someone_who_may_hold_the_task_gets_it_as_before(world):
    assert _route(world, "owner", owner="ann") == ("ann", None, None, [])
    assert _route(world, "user:sue") == ("sue", None, None, [])
    assert _route(world, None) == ("bob", None, None, [])  # a step that names nobody is its starter's


def test_nobody_to_hold_it_sends_the_task_down_the_fallback_chain_saying_why(world):
    # no owner: whoever started the process
    assert _route(world, "owner") == ("bob", None, "Acme Ltd has no owner, so it came to Bob, who started the process.", ["bob"])
    # the owner is deactivated; the step's fallback wins, a group fallback in turn among those who may hold it
    assert _route(world, "owner", owner="gus", fallback="group:support") == (
        "sue", "support", "The owner of Acme Ltd, Gus, is deactivated, so it came to Sue, of the Support group, the step's fallback.",
        ["sue"])
    assert _route(world, "user:gus", fallback="user:mo", fallback_of="process") == (
        "mo", None, "Gus is deactivated, so it came to Mo, the process's fallback.", ["mo"])
    # an empty group with no managers, and a fallback that cannot take it either: the starter; the alert goes to the holder
    assert _route(world, "group:empty", fallback="user:ivy") == (
        "bob", "empty", "The Credit control group has no members, nor could the step's fallback take it (Ivy cannot log in "
                        "(an API-only account), so could never see the task), so it came to Bob, who started the process.", ["bob"])
    # a group whose members may none of them hold it (its manager skips turns): its manager, who hears why
    assert _route(world, "group:night") == (
        "mia", "night", "Nobody in the Night shift group may hold it (Gus is deactivated; Raj is a customer's user and is not on this "
                        "task's project team; Ivy cannot log in (an API-only account), so could never see the task), so it came to "
                        "Mia, a manager of the Night shift group.", ["mia"])
    # a starter who may not hold it (a customer's portal user): the least busy of those who may monitor tasks
    assert _route(world, "owner", starter="raj") == (
        "mo", None, "Acme Ltd has no owner, so it came to Mo, who may monitor tasks.", ["mo"])
    assert _route(world, None, starter="raj") == (
        "mo", None, "The step names nobody to do it, and Raj is a customer's user and is not on this task's project team, so it came "
                    "to Mo, who may monitor tasks.", ["mo"])
    assert _route(world, None, starter=None) == (
        "mo", None, "The step names nobody to do it and nobody started the process (it started on its own), so it came to Mo, "
                    "who may monitor tasks.", ["mo"])


def test_a_project_without_a_manager_and_a_group_of_managers_who_skip_turns(world):
    with world["engine"].begin() as conn:
        project = conn.execute(projects.insert().values(key="p-1", title="Onboarding Acme", status="open",
                                                        created_at=dt.datetime.now(dt.timezone.utc))).inserted_primary_key[0]
    assert _route(world, "project_manager", project=project) == (
        "bob", None, "The project 'Onboarding Acme' has no manager, so it came to Bob, who started the process.", ["bob"])
    # sales says `managers: skip`: Mia never takes a turn, and when only she is left she gets it as its manager
    with world["engine"].begin() as conn:
        conn.execute(users.update().where(users.c.username.in_(["ann", "bob"])).values(active=False))
    assert _route(world, "group:sales", starter="sue") == (
        "mia", "sales", "Nobody in the Sales group may hold it (Ann is deactivated; Bob is deactivated), so it came to Mia, a manager "
                        "of the Sales group.", ["mia"])


def test_round_robin_and_least_busy_skip_people_who_may_not_hold_the_task_and_managers_who_skip(world):
    ids = world["ids"]
    turns = [_route(world, "group:sales")[0] for _ in range(4)]
    assert turns == ["ann", "bob", "ann", "bob"]  # never Mia: sales' managers skip their turns
    assert [_route(world, "group:support")[0] for _ in range(3)] == ["sue", "lee", "sue"]  # support's manager takes turns
    with world["engine"].begin() as conn:
        conn.execute(tasks.insert(), [{"key": f"busy-{i}", "workflow_id": "w", "process": "p", "step_id": f"s{i}", "title": "Busy",
                                       "status": "open", "assignee_id": ids["sue"], "created_at": dt.datetime.now(dt.timezone.utc)}
                                      for i in range(2)])
        conn.execute(users.update().where(users.c.username == "lee").values(active=False))
    # least busy: Lee (no tasks) is deactivated, so Sue, busy as she is, is the one who may hold it
    assert _route(world, "group:support", strategy="least_busy")[0] == "sue"
    assert _route(world, "role:supervisor")[0] == "mo"


def _activities(world) -> Activities:
    return Activities(world["engine"], world["compiled"])


def _create(acts: Activities, world, key: str, entity: str, record_id: int, **extra) -> dict:
    return acts.create_task({"key": key, "workflow_id": key.split(":")[0], "process": "p", "step_id": "proposal", "title": "Send a proposal",
                             "entity": entity, "record_id": record_id, "assign": {"kind": "owner", "name": None}, "strategy": "round_robin",
                             "started_by": world["ids"]["bob"], **extra})["result"]


def test_a_retried_create_task_finds_its_task_and_its_alert_and_raises_it_once(world):
    acts = _activities(world)
    first = _create(acts, world, "w-1:proposal", "company", world["acme"])
    again = _create(acts, world, "w-1:proposal", "company", world["acme"])
    assert first == again
    message = "'Send a proposal': Acme Ltd has no owner, so it came to Bob, who started the process."
    assert (first["assignee_id"], first["routed"], first["message"], first["recipients"]) == (
        world["ids"]["bob"], "Acme Ltd has no owner, so it came to Bob, who started the process.", message, [world["ids"]["bob"]])
    with world["engine"].connect() as conn:
        raised = conn.execute(sa.select(alerts.c.level, alerts.c.message)).all()
        [task] = conn.execute(sa.select(tasks.c.routed, tasks.c.assignee_id)).all()
        told = conn.execute(sa.select(notifications.c.kind, notifications.c.text).order_by(notifications.c.id)).all()
        history = list(conn.execute(sa.select(contact_history.c.summary).where(contact_history.c.kind == "alert")).scalars())
    assert raised == [(0, message)]
    assert task == (first["routed"], world["ids"]["bob"])
    assert told == [("task", "New task for you: Send a proposal"), ("alert", message)]
    assert history == [f"Alert: {message}"]


def test_an_owner_kept_in_a_column_of_its_own_is_found(world):
    """Before: the activity read the owner from the record's JSON data only, so an owner field with `column: true` was never
    found and the task was created with no assignee and no group."""
    acts = _activities(world)
    with world["engine"].begin() as conn:
        contract = records.create_record(conn, world["compiled"], "contract", {"reference": "SLA-1", "owner": world["ids"]["sue"]},
                                         world["ids"]["ann"]).id
    created = _create(acts, world, "w-2:proposal", "contract", contract)
    assert (created["assignee_id"], created.get("routed")) == (world["ids"]["sue"], None)


FALLBACK_PACK = {
    "company.yaml": "kind: entity\nname: company\ntitle: '{{ record.name }}'\nfields:\n  name: {type: string, required: true}\n  owner: user\n",
    "people.yaml": "kind: role\nname: staff\npermissions: [access, manage_own_tasks]\n---\nkind: group\nname: sales\n---\n"
                   "kind: group\nname: night\n",
    "process.yaml": """
        kind: process
        name: visit
        entity: company
        fallback: user:lee
        steps:
          - id: plan
            title: "Plan a visit to {{ record.name }}"
            assign: owner
          - id: book
            title: Book the hotel
            assign: group:night
            fallback: group:sales
          - id: go
            title: Go
            assign: owner
        """,
}


def test_the_workflow_learns_where_the_task_went_and_emails_the_alert_that_says_why(packs, tmp_path, smtp):
    """On the time-skipping server: an owner-less company's first task goes to the process's fallback, the next (an empty
    group) to the step's own fallback group; each alert is emailed once, and the workflow's state says why."""
    world = _world(packs, tmp_path, smtp, FALLBACK_PACK)
    ids = world["ids"]
    with world["engine"].begin() as conn:
        table = world["compiled"].metadata.tables["company"]
        conn.execute(table.update().values(data={"name": "Acme"}))  # nobody owns it

    async def body(env, queue):
        handle = await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=world["compiled"].process_specs["visit"], entity="company", record_id=world["record_id"],
                                              record={"name": "Acme"}, started_by=ids["ann"]), id="visit-1", task_queue=queue)
        await env.sleep(60)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="plan", user_id=ids["lee"]))
        await env.sleep(60)
        state = await handle.query(ProcessWorkflow.state)
        await asyncio.sleep(1)  # the emails are background activities
        await handle.terminate()
        return state

    state = asyncio.run(_with_worker(world, body))
    plan, book = rows(world, tasks, step_id="plan")[0], rows(world, tasks, step_id="book")[0]
    assert (plan["assignee_id"], plan["routed"]) == (ids["lee"], "Acme has no owner, so it came to Lee, the process's fallback.")
    assert (book["assignee_id"], book["group_name"], book["routed"]) == (
        ids["ann"], "sales", "The Night group has no members, so it came to Ann, of the Sales group, the step's fallback.")
    assert (state["steps"]["plan"]["routed"], state["steps"]["book"]["routed"]) == (plan["routed"], book["routed"])
    assert [(a["level"], a["recipients"]) for a in rows(world, alerts)] == [(0, [ids["lee"]]), (0, [ids["ann"]])]
    mails = sorted((to, text) for to, text in world["inbox"].messages)
    assert [to for to, _ in mails] == [["ann@example.com"], ["lee@example.com"]]
    letter = email.message_from_string(mails[1][1])
    assert letter["Subject"] == "[Tailor] Handed on: Plan a visit to Acme"
    assert letter.get_payload(decode=True).decode().splitlines()[0] == f"'Plan a visit to Acme': {plan['routed']}"
