"""The outbox of process starts: enqueued with the change that causes them, started once (real databases, real Temporal)."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from temporalio.client import Client, WorkflowExecutionStatus

from forms.submit import submit
from runtime import records as R
from runtime.devserver import DevServer
from runtime.drainer import drain
from runtime.mail import MailSettings
from runtime.outbox import GRACE, enqueue
from runtime.schema import process_instances, process_starts, tasks
from runtime.starter import start_enqueued
from runtime.worker import make_worker
from tests.conftest import free_port
from tests.runtime.conftest import Store

TODAY = dt.date(2026, 3, 2)


@pytest.fixture
def temporal(tmp_path):
    """A Temporal dev server with Tailor's search attributes, fresh for each test: start keys repeat across tests."""
    with DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()) as server:
        yield server.address


def support_request(store: Store, conn: sa.Connection, summary: str = "Printer on fire") -> R.Record:
    """A support request: the CRM's support_sla process starts for every new one."""
    co = R.create_record(conn, store.compiled, "company", {"name": "Acme Ltd"}, store.alice, today=TODAY)
    return R.create_record(conn, store.compiled, "support_request", {"company": co.id, "summary": summary, "description": "Smoke", "category": "question"},
                           store.alice, today=TODAY)


def outbox_rows(store: Store) -> list[dict]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(process_starts).order_by(process_starts.c.id)).mappings()]


def test_a_record_change_enqueues_its_trigger_starts_in_the_same_transaction(store: Store):
    with store.begin() as conn:
        req = support_request(store, conn)
    assert req.starts == (f"support_sla/support_request-{req.id}-v1-created",)
    [row] = outbox_rows(store)
    assert (row["workflow_id"], row["process"], row["entity"], row["record_id"], row["started_by"], row["status"], row["attempts"]) == (
        req.starts[0], "support_sla", "support_request", req.id, store.alice, "pending", 0)

    with pytest.raises(RuntimeError):
        with store.begin() as conn:
            support_request(store, conn, "Rolled back")
            raise RuntimeError("the rest of the request failed")
    assert len(outbox_rows(store)) == 1  # the rolled-back change enqueued nothing

    with store.begin() as conn:
        co = R.create_record(conn, store.compiled, "company", {"name": "Globex", "status": "prospect"}, store.bob, today=TODAY)
        assert co.starts == ()  # onboarding starts when a company becomes a customer, not before
        won = R.update_record(conn, store.compiled, "company", co.id, {"status": "customer"}, store.bob, today=TODAY)
        again = R.update_record(conn, store.compiled, "company", co.id, {"phone": "+44 20 7946 0000"}, store.bob, today=TODAY)
    assert won.starts == (f"onboarding/company-{co.id}-v2-changed",)
    assert again.starts == ()  # already a customer: a new phone number onboards nobody
    assert [r["workflow_id"] for r in outbox_rows(store)] == [req.starts[0], won.starts[0]]


def test_a_submission_enqueues_its_form_trigger_and_a_replay_enqueues_nothing_more(store: Store):
    with store.begin() as conn:
        co = R.create_record(conn, store.compiled, "company", {"name": "Acme Ltd"}, store.alice, today=TODAY)
    user = {"id": store.alice, "name": "Alice", "email": "alice@example.com"}
    values = {"held_on": TODAY, "location": "video", "subject": "Quarterly review"}
    with store.begin() as conn:
        first = submit(conn, store.compiled, "meeting_note", values, submission_id="s-1", user=user, record_id=co.id)
    with store.begin() as conn:
        replay = submit(conn, store.compiled, "meeting_note", values, submission_id="s-1", user=user, record_id=co.id)
    assert first.starts == ["meeting_follow_up/s-1-form"] and replay.starts == first.starts and replay.replayed
    assert [(r["workflow_id"], r["record_id"]) for r in outbox_rows(store)] == [("meeting_follow_up/s-1-form", co.id)]


async def _with_worker(store: Store, address: str, queue: str, body):
    client = await Client.connect(address)
    with ThreadPoolExecutor(4) as pool:
        async with make_worker(client, store.engine, store.compiled, queue, MailSettings(), pool):
            return await body(client)


def test_a_start_left_behind_is_started_by_the_drainer_exactly_once(store: Store, temporal):
    with store.begin() as conn:  # committed, and then the web process died before starting it
        req = support_request(store, conn)
    [wid] = req.starts
    queue = f"outbox-{uuid.uuid4()}"

    async def body(client: Client):
        early = await drain(client, store.engine, store.compiled, queue)  # the request path's grace period is not over
        later = dt.datetime.now(dt.timezone.utc) + GRACE
        concurrent = await asyncio.gather(*[drain(client, store.engine, store.compiled, queue, now=later) for _ in range(3)])
        repeated = await drain(client, store.engine, store.compiled, queue, now=later)
        request_path = await start_enqueued(client, store.engine, store.compiled, queue, [wid])  # a late request path
        runs: list[str] = []
        for _ in range(100):  # the visibility store lists a new workflow a moment after its start
            runs = [w.run_id async for w in client.list_workflows(f"WorkflowId = '{wid}'")]
            if runs:
                break
            await asyncio.sleep(0.1)
        status = (await client.get_workflow_handle(wid).describe()).status
        for _ in range(100):  # the first step's task row is written by an activity
            if _rows(store, tasks, workflow_id=wid):
                break
            await asyncio.sleep(0.1)
        return early, concurrent, repeated, request_path, runs, status

    early, concurrent, repeated, request_path, runs, status = asyncio.run(_with_worker(store, temporal, queue, body))
    assert early == []
    assert wid in sum(concurrent, [])  # (each concurrent drain may have asked; Temporal kept one)
    assert repeated == [] and request_path == []
    assert len(runs) == 1 and status == WorkflowExecutionStatus.RUNNING
    assert len(_rows(store, process_instances, workflow_id=wid)) == 1
    assert [t["title"] for t in _rows(store, tasks, workflow_id=wid)] == ["Triage: Printer on fire"]
    [row] = outbox_rows(store)
    assert row["status"] == "started" and row["started_at"] is not None and row["last_error"] is None


def test_the_request_path_starts_its_own_rows_at_once(store: Store, temporal):
    with store.begin() as conn:
        req = support_request(store, conn)
    queue = f"outbox-{uuid.uuid4()}"

    async def body(client: Client):
        started = await start_enqueued(client, store.engine, store.compiled, queue, req.starts)
        drained = await drain(client, store.engine, store.compiled, queue, now=dt.datetime.now(dt.timezone.utc) + GRACE)
        return started, drained, (await client.get_workflow_handle(req.starts[0]).describe()).status

    started, drained, status = asyncio.run(_with_worker(store, temporal, queue, body))
    assert started == list(req.starts) and drained == [] and status == WorkflowExecutionStatus.RUNNING
    assert [r["status"] for r in outbox_rows(store)] == ["started"]


def test_starts_made_while_temporal_is_down_are_started_by_the_drainer_once_it_is_back(store: Store, tmp_path):
    with store.begin() as conn:  # one request, two changes that each start a process
        first, second = support_request(store, conn, "First"), support_request(store, conn, "Second")
    wids = [*first.starts, *second.starts]
    server = DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()).start()

    async def scenario():
        client = await Client.connect(server.address)
        await asyncio.to_thread(server.stop)
        during = await start_enqueued(client, store.engine, store.compiled, "down", wids)  # the changes stay saved
        rows = outbox_rows(store)
        await asyncio.to_thread(server.start)
        turn = max(r["next_attempt_at"] for r in rows).replace(tzinfo=dt.timezone.utc)
        after = await drain(client, store.engine, store.compiled, "down", now=turn)
        return during, rows, after, [(await client.get_workflow_handle(w).describe()).status for w in wids]

    try:
        during, rows, after, status = asyncio.run(scenario())
    finally:
        server.stop()
    assert during == []
    # the first start waited out the client's retries; the second was left for the drainer rather than wait as long again
    assert [(r["status"], r["attempts"], (r["last_error"] or "").split(":")[0]) for r in rows] == [("pending", 1, "RPCError"),
                                                                                                 ("pending", 0, "")]
    assert after == wids and status == [WorkflowExecutionStatus.RUNNING] * 2
    assert [(r["status"], r["last_error"]) for r in outbox_rows(store)] == [("started", None)] * 2


def test_failed_starts_stay_pending_with_their_error_and_deleted_records_are_given_up(store: Store, temporal):
    with store.begin() as conn:
        # enqueued by definitions that had a process this deployment does not
        retired = enqueue(conn, "retired_process", "company-1-v1-created", started_by=store.alice)
        req = support_request(store, conn)
    with store.begin() as conn:  # the record is deleted before its process could start
        table = store.compiled.metadata.tables["support_request"]
        conn.execute(table.delete().where(table.c.id == req.id))
    queue = f"outbox-{uuid.uuid4()}"
    later = dt.datetime.now(dt.timezone.utc) + GRACE

    async def body(client: Client):
        return [await drain(client, store.engine, store.compiled, queue, now=later + dt.timedelta(minutes=n)) for n in (0, 0, 10)]

    first, too_soon, after_backoff = asyncio.run(_with_worker(store, temporal, queue, body))
    assert first == too_soon == after_backoff == []
    by_id = {r["workflow_id"]: r for r in outbox_rows(store)}
    failed, gone = by_id[retired], by_id[req.starts[0]]
    # tried at once and 10 minutes later, not in between (its next turn was 1 s after the first failure)
    assert (failed["status"], failed["attempts"], failed["last_error"]) == (
        "pending", 2, "the process 'retired_process' is not in the loaded definitions")
    assert failed["next_attempt_at"].replace(tzinfo=dt.timezone.utc) == later + dt.timedelta(minutes=10, seconds=2)
    assert (gone["status"], gone["attempts"], gone["last_error"]) == (
        "abandoned", 1, f"not started: there is no support_request with id {req.id}")


def _rows(store: Store, table: sa.Table, **where) -> list[dict]:
    with store.connect() as conn:
        q = sa.select(table)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return [dict(r) for r in conn.execute(q).mappings()]
