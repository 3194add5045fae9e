"""Emails about tasks through the mail outbox, on the time-skipping server with a real SMTP server: an alert's emails are
written with the alert (one per group of recipients reading the same text in the same zone), never twice however often its
write is retried; an approval request emails the approver, and work sent back emails whoever did it."""
from __future__ import annotations

import asyncio
import datetime as dt
import email
import uuid
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from forms.widgets import when_text
from runtime.activities import Activities
from runtime.schema import alerts, mail_outbox, notifications, tasks, users
from runtime.worker import worker_options, workflow_runner
from runtime.workflows import ProcessWorkflow, TaskAction, process_input
from tests.runtime.conftest import sending
from tests.runtime.test_workflows import PACK, TEST_SERVER, _with_worker, _world, rows

ALERTING = {**PACK, "process.yaml": """
    kind: process
    name: follow_up
    entity: company
    steps:
      - id: call
        title: "Call {{ record.name }}"
        assign: owner
        due: 2 hours
        escalate:
          - {at: due, alert: [assignee, manager, role:director], message: "{{ task.title }} was due {{ task.due }}"}
    """}

APPROVING = {**PACK, "process.yaml": """
    kind: process
    name: offer
    entity: company
    steps:
      - {id: draft, title: "Draft the offer for {{ record.name }}", assign: owner}
      - {id: agree, approve: draft, title: Agree the offer, approvers: user:mia, due: 2 hours}
    """}


class AnswerLostOnce(Activities):
    """The alert's write commits, then its first attempt's answer is lost (the worker timed out waiting for the database,
    say): the workflow runs the write again."""

    attempts = 0

    @activity.defn(name="tailor.raise_alert")
    def raise_alert(self, req: dict) -> dict:
        out = Activities.raise_alert(self, req)
        type(self).attempts += 1
        if activity.info().attempt == 1:
            raise RuntimeError("the answer was lost")
        return out


def mails(world) -> list[tuple[list[str], email.message.Message]]:
    return [(sorted(to), email.message_from_string(content)) for to, content in world["inbox"].messages]


def text(message: email.message.Message) -> str:
    return message.get_payload(decode=True).decode().replace("\r\n", "\n")


def test_an_alert_is_emailed_once_per_recipient_group_in_their_zone_even_when_its_write_is_retried(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, ALERTING)
    ids, engine = world["ids"], world["engine"]
    with engine.begin() as conn:  # Bob, the assignee, reads in New York; Mia (sales' manager) and Dave (a director) in Tokyo
        conn.execute(users.update().where(users.c.id == ids["bob"]).values(time_zone="America/New_York"))
        conn.execute(users.update().where(users.c.id.in_([ids["mia"], ids["dave"]])).values(time_zone="Asia/Tokyo"))
    acts = AnswerLostOnce(world["acts"].engine, world["acts"].compiled, world["acts"].mail)
    spec = world["compiled"].process_specs["follow_up"]

    async def run():
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"q-{uuid.uuid4()}"
            with ThreadPoolExecutor(4) as pool:
                async with Worker(env.client, task_queue=queue, workflows=[ProcessWorkflow], activities=acts.all(),
                                  **worker_options(pool)), sending(engine, acts.mail):
                    start = await env.get_current_time()
                    handle = await env.client.start_workflow(
                        ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"],
                                                          record={"name": "Acme", "owner": ids["bob"]}, started_by=ids["ann"],
                                                          started_at=start.isoformat()), id="mail-1", task_queue=queue)
                    await env.sleep(2 * 3600 + 60)
                    await world["inbox"].received(2)
                    await asyncio.sleep(1)  # long enough for a third email, were one written
                    history = await handle.fetch_history()
        # the deadline scheduled no activity of its own (only the alert's write, a local activity), and the history
        # (with its alert-mail-outbox marker) replays under this code
        scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                     if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
        assert "tailor.email_alert" not in scheduled
        await Replayer(workflows=[ProcessWorkflow], workflow_runner=workflow_runner(guard=True)).replay_workflow(history)

    asyncio.run(run())
    assert AnswerLostOnce.attempts == 2  # the write ran twice
    [task] = rows(world, tasks)
    due = task["due_at"].replace(tzinfo=dt.UTC)
    [alert] = rows(world, alerts)
    assert alert["recipients"] == [ids["bob"], ids["mia"], ids["dave"]]
    assert len(rows(world, notifications, kind="alert")) == 3
    sent = {tuple(to): m for to, m in mails(world)}
    assert sorted(sent) == [("bob@example.com",), ("dave@example.com", "mia@example.com")]
    for to, zone in ((("bob@example.com",), "America/New_York"), (("dave@example.com", "mia@example.com"), "Asia/Tokyo")):
        said = text(sent[to])
        assert sent[to]["Subject"] == "[Tailor] Overdue: Call Acme"
        assert said.startswith(f"Call Acme was due {when_text(due, ZoneInfo(zone))}\n")
        assert f"Due: {when_text(due, ZoneInfo(zone))} ({zone})" in said and "With: Bob" in said
        assert f"Open it: http://127.0.0.1:8000/tasks/{task['id']}" in said
    assert sorted(m["Message-ID"].split("@")[0] for m in sent.values()) == [f"<tailor-alert-{alert['id']}", f"<tailor-alert-{alert['id']}-1"]
    assert rows(world, alerts)[0]["emailed_at"] is not None


def test_an_approval_request_emails_the_approver_and_a_rejection_emails_whoever_did_the_work(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, APPROVING)
    ids, engine = world["ids"], world["engine"]
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == ids["mia"]).values(time_zone="Asia/Tokyo"))
    spec = world["compiled"].process_specs["offer"]
    seen = {}

    async def body(env, queue):
        start = await env.get_current_time()
        handle = await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme", "owner": ids["bob"]},
                                              started_by=ids["ann"], started_at=start.isoformat()), id="offer-1", task_queue=queue)
        await env.sleep(5)
        await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="draft", user_id=ids["bob"]))
        await env.sleep(5)
        seen["asked"] = list(await world["inbox"].received(1))
        [ask] = rows(world, tasks, step_id="agree")
        await handle.execute_update(ProcessWorkflow.decide, TaskAction(step="agree", user_id=ids["mia"], approve=False,
                                                                       comment="the discount is too deep", task_id=ask["id"]))
        seen["back"] = list(await world["inbox"].received(2))
        await handle.terminate()
        return ask

    ask = asyncio.run(_with_worker(world, body))
    [(to, asked)] = [(to, email.message_from_string(c)) for to, c in seen["asked"]]
    assert to == ["mia@example.com"]
    assert asked["Subject"] == "[Tailor] Waiting for your approval: Agree the offer"
    due = ask["due_at"].replace(tzinfo=dt.UTC)
    assert text(asked) == (f"Bob asks for your approval.\n\nTask: Agree the offer\nDue: {when_text(due, ZoneInfo('Asia/Tokyo'))} "
                                   f"(Asia/Tokyo)\nOpen it: http://127.0.0.1:8000/tasks/{ask['id']}\n")
    [(to, back)] = [(to, email.message_from_string(c)) for to, c in seen["back"][1:]]
    [draft] = rows(world, tasks, step_id="draft")
    assert to == ["bob@example.com"]
    assert back["Subject"] == "[Tailor] Sent back for revision: Draft the offer for Acme"
    assert text(back).startswith("Mia sent this back for revision: the discount is too deep\n\nTask: Draft the offer for Acme\n")
    assert f"Open it: http://127.0.0.1:8000/tasks/{draft['id']}" in text(back)
    with engine.connect() as conn:  # each written once, with the event it tells of
        assert conn.execute(sa.select(sa.func.count()).select_from(mail_outbox)).scalar() == 2
