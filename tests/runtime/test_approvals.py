"""Approval steps on Temporal's time-skipping test server: straight to the approvers, never to the requester; a
rejection with its reason sends the work back; decide any or all; refusals that never enter the history."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from engine.compiler import compile_model
from engine.loader import load
from runtime.activities import Activities
from runtime.mail import MailSettings
from runtime.schema import alerts, contact_history, group_members, metadata as platform, notifications, tasks, users
from runtime.workflows import ProcessWorkflow, TaskAction, process_input
from tests.runtime.test_workflows import PACK, _with_worker, _world, rows

APPROVAL_PACK = {
    "company.yaml": """
        kind: entity
        name: company
        title: "{{ record.name }}"
        fields:
          name: {type: string, required: true}
          value: {type: money, currency: GBP}
          owner: user
        """,
    "people.yaml": """
        kind: role
        name: staff
        permissions: [access, manage_own_tasks]
        ---
        kind: role
        name: director
        permissions: [access, manage_own_tasks, approve_tasks]
        ---
        kind: role
        name: monitor
        permissions: [access, manage_own_tasks, approve_tasks, monitor_tasks]
        ---
        kind: group
        name: sales
        ---
        kind: group
        name: nobody_here
        label: Empty desk
        """,
    "forms.yaml": """
        kind: form
        name: proposal
        entity: company
        fields:
          amount: {type: money, currency: GBP, required: true}
          discount: {type: integer, min: 0, max: 100}
          reason: text
        """,
    "process.yaml": """
        kind: process
        name: discount
        entity: company
        steps:
          - id: propose
            title: "Propose a discount for {{ record.name }}"
            assign: owner
            form: proposal
          - id: approve_discount
            approve: propose
            title: "Approve a {{ steps.propose.data.discount }}% discount for {{ record.name }}"
            approvers: role:director
            show: [record.value, propose.discount, propose.reason]
          - id: send
            title: Send the offer
            assign: owner
        ---
        kind: process
        name: both
        entity: company
        steps:
          - {id: propose, title: Propose, assign: owner, form: proposal}
          - {id: agree, approve: propose, title: Both agree, approvers: [user:dana, user:eve], decide: all}
        ---
        kind: process
        name: own
        entity: company
        steps:
          - {id: propose, title: Propose, assign: owner, form: proposal}
          - {id: agree, approve: propose, title: Approve it, approvers: user:bob}
        ---
        kind: process
        name: own_fallback
        entity: company
        steps:
          - {id: propose, title: Propose, assign: owner, form: proposal}
          - {id: agree, approve: propose, title: Approve it, approvers: user:bob, fallback: user:eve}
        ---
        kind: process
        name: empty
        entity: company
        steps:
          - {id: propose, title: Propose, assign: owner, form: proposal}
          - {id: agree, approve: propose, title: Approve it, approvers: group:nobody_here}
        ---
        kind: process
        name: timed
        entity: company
        steps:
          - {id: propose, title: Propose, assign: owner, form: proposal}
          - id: agree
            approve: propose
            title: Approve it in time
            approvers: user:dana
            due: 2 hours
            reminders: [1 hour]
            escalate:
              - {at: due, alert: user:mia}
              - {at: due + 1 hour, reassign: owner}
              - {at: due + 2 hours, reassign: user:max}
        """,
}
PEOPLE = [("bob", "Bob Sales", ["staff"]), ("dana", "Dana Director", ["director"]), ("eve", "Eve Director", ["director"]),
          ("mia", "Mia Manager", ["director"]), ("max", "Max Monitor", ["monitor"])]
PROPOSAL = {"amount": "1000.00", "discount": 20, "reason": "a long-standing customer"}


@pytest.fixture
def world(packs, tmp_path, smtp):
    compiled = compile_model(load([packs.write("t", APPROVAL_PACK)]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'tailor.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        for username, name, roles in PEOPLE:
            conn.execute(users.insert().values(username=username, name=name, email=f"{username}@example.com", roles=roles,
                                               password_hash="argon2-hash", created_at=now))
        ids = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
        conn.execute(group_members.insert(), [{"group_name": "sales", "user_id": ids["bob"], "manager": False},
                                              {"group_name": "sales", "user_id": ids["mia"], "manager": True}])
        company = compiled.metadata.tables["company"]
        record_id = conn.execute(company.insert().values(title="Acme", data={"name": "Acme", "owner": ids["bob"], "value": "5000"},
                                                         record_fields={}, created_at=now, updated_at=now)).inserted_primary_key[0]
    inbox, port = smtp
    return {"compiled": compiled, "engine": engine, "ids": ids, "record_id": record_id, "inbox": inbox,
            "acts": Activities(engine, compiled, MailSettings(port=port))}


async def start(env, world, queue, process: str, wid: str) -> WorkflowHandle:
    spec = world["compiled"].process_specs[process]
    return await env.client.start_workflow(
        ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme"},
                                          started_by=world["ids"]["bob"], started_at=(await env.get_current_time()).isoformat()),
        id=wid, task_queue=queue)


async def accepted_updates(handle: WorkflowHandle) -> list[str]:
    """The names of the updates the history holds: a refused one is not among them."""
    history = await handle.fetch_history()
    return [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name for e in history.events
            if e.HasField("workflow_execution_update_accepted_event_attributes")]


async def refused(handle: WorkflowHandle, update, action: TaskAction) -> tuple[str, str]:
    """(type, message) of an update the validator refuses; and it left no trace in the history."""
    before = await accepted_updates(handle)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(update, action)
    assert await accepted_updates(handle) == before
    return err.value.cause.type, err.value.cause.message


def summaries(world) -> list[str]:
    return [h["summary"] for h in rows(world, contact_history)]


def test_the_approvers_get_it_directly_a_rejection_with_a_reason_goes_back_and_the_revision_is_approved(world):
    ids = world["ids"]

    async def body(env, queue):
        handle = await start(env, world, queue, "discount", "discount-1")
        await env.sleep(5)
        [propose] = rows(world, tasks, step_id="propose")
        assert propose["assignee_id"] == ids["bob"]
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="propose", user_id=ids["bob"], data=PROPOSAL))
        await env.sleep(5)
        # straight to both directors, never to bob; what they decide on is named in the subject
        asks = rows(world, tasks, step_id="approve_discount")
        assert [(a["assignee_id"], a["kind"], a["round"], a["status"], a["key"]) for a in asks] == [
            (ids[u], "approval", 1, "open", f"discount-1:approve_discount:r1:u{ids[u]}") for u in ("dana", "eve", "mia")]
        assert asks[0]["title"] == "Approve a 20% discount for Acme"
        assert asks[0]["subject"] == {"of": "propose", "task_id": propose["id"], "show": ["record.value", "propose.discount", "propose.reason"]}
        assert asks[0]["data"] == {**PROPOSAL, "discount": 20}  # the work as it was submitted for this round
        assert [(n["user_id"], n["kind"], n["text"]) for n in rows(world, notifications, kind="approval")] == [
            (ids[u], "approval", "Waiting for your approval: Approve a 20% discount for Acme") for u in ("dana", "eve", "mia")]
        dana, eve, _ = asks

        # refused before history: a rejection without a reason, bob deciding on his own work, someone else's task
        assert await refused(handle, ProcessWorkflow.decide, TaskAction(step="approve_discount", user_id=ids["dana"], approve=False,
                                                                         comment="  ", task_id=dana["id"])) == (
            "Invalid", "say why you are sending it back")
        assert await refused(handle, ProcessWorkflow.decide, TaskAction(step="approve_discount", user_id=ids["bob"], approve=True,
                                                                         task_id=dana["id"])) == (
            "Forbidden", "you submitted this work, so someone else must approve it")
        assert await refused(handle, ProcessWorkflow.decide, TaskAction(step="approve_discount", user_id=ids["eve"], approve=True,
                                                                         task_id=dana["id"])) == (
            "Forbidden", "this approval is waiting for someone else's decision")
        assert (await refused(handle, ProcessWorkflow.complete, TaskAction(step="approve_discount", user_id=ids["dana"],
                                                                            task_id=dana["id"])))[0] == "Invalid"
        assert [t["status"] for t in rows(world, tasks, step_id="approve_discount")] == ["open"] * 3

        # dana sends it back: the others' tasks are no longer needed; bob's task is open again, with her reason
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="approve_discount", user_id=ids["dana"], approve=False,
                                                                       comment="Too steep for a first order", task_id=dana["id"]))
        decided = {t["assignee_id"]: t for t in rows(world, tasks, step_id="approve_discount")}
        assert (decided[ids["dana"]]["status"], decided[ids["dana"]]["outcome"], decided[ids["dana"]]["reason"]) == (
            "done", "rejected", "Too steep for a first order")
        assert [decided[ids[u]]["status"] for u in ("eve", "mia")] == ["cancelled", "cancelled"]
        [propose] = rows(world, tasks, step_id="propose")
        assert (propose["status"], propose["round"], propose["reason"], propose["assignee_id"], propose["data"]["discount"]) == (
            "open", 2, "Too steep for a first order", ids["bob"], 20)
        assert [(n["user_id"], n["text"], n["link"]) for n in rows(world, notifications, kind="returned")] == [
            (ids["bob"], "Sent back by Dana Director: Too steep for a first order", f"/tasks/{propose['id']}")]
        assert (await refused(handle, ProcessWorkflow.decide, TaskAction(step="approve_discount", user_id=ids["eve"], approve=True,
                                                                          task_id=eve["id"])))[0] == "Conflict"

        # the revision is checked like the first submission, then a new round goes to the approvers
        assert (await refused(handle, ProcessWorkflow.complete, TaskAction(step="propose", user_id=ids["bob"],
                                                                            data={"discount": 15})))[0] == "Invalid"
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="propose", user_id=ids["bob"],
                                                                         data={**PROPOSAL, "discount": 15}))
        await env.sleep(5)
        second = rows(world, tasks, step_id="approve_discount", round=2)
        assert [(t["assignee_id"], t["title"]) for t in second] == [(ids[u], "Approve a 15% discount for Acme") for u in ("dana", "eve", "mia")]
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="approve_discount", user_id=ids["eve"], approve=True,
                                                                       task_id=second[1]["id"]))
        await env.sleep(5)
        assert [t["status"] for t in rows(world, tasks, step_id="approve_discount", round=2)] == ["cancelled", "done", "cancelled"]
        assert [t["assignee_id"] for t in rows(world, tasks, step_id="send")] == [ids["bob"]]
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="send", user_id=ids["bob"]))
        return await handle.result()

    result = asyncio.run(_with_worker(world, body))
    assert result == {"steps": {"propose": "done", "approve_discount": "done", "send": "done"}}
    said = summaries(world)
    assert "Rejected by Dana Director: Too steep for a first order" in said
    assert "Sent back to Bob Sales for revision: Propose a discount for Acme" in said
    assert "Approval no longer needed from Eve Director: Dana Director decided" in said
    assert "Approved by Eve Director" in said
    assert said.count("Approval requested from Dana Director: Approve a 20% discount for Acme") == 1


def test_decide_all_needs_every_approval_and_one_rejection_rejects(world):
    ids = world["ids"]

    async def body(env, queue):
        handle = await start(env, world, queue, "both", "both-1")
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="propose", user_id=ids["bob"], data=PROPOSAL))
        await env.sleep(5)
        dana, eve = rows(world, tasks, step_id="agree")
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="agree", user_id=ids["dana"], approve=True, task_id=dana["id"]))
        await env.sleep(5)
        state = await handle.query(ProcessWorkflow.state)
        assert state["steps"]["agree"]["status"] == "open" and rows(world, tasks, id=eve["id"])[0]["status"] == "open"
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="agree", user_id=ids["eve"], approve=False,
                                                                       comment="Not this quarter", task_id=eve["id"]))
        assert rows(world, tasks, step_id="propose")[0]["status"] == "open"  # one rejection rejects
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="propose", user_id=ids["bob"], data=PROPOSAL))
        await env.sleep(5)
        dana, eve = rows(world, tasks, step_id="agree", round=2)
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="agree", user_id=ids["eve"], approve=True, task_id=eve["id"]))
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="agree", user_id=ids["dana"], approve=True, task_id=dana["id"],
                                                                       comment="Fine by me"))
        return await handle.result()

    assert asyncio.run(_with_worker(world, body)) == {"steps": {"propose": "done", "agree": "done"}}
    assert [(t["round"], t["outcome"]) for t in rows(world, tasks, step_id="agree")] == [
        (1, "approved"), (1, "rejected"), (2, "approved"), (2, "approved")]
    assert "Approved by Dana Director: Fine by me" in summaries(world)


@pytest.mark.parametrize("process, holder, routed", [
    ("own", "mia", "Bob Sales submitted this work and may not approve it, so it came to Mia Manager, a manager of Sales."),
    ("own_fallback", "eve", "Bob Sales submitted this work and may not approve it, so it came to Eve Director, who is named to "
                            "decide when the approvers cannot."),
    ("empty", "max", "Nobody who may approve it is the Empty desk group, so it came to Max Monitor, who may monitor tasks."),
])
def test_when_the_approvers_name_nobody_but_the_requester_a_fallback_decides_and_the_task_says_why(world, process, holder, routed):
    ids = world["ids"]

    async def body(env, queue):
        handle = await start(env, world, queue, process, f"{process}-1")
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="propose", user_id=ids["bob"], data=PROPOSAL))
        await env.sleep(5)
        [ask] = rows(world, tasks, step_id="agree")
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="agree", user_id=ask["assignee_id"], approve=True,
                                                                       task_id=ask["id"]))
        await handle.result()
        return ask

    ask = asyncio.run(_with_worker(world, body))
    assert (ask["assignee_id"], ask["routed"]) == (ids[holder], routed)


def test_an_approval_is_reminded_escalated_and_never_handed_to_the_requester(world):
    ids = world["ids"]

    async def body(env, queue):
        handle = await start(env, world, queue, "timed", "timed-1")
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="propose", user_id=ids["bob"], data=PROPOSAL))
        await env.sleep(3600 + 60)  # the reminder, an hour before due
        reminded = sorted((to, email.message_from_string(content)["Subject"]) for to, content in await world["inbox"].received(2))
        await env.sleep(3600)  # due: mia hears of it
        first = [(a["level"], a["recipients"]) for a in rows(world, alerts)]
        await env.sleep(3600)  # due + 1 hour: the owner would get it, but bob is the requester, so it stays with dana
        [ask] = rows(world, tasks, step_id="agree")
        stays = (ask["assignee_id"], [a["message"] for a in rows(world, alerts)][1:])
        await env.sleep(3600)  # due + 2 hours: to max, who decides
        [ask] = rows(world, tasks, step_id="agree")
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="agree", user_id=ids["max"], approve=True, task_id=ask["id"]))
        await handle.result()
        return reminded, first, stays, ask

    reminded, first, stays, ask = asyncio.run(_with_worker(world, body))
    assert reminded == [(["dana@example.com"], "[Tailor] Reminder: Approve it in time"),  # and her request, once
                        (["dana@example.com"], "[Tailor] Waiting for your approval: Approve it in time")]
    assert first == [(1, [ids["mia"]])]
    assert stays[0] == ids["dana"] and "could not be handed on: nobody it names may approve it (its requester never may)" in stays[1][0]
    assert ask["assignee_id"] == ids["max"]


def _recorded_spec() -> dict:
    """The follow_up spec as compiled before approval steps (its 'offer' task carries its own approver): the input of the
    history test_replay.py replays."""
    history = json.loads((Path(__file__).parent / "histories" / "follow_up-35cbec9.json").read_text())
    payload = history["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    return json.loads(base64.b64decode(payload["data"]))["spec"]


def test_a_process_started_from_a_spec_compiled_before_approval_steps_keeps_its_awaiting_approval_path(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, PACK)
    ids = world["ids"]
    spec = _recorded_spec()
    assert spec["steps"][1]["approval"] == {"kind": "role", "name": "director"}

    async def body(env, queue):
        handle = await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme"},
                                              started_by=ids["ann"]), id="old-1", task_queue=queue)
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=ids["ann"], data={"outcome": "interested"}))
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="offer", user_id=ids["bob"]))
        assert rows(world, tasks, step_id="offer")[0]["status"] == "awaiting_approval"
        assert await refused(handle, ProcessWorkflow.decide, TaskAction(step="offer", user_id=ids["bob"], approve=True)) == (
            "Forbidden", "you submitted this work, so someone else must approve it")
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="offer", user_id=ids["dave"], approve=False, comment="no"))
        assert rows(world, tasks, step_id="offer")[0]["status"] == "open"
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="offer", user_id=ids["bob"]))
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="offer", user_id=ids["dave"], approve=True))
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="thanks", user_id=ids["ann"]))
        return await handle.result()

    assert asyncio.run(_with_worker(world, body)) == {"steps": {"call": "done", "offer": "done", "thanks": "done"}}
    offer = rows(world, tasks, step_id="offer")[0]
    assert (offer["kind"], offer["outcome"]) == ("task", "approved")
    assert len(rows(world, tasks)) == 3  # no approval tasks: the old path
