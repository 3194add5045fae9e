"""Moving running process instances to a new version (a pack's `migrate:`), on Temporal's time-skipping test server with a
real database: a mapped instance keeps its open task (row, assignee, due, the reminders it had) and goes on with the new
version's steps; without a move, a running instance finishes on its version while new starts use the new one."""
from __future__ import annotations

import asyncio
import copy

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Replayer

from engine.compiler import compile_model
from engine.instancemigration import step_map
from engine.loader import load
from runtime.instancemigration import Move, move_running, running_on
from runtime.schema import alerts, process_instances, tasks
from runtime.worker import workflow_runner
from runtime.workflows import ProcessWorkflow, TaskAction, process_input
from tests.runtime.test_workflows import PACK, _with_worker, _world, rows

V1 = """
kind: process
name: callback
entity: company
steps:
  - id: call
    title: "Call {{ record.name }}"
    assign: group:sales
    due: 2 hours
    reminders: [1 hour]
    escalate:
      - {at: due, alert: manager, message: "{{ task.title }} is late"}
  - id: thanks
    title: Say thanks
    assign: completer:call
"""
V2 = """
kind: process
name: callback
entity: company
steps:
  - id: call_customer
    title: "Call {{ record.name }} back"
    assign: group:sales
    due: 3 hours
    reminders: [1 hour]
    escalate:
      - {at: due, alert: manager, message: "{{ task.title }} is late"}
  - id: confirm
    title: Confirm by mail
    assign: completer:call_customer
  - id: thanks
    title: Say thanks
    assign: completer:call_customer
migrate:
  steps:
    call: call_customer
"""


def _pack(process: str) -> dict:
    return {**{k: v for k, v in PACK.items() if k != "process.yaml"}, "process.yaml": process}


@pytest.fixture
def versions(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, _pack(V1))
    world["v1"] = world["compiled"].process_specs["callback"]
    world["new"] = compile_model(load([packs.write("t2", _pack(V2))]))
    world["v2"] = world["new"].process_specs["callback"]
    return world


def _start(env, world, spec, wid, queue, start):
    ids = world["ids"]
    return env.client.start_workflow(
        ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme", "owner": ids["bob"]},
                                          started_by=ids["ann"], started_at=start.isoformat()), id=wid, task_queue=queue)


def _move(world) -> Move:
    return Move(world["v1"]["version"], world["v2"], step_map(world["new"].model.processes["callback"].migrate), "t 1.1.0")


def test_a_mapped_instance_moves_keeping_its_open_task_and_goes_on_with_the_new_versions_steps(versions):
    world, ids = versions, versions["ids"]

    async def body(env, queue):
        start = await env.get_current_time()
        moving = await _start(env, world, world["v1"], "callback-1", queue, start)
        staying = await _start(env, world, world["v1"], "callback-2", queue, start)
        await env.sleep(90 * 60)  # past the 1-hour reminder of both calls
        [before] = rows(world, tasks, workflow_id="callback-1")
        reminded = [to for to, _ in world["inbox"].messages]
        assert len(reminded) == 2  # one reminder per call

        with world["engine"].connect() as conn:
            waiting = running_on(conn, "callback", world["v1"]["version"])
        assert waiting == ["callback-1", "callback-2"]
        outcome = await move_running(env.client, ["callback-1"], _move(world))
        assert (outcome.moved, outcome.already, outcome.refused) == (1, 0, [])
        # the same moves again (a retried apply): nothing moves twice, nothing fails
        again = await move_running(env.client, ["callback-1"], _move(world))
        assert (again.moved, again.already, again.refused) == (0, 1, [])

        [after] = rows(world, tasks, workflow_id="callback-1")
        assert (after["id"], after["assignee_id"], after["due_at"], after["status"]) == (
            before["id"], before["assignee_id"], before["due_at"], "open")
        assert after["step_id"] == "call_customer"
        state = await moving.query(ProcessWorkflow.state)
        assert state["version"] == world["v2"]["version"]
        assert state["steps"]["call_customer"]["task_id"] == before["id"]
        versions_now = {r["workflow_id"]: r["version"] for r in rows(world, process_instances)}
        assert versions_now == {"callback-1": world["v2"]["version"], "callback-2": world["v1"]["version"]}

        # the kept due (2 hours after the start, not the new version's 3) arms the new version's ladder; its reminder,
        # an hour before, is past: it is not sent again
        await env.sleep(45 * 60)
        assert sorted(a["task_id"] for a in rows(world, alerts)) == sorted([before["id"], rows(world, tasks, workflow_id="callback-2")[0]["id"]])
        holder = next(f"{name}@example.com" for name, uid in ids.items() if uid == before["assignee_id"])
        assert [to for to, _ in world["inbox"].messages].count([holder]) == 1  # the one reminder before the move

        # a new start runs the new version
        fresh = await _start(env, world, world["v2"], "callback-3", queue, await env.get_current_time())
        await env.sleep(5)
        assert [t["step_id"] for t in rows(world, tasks, workflow_id="callback-3")] == ["call_customer"]

        await moving.execute_update(ProcessWorkflow.complete, TaskAction(step="call_customer", user_id=before["assignee_id"]))
        await staying.execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=before["assignee_id"]))
        await env.sleep(5)
        # the moved one goes on with the new version's next step; the other finishes on its own version
        assert [t["step_id"] for t in rows(world, tasks, workflow_id="callback-1")] == ["call_customer", "confirm"]
        assert [t["step_id"] for t in rows(world, tasks, workflow_id="callback-2")] == ["call", "thanks"]
        for wid, handle, steps in [("callback-1", moving, ["confirm", "thanks"]), ("callback-2", staying, ["thanks"])]:
            for step in steps:
                await env.sleep(5)
                await handle.execute_update(ProcessWorkflow.complete, TaskAction(step=step, user_id=before["assignee_id"]))
        moved_result, stayed_result = await moving.result(), await staying.result()
        await fresh.terminate()
        # both runs of the moved instance (the one that moved, the one that went on) replay under this code
        first = await env.client.get_workflow_handle("callback-1", run_id=moving.first_execution_run_id).fetch_history()
        second = await env.client.get_workflow_handle("callback-1").fetch_history()
        replayer = Replayer(workflows=[ProcessWorkflow], workflow_runner=workflow_runner(guard=True))
        for history in (first, second):
            await replayer.replay_workflow(history)
        assert first.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        return moved_result, stayed_result

    moved, stayed = asyncio.run(_with_worker(world, body))
    assert moved == {"steps": {"call_customer": "done", "confirm": "done", "thanks": "done"}}
    assert stayed == {"steps": {"call": "done", "thanks": "done"}}
    finished = {r["workflow_id"]: (r["status"], r["version"]) for r in rows(world, process_instances) if r["workflow_id"] != "callback-3"}
    assert finished == {"callback-1": ("completed", world["v2"]["version"]), "callback-2": ("completed", world["v1"]["version"])}


def test_a_move_that_leaves_an_open_step_without_a_place_or_names_another_version_is_refused_and_changes_nothing(versions):
    world = versions

    async def body(env, queue):
        handle = await _start(env, world, world["v1"], "callback-1", queue, await env.get_current_time())
        await env.sleep(60)
        refusals = []
        unmapped = Move(world["v1"]["version"], world["v2"], {}, "t 1.1.0")  # 'call' has no place in the new version
        wrong = Move("0123456789ab", world["v2"], {"call": "call_customer"}, "t 1.1.0")
        forged = Move(world["v1"]["version"], {**copy.deepcopy(world["v2"]), "label": "Changed"}, {"call": "call_customer"})
        for move in (unmapped, wrong, forged):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update(ProcessWorkflow.migrate, move)
            refusals.append(err.value.cause.message)
        outcome = await move_running(env.client, ["callback-1"], unmapped)
        history = [e.event_type for e in (await handle.fetch_history()).events]
        state = await handle.query(ProcessWorkflow.state)
        await handle.terminate()
        return refusals, outcome, history, state

    refusals, outcome, history, state = asyncio.run(_with_worker(world, body))
    assert refusals == [
        "step 'call' is open and the new version has no step 'call': the migration does not map it",
        f"it runs version {world['v1']['version']}, not 0123456789ab that this migration moves",
        "the new version's content does not match its hash"]
    assert outcome.moved == 0 and outcome.refused == [("callback-1", refusals[0])]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in history  # refused before entering history
    assert state["version"] == world["v1"]["version"]
    assert [(t["step_id"], t["status"]) for t in rows(world, tasks)] == [("call", "open")]
    assert [r["version"] for r in rows(world, process_instances)] == [world["v1"]["version"]]


APPROVAL_V1 = """
kind: process
name: callback
entity: company
steps:
  - id: offer
    title: Send an offer
    assign: owner
  - id: offer_ok
    approve: offer
    title: Approve the offer
    approvers: role:approver
    due: 1 hour
    escalate:
      - {at: due, alert: manager}
"""
APPROVAL_V2 = APPROVAL_V1.replace("id: offer_ok", "id: offer_approved").replace("""      - {at: due, alert: manager}
""", """      - {at: due, alert: manager}
  - id: send
    title: Post it
    assign: owner
""")


def test_an_instance_waiting_for_an_approval_moves_with_its_approvers_task_and_goes_on_after_the_decision(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, _pack(APPROVAL_V1))
    v1 = world["compiled"].process_specs["callback"]
    v2 = compile_model(load([packs.write("t2", _pack(APPROVAL_V2))])).process_specs["callback"]
    ids = world["ids"]

    async def body(env, queue):
        handle = await _start(env, world, v1, "callback-1", queue, await env.get_current_time())
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="offer", user_id=ids["bob"]))
        await env.sleep(5)
        [ask] = rows(world, tasks, step_id="offer_ok")
        outcome = await move_running(env.client, ["callback-1"], Move(v1["version"], v2, {"offer_ok": "offer_approved"}))
        assert (outcome.moved, outcome.refused) == (1, [])
        await env.sleep(3600 + 60)  # past the kept due: the new version's ladder alerts once
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="offer_approved", user_id=ids["mia"], approve=True,
                                                                       task_id=ask["id"]))
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="send", user_id=ids["bob"]))
        return await handle.result(), ask

    result, ask = asyncio.run(_with_worker(world, body))
    assert result == {"steps": {"offer": "done", "offer_approved": "done", "send": "done"}}
    assert [(t["id"], t["step_id"], t["status"]) for t in rows(world, tasks)] == [
        (ask["id"] - 1, "offer", "done"), (ask["id"], "offer_approved", "done"), (ask["id"] + 1, "send", "done")]
    assert [a["task_id"] for a in rows(world, alerts)] == [ask["id"]]


def test_carried_states_keep_done_steps_and_skip_the_new_steps_behind_the_open_one():
    from runtime.instancemigration import carry
    from runtime.interpreter import StepState

    old = {"steps": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}
    new = {"steps": [{"id": "intro"}, {"id": "a"}, {"id": "b2"}, {"id": "extra"}, {"id": "c"}]}
    states = {"a": StepState("done", task_id=1, data={"x": 1}), "b": StepState("open", task_id=2, assignee_id=7, due_at="2026-01-01T09:00:00+00:00"),
              "c": StepState()}
    carried, published = carry(old, new, {"b": "b2"}, states, {"a": {"outcome": "done", "data": {"x": 1}}}, StepState)
    assert {sid: s.status for sid, s in carried.items()} == {"intro": "skipped", "a": "done", "b2": "open", "extra": "pending", "c": "pending"}
    assert (carried["b2"].task_id, carried["b2"].assignee_id, carried["b2"].due_at) == (2, 7, "2026-01-01T09:00:00+00:00")
    assert published == {"a": {"outcome": "done", "data": {"x": 1}}} and carried["a"].data == {"x": 1}


def test_an_instance_refuses_a_move_in_words_when_its_open_steps_have_no_fitting_place():
    from runtime.instancemigration import refusal
    from runtime.interpreter import StepState

    old = {"name": "p", "version": "v1", "steps": [{"id": "work", "kind": "task"}, {"id": "ok", "kind": "approval", "approve": "work"}]}
    new_body = {"name": "p", "steps": [{"id": "work", "kind": "approval", "approve": "x"}, {"id": "ok", "kind": "approval", "approve": "work"}]}
    import hashlib

    from engine.compiler import canonical_json
    digest = hashlib.sha256(canonical_json(new_body).encode()).hexdigest()
    new = {**new_body, "hash": digest, "version": digest[:12]}
    move = Move("v1", new, {})
    assert refusal(old, {"work": StepState("open", task_id=1), "ok": StepState()}, move) == (
        "Unmapped", "open step 'work' is a task step, but 'work' it maps to is an approval step")
    assert refusal(old, {"work": StepState("open", task_id=1, outcome="rejected"), "ok": StepState("rejected")}, move) == (
        "Conflict", "'work' was sent back for revision: it can move once it is resubmitted and 'ok' decided")
    assert refusal(old, {"work": StepState("open"), "ok": StepState()}, Move("v1", {**new, "steps": [{"id": "work", "kind": "task"}]}))[0] == "Invalid"


PARALLEL_V1 = """
kind: process
name: callback
entity: company
steps:
  - id: both
    parallel:
      left:
        - {id: x, title: Left, assign: owner}
      right:
        - {id: y, title: Right, assign: owner}
  - {id: z, title: After, assign: owner}
"""
PARALLEL_V2 = PARALLEL_V1.replace("id: y,", "id: y2,").replace("  - {id: z, title: After, assign: owner}\n", """\
  - {id: z, title: After, assign: owner}
  - {id: last, title: Last, assign: owner}
""")


def test_an_instance_inside_parallel_branches_moves_and_the_branches_join_under_the_new_version(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, _pack(PARALLEL_V1))
    v1 = world["compiled"].process_specs["callback"]
    v2 = compile_model(load([packs.write("t2", _pack(PARALLEL_V2))])).process_specs["callback"]
    bob = world["ids"]["bob"]

    async def body(env, queue):
        handle = await _start(env, world, v1, "callback-1", queue, await env.get_current_time())
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="x", user_id=bob))
        outcome = await move_running(env.client, ["callback-1"], Move(v1["version"], v2, {"y": "y2"}))
        assert (outcome.moved, outcome.refused) == (1, [])
        for step in ("y2", "z", "last"):
            await env.sleep(5)
            await handle.execute_update(ProcessWorkflow.complete, TaskAction(step=step, user_id=bob))
        return await handle.result()

    result = asyncio.run(_with_worker(world, body))
    assert result == {"steps": {"both": "done", "x": "done", "y2": "done", "z": "done", "last": "done"}}
    assert [(t["step_id"], t["status"]) for t in rows(world, tasks)] == [("x", "done"), ("y2", "done"), ("z", "done"), ("last", "done")]
