"""Staff actions on tasks through runtime.taskactions, on the time-skipping server with a real SQLite store: refusals come
back at once with a reason and leave the process healthy, reassignment goes only to those who may hold the task (from
a request and from an escalation ladder), keys make repeats replay, and completing a task leaves the same rows whether
the API or the web asked."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from starlette.datastructures import FormData
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from runtime import records
from runtime.db import make_engine, upgrade
from runtime.mail import MailSettings
from runtime.plan import apply, plan
from runtime.schema import alerts, contact_history, group_members, tasks, users
from runtime.starter import start_process
from runtime.taskactions import ActionRefused, TaskActions, update_id
from runtime.worker import make_worker
from runtime.workflows import ProcessWorkflow, TaskAction, process_input
from tests.runtime.test_workflows import PACK, TEST_SERVER, _with_worker, _world, rows

GUARD = 60  # seconds: a refusal answers at once; this only turns a hang (the bug) into a failure instead of a stuck run


def _add_people(world) -> dict[str, int]:
    """A customer's portal user, a deactivated colleague, an API-only account, and a colleague for the night group."""
    now = dt.datetime.now(dt.timezone.utc)
    with world["engine"].begin() as conn:
        for name, extra in [("raj", {"roles": ["portal"], "company_id": world["record_id"]}),
                            ("gus", {"roles": ["staff"], "active": False}),
                            ("ivy", {"roles": ["staff"], "password_hash": None}),
                            ("zoe", {"roles": ["staff"]})]:
            conn.execute(users.insert().values(**{"username": name, "name": name.title(), "email": f"{name}@example.com",
                                                  "password_hash": "argon2-hash", "created_at": now, **extra}))
        ids = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
        conn.execute(group_members.insert(), [{"group_name": "night", "user_id": ids[u]} for u in ("raj", "zoe")])
    world["ids"] = ids
    return ids


def _user(world, name: str) -> dict:
    with world["engine"].connect() as conn:
        return dict(conn.execute(sa.select(users).where(users.c.username == name)).mappings().one())


async def _start(env, world, queue: str, spec_name: str = "follow_up", wid: str = "p-1"):
    ids = world["ids"]
    handle = await env.client.start_workflow(
        ProcessWorkflow.run, process_input(spec=world["compiled"].process_specs[spec_name], entity="company", record_id=world["record_id"],
                                          record={"name": "Acme", "owner": ids["bob"]}, started_by=ids["ann"]),
        id=wid, task_queue=queue)
    await env.sleep(60)
    return handle


def _summaries(world, prefix: str) -> list[str]:
    return [h["summary"] for h in rows(world, contact_history) if h["summary"].startswith(prefix)]


def test_a_reassign_to_nobody_is_refused_at_once_and_the_process_stays_healthy(packs, tmp_path, smtp):
    """Before: a reassign to user 999999 failed the write on the foreign key and was retried for ever; the update never
    answered and every later action on the process waited behind it."""
    world = _world(packs, tmp_path, smtp, PACK)
    ids = _add_people(world)

    async def body(env, queue):
        handle = await _start(env, world, queue)
        refused = []
        for action in (TaskAction(step="call", user_id=ids["mia"], to_user=999999),  # nobody checked it: kept out of history
                       TaskAction(step="call", user_id=ids["mia"], to_user=999999, to_name="Nobody"),  # a caller that lied
                       TaskAction(step="call", user_id=ids["mia"], to_user=ids["raj"], to_name="Raj")):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await asyncio.wait_for(handle.execute_update(ProcessWorkflow.reassign, action), GUARD)
            refused.append(err.value.cause.message)
        # the process answers the next action at once
        await asyncio.wait_for(handle.execute_update(ProcessWorkflow.comment, TaskAction(step="call", user_id=ids["ann"], comment="Rang twice")),
                               GUARD)
        state = await handle.query(ProcessWorkflow.state)
        await handle.terminate()
        return refused, state

    refused, state = asyncio.run(_with_worker(world, body))
    assert refused == ["the new assignee has not been checked: reassign through runtime.taskactions.reassign_task",
                       "There is no such user.", "Raj is a customer's user and is not on this task's project team."]
    assert (state["steps"]["call"]["status"], state["steps"]["call"]["assignee_id"]) == ("open", ids["ann"])
    [task] = rows(world, tasks)
    assert task["assignee_id"] == ids["ann"]
    assert _summaries(world, "Task reassigned") == [] and _summaries(world, "Comment on") == ["Comment on 'Call Acme': Rang twice"]


def test_a_write_the_database_refuses_fails_its_update_not_the_process(packs, tmp_path, smtp):
    """A database rule refuses comments, then completions: each update fails with the database's reason, the step stays open
    (the process does not move on), and once the rule is gone the same actions work at once."""
    world = _world(packs, tmp_path, smtp, PACK)
    ids = world["ids"]
    engine = world["engine"]

    def refuse(name: str, when: str) -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TRIGGER {name} BEFORE INSERT ON contact_history WHEN {when} "
                                 f"BEGIN SELECT RAISE(ABORT, 'the audit rule refuses it'); END")

    async def body(env, queue):
        handle = await _start(env, world, queue)
        refuse("no_notes", "NEW.kind = 'note'")
        refuse("no_completions", "NEW.summary LIKE 'Task completed%'")
        failures = []
        for update, action in ((ProcessWorkflow.comment, TaskAction(step="call", user_id=ids["ann"], comment="Rang")),
                               (ProcessWorkflow.complete, TaskAction(step="call", user_id=ids["ann"], data={"outcome": "not_interested"}))):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await asyncio.wait_for(handle.execute_update(update, action), GUARD)
            failures.append((err.value.cause.type, err.value.cause.message))
        await env.sleep(60)
        refused_state = (await handle.query(ProcessWorkflow.state))["steps"]
        stuck_tasks = [(t["step_id"], t["status"]) for t in rows(world, tasks)]
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER no_notes")
            conn.exec_driver_sql("DROP TRIGGER no_completions")
        await asyncio.wait_for(handle.execute_update(ProcessWorkflow.comment, TaskAction(step="call", user_id=ids["ann"], comment="Rang")), GUARD)
        await asyncio.wait_for(handle.execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=ids["ann"],
                                                                                          data={"outcome": "not_interested"})), GUARD)
        await env.sleep(60)
        after = [(t["step_id"], t["status"]) for t in rows(world, tasks)]
        await handle.terminate()
        return failures, refused_state, stuck_tasks, after

    failures, refused_state, stuck_tasks, after = asyncio.run(_with_worker(world, body))
    assert failures == [("DataError", "the database refused this change (the audit rule refuses it)")] * 2
    assert (refused_state["call"]["status"], refused_state["offer"]["status"], refused_state["thanks"]["status"]) == ("open", "pending", "pending")
    assert stuck_tasks == [("call", "open")]
    assert after == [("call", "done"), ("thanks", "open")]  # not interested: no offer; the process moved on once it could
    assert _summaries(world, "Comment on") == ["Comment on 'Call Acme': Rang"]


def test_reassign_accepts_only_active_staff_who_may_hold_the_task(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, PACK)
    ids = _add_people(world)
    mia = _user(world, "mia")

    async def body(env, queue):
        handle = await _start(env, world, queue)
        actions = TaskActions(world["engine"], world["compiled"], env.client, queue)
        [task] = rows(world, tasks)
        refusals = []
        for target in (999999, 2**70, "abc", True, None, ids["raj"], ids["gus"], ids["ivy"], ids["dave"]):
            with pytest.raises(ActionRefused) as err:
                await asyncio.wait_for(actions.reassign(task, mia, target, key=None), GUARD)
            refusals.append((err.value.message, err.value.status))
        moved = await asyncio.wait_for(actions.reassign(task, mia, str(ids["bob"]), key=None), GUARD)  # as a web form sends it
        await handle.terminate()
        return refusals, moved

    refusals, moved = asyncio.run(_with_worker(world, body))
    assert refusals == [("There is no such user.", 422), ("There is no such user.", 422), ("Choose who should do the task.", 422),
                        ("Choose who should do the task.", 422), ("Choose who should do the task.", 422),
                        ("Raj is a customer's user and is not on this task's project team.", 422), ("Gus is deactivated.", 422),
                        ("Ivy cannot log in (an API-only account), so could never see the task.", 422),
                        ("Dave may not work on tasks.", 422)]
    assert moved == {"step": "call", "assignee_id": ids["bob"], "assignee": "Bob"}
    assert rows(world, tasks)[0]["assignee_id"] == ids["bob"]
    assert _summaries(world, "Task reassigned") == ["Task reassigned: Call Acme"]  # the refusals never reached the store


HANDOVER_PACK = {**PACK, "night.yaml": "kind: group\nname: night\n", "process.yaml": """
    kind: process
    name: handover
    entity: company
    steps:
      - id: call
        title: Call back
        assign: group:sales
        due: 1 hour
        escalate:
          - {at: due, reassign: "user:raj"}
          - {at: due + 1 hour, alert: role:director, reassign: manager}
          - {at: due + 2 hours, reassign: group:night}
    """}


def test_an_escalation_hands_the_task_only_to_someone_who_may_hold_it_or_leaves_it_and_says_so(packs, tmp_path, smtp):
    """Level 1 names a portal user and level 2 a manager who has been deactivated: the task stays with Ann and the level's
    alert recipients (or, with none, the group's manager) are told why. Level 3's group has the portal user first in
    turn: the task goes to the colleague after him."""
    world = _world(packs, tmp_path, smtp, HANDOVER_PACK)
    ids = _add_people(world)

    async def body(env, queue):
        handle = await _start(env, world, queue, "handover", "handover-1")
        await env.sleep(3600)  # level 1
        after_1 = rows(world, tasks)[0]["assignee_id"]
        with world["engine"].begin() as conn:
            conn.execute(users.update().where(users.c.username == "mia").values(active=False))
        await env.sleep(3600)  # level 2
        after_2 = rows(world, tasks)[0]["assignee_id"]
        await env.sleep(3600)  # level 3
        final = rows(world, tasks)[0]
        await asyncio.sleep(1)  # the alerts' emails are background activities
        await handle.terminate()
        return after_1, after_2, final

    after_1, after_2, final = asyncio.run(_with_worker(world, body))
    assert (after_1, after_2) == (ids["ann"], ids["ann"])
    assert (final["assignee_id"], final["group_name"]) == (ids["zoe"], "night")
    assert [(a["level"], a["recipients"], a["message"]) for a in rows(world, alerts)] == [
        (1, [ids["mia"]], "'Call back' could not be handed on: Raj is a customer's user and is not on this task's project team, "
                          "so it stays with Ann."),
        (2, [ids["dave"]], "'Call back' is overdue (escalation level 2)"),
        (2, [ids["dave"]], "'Call back' could not be handed on: the manager of the Sales group, Mia, is deactivated, so it stays with Ann.")]
    assert sorted(to for to, _ in world["inbox"].messages) == [["dave@example.com"], ["dave@example.com"], ["mia@example.com"]]
    assert _summaries(world, "Task reassigned") == ["Task reassigned: Call back"]  # only level 3 moved it


def test_a_request_without_a_key_is_new_and_a_keyed_repeat_replays_the_first_answer(packs, tmp_path, smtp):
    """Before: the API keyed a request without an Idempotency-Key by task and user, so a second reassign to someone else
    answered 200 with the first result and changed nothing."""
    world = _world(packs, tmp_path, smtp, PACK)
    ids = world["ids"]
    mia, dave = _user(world, "mia"), _user(world, "dave")

    async def body(env, queue):
        handle = await _start(env, world, queue)
        actions = TaskActions(world["engine"], world["compiled"], env.client, queue)
        [task] = rows(world, tasks)
        answers = {}
        answers["unkeyed"] = [(await actions.reassign(task, mia, ids[u], key=None))["assignee"] for u in ("bob", "lee")]
        answers["after unkeyed"] = rows(world, tasks)[0]["assignee_id"]
        answers["keyed"] = [(await actions.reassign(task, mia, ids[u], key="k-1"))["assignee"] for u in ("ann", "bob")]
        answers["after keyed"] = rows(world, tasks)[0]["assignee_id"]
        answers["another user's key"] = (await actions.reassign(task, dave, ids["bob"], key="k-1"))["assignee"]
        await handle.terminate()
        return answers

    answers = asyncio.run(_with_worker(world, body))
    assert answers == {"unkeyed": ["Bob", "Lee"], "after unkeyed": ids["lee"], "keyed": ["Ann", "Ann"], "after keyed": ids["ann"],
                       "another user's key": "Bob"}
    assert len(_summaries(world, "Task reassigned")) == 4  # bob, lee, ann, bob: the keyed repeat wrote nothing
    assert update_id("k-1", user_id=1, task_id=2, action="reassign") == update_id("k-1", user_id=1, task_id=2, action="reassign")
    assert update_id(None, user_id=1, task_id=2, action="reassign") != update_id(None, user_id=1, task_id=2, action="reassign")
    assert len(update_id("x" * 10_000, user_id=1, task_id=2, action="complete")) < 100


# -- completing a task: one service for the API and the web ----------------------------------------------------------------

@pytest.fixture
def crm_world(tmp_path, crm):
    engine = make_engine(f"sqlite:///{tmp_path / 'tailor.db'}")
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        upgrade(conn)
        apply(conn, crm, plan(conn, crm))
        ann = conn.execute(users.insert().values(username="ann", name="Ann Sales", email="ann@example.com", roles=["staff"],
                                                 password_hash="argon2-hash", created_at=now).returning(users.c.id)).scalar_one()
        conn.execute(group_members.insert().values(group_name="sales", user_id=ann))
        company = records.create_record(conn, crm, "company", {"name": "Acme Health"}, ann)
        deals = [records.create_record(conn, crm, "opportunity", {"name": name, "company": company.id}, ann).id for name in ("Deal A", "Deal B")]
    yield {"engine": engine, "compiled": crm, "ann": ann, "deals": deals}
    engine.dispose()


def test_completing_a_step_as_the_api_and_as_the_web_leaves_the_same_rows(crm_world):
    """Before: the API's completion of a qualification skipped the step form's on-submit actions, so the opportunity
    stayed a lead; the web page ran them."""
    engine, crm, ann = crm_world["engine"], crm_world["compiled"], crm_world["ann"]
    deal_a, deal_b = crm_world["deals"]
    with engine.connect() as conn:
        user = dict(conn.execute(sa.select(users).where(users.c.id == ann)).mappings().one())

    async def body():
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"q-{uuid.uuid4()}"
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(env.client, engine, crm, queue, MailSettings(port=1), pool):
                    actions = TaskActions(engine, crm, env.client, queue)
                    for deal in (deal_a, deal_b):
                        with engine.connect() as conn:
                            data = dict(records.get_record(conn, crm, "opportunity", deal).data)
                        await start_process(env.client, crm.process_specs["lead_follow_up"], key=f"deal-{deal}", task_queue=queue,
                                            entity="opportunity", record_id=deal, record=data, started_by=ann, search_attributes=False)
                    qualify = {}
                    for _ in range(200):
                        qualify = {t["record_id"]: t for t in _rows(engine, tasks) if t["step_id"] == "qualify"}
                        if len(qualify) == 2:
                            break
                        await asyncio.sleep(0.1)
                    # the API: JSON values under "data", with an Idempotency-Key
                    api = await actions.complete(qualify[deal_a], user, {"outcome": "qualified", "owner": ann, "probability": 40,
                                                                          "competitor": "Globex"}, key="api-key-1")
                    # the web: the page's form fields as text, with the page's request id
                    web = await actions.complete(qualify[deal_b], user, FormData([
                        ("csrf_token", "t"), ("request_id", "page-1"), ("outcome", "qualified"), ("owner", str(ann)), ("lost_reason", ""),
                        ("decision_maker", ""), ("probability", "40"), ("competitor", "Globex"), ("notes", "")]), key="page-1")
                    history_before_repeat = len(_rows(engine, contact_history))
                    repeat = await actions.complete(qualify[deal_a], user, {"outcome": "qualified", "owner": ann, "probability": 40,
                                                                             "competitor": "Globex"}, key="api-key-1")
                    repeat_added = len(_rows(engine, contact_history)) - history_before_repeat
                    with pytest.raises(ActionRefused) as invalid:
                        await actions.complete(qualify[deal_a], user, {"outcome": "maybe"}, key=None)
                    for _ in range(200):  # qualified: the proposal step opens on each
                        if sum(t["step_id"] == "proposal" for t in _rows(engine, tasks)) == 2:
                            break
                        await asyncio.sleep(0.1)
                    return api, web, repeat, repeat_added, invalid.value

    api, web, repeat, repeat_added, invalid = asyncio.run(body())
    assert api == web == repeat == {"step": "qualify", "status": "done"}
    assert repeat_added == 0  # the repeat replayed the first answer: no second completion, no second submission
    assert (invalid.status, invalid.message, invalid.errors) == (422, "The form has errors.", {
        "outcome": "Outcome must be one of: Worth pursuing, Not worth pursuing", "owner": "Opportunity owner is required"})
    with engine.connect() as conn:
        deals = {d: dict(records.get_record(conn, crm, "opportunity", d).data) for d in (deal_a, deal_b)}
    for d in deals.values():
        d.pop("name")
    assert deals[deal_a] == deals[deal_b]
    assert (deals[deal_a]["stage"], deals[deal_a]["owner"], deals[deal_a]["probability"]) == ("qualified", ann, 40)

    def trail(deal: int, name: str) -> list[tuple]:
        return [(h["kind"], h["summary"].replace(name, "DEAL")) for h in _rows(engine, contact_history)
                if h["entity"] == "opportunity" and h["record_id"] == deal]

    assert trail(deal_a, "Deal A") == trail(deal_b, "Deal B") == [
        ("task", "Task created: Qualify the enquiry: DEAL"), ("submission", "Qualification"), ("change", "Updated by Qualification"),
        ("task", "Task completed: Qualify the enquiry: DEAL"), ("task", "Task created: Send a proposal: DEAL")]
    steps = {d: sorted((t["step_id"], t["status"], t["assignee_id"]) for t in _rows(engine, tasks) if t["record_id"] == d) for d in deals}
    # the proposal goes to the owner the qualification named: the form's actions ran before the process moved on
    assert steps[deal_a] == steps[deal_b] == [("proposal", "open", ann), ("qualify", "done", ann)]


def _rows(engine: sa.Engine, table: sa.Table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(list(table.primary_key.columns)[0])).mappings()]
