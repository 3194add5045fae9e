"""The demo shows an escalation within minutes: the CRM pack's call-back process, on the time-skipping server
with the demo's users and records and a real SMTP server. Submitting 'Call-back request' on Acme Health (owned by
Ann) gives Ann a task due in 3 minutes; at 2 minutes she is reminded, at 3 Ann and her manager Mia are alerted,
at 4 the call is Mia's — all within 5 minutes of the submission."""
from __future__ import annotations

import asyncio
import email
import uuid
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from admin.demo import load_demo
from forms import submit as forms
from runtime import outbox
from runtime.activities import Activities
from runtime.mail import MailSettings
from runtime.schema import alerts, metadata as platform, notifications, tasks, users
from runtime.worker import make_worker
from runtime.workflows import ProcessWorkflow, process_input
from tests.runtime.conftest import sending
from tests.runtime.test_workflows import TEST_SERVER


def test_a_call_back_request_is_reminded_escalated_and_handed_over_within_five_minutes(crm, tmp_path, smtp):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'tailor.db'}")
    platform.create_all(engine)
    crm.metadata.create_all(engine)
    load_demo(engine, crm)
    company = crm.metadata.tables["company"]
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
        acme = conn.execute(sa.select(company.c.id).where(company.c.title == "Acme Health Ltd")).scalar_one()
    inbox, port = smtp
    acts = Activities(engine, crm, MailSettings(port=port))
    seen: dict[int, dict] = {}

    def state():
        with engine.connect() as conn:
            [task] = conn.execute(sa.select(tasks).where(tasks.c.process == "callback")).mappings().all()
            return dict(task), [dict(a) for a in conn.execute(sa.select(alerts).where(alerts.c.task_id == task["id"])).mappings()]

    async def body():
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"q-{uuid.uuid4()}"
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(env.client, engine, crm, queue, acts.mail, pool), sending(engine, acts.mail):
                    with engine.begin() as conn:  # Ann records the customer's request, as the form page does
                        user = dict(conn.execute(sa.select(users).where(users.c.id == ids["ann"])).mappings().one())
                        result = forms.submit(conn, crm, "callback_request", {"topic": "Renewal price"}, submission_id="demo-callback",
                                              user=user, record_id=acme)
                    with engine.connect() as conn:  # the outbox row the submission wrote, started as the drainer would
                        [row] = outbox.pending(conn, result.starts)
                        record = conn.execute(sa.select(company.c.data).where(company.c.id == acme)).scalar_one()
                    # (the time-skipping server has no custom search attributes: start it without them)
                    await env.client.start_workflow(ProcessWorkflow.run, process_input(
                        spec=crm.process_specs["callback"], entity="company", record_id=acme, record=record, inputs=row.inputs,
                        started_by=ids["ann"], started_at=(await env.get_current_time()).isoformat()), id=row.workflow_id, task_queue=queue)
                    for minute in (1, 2, 3, 4, 5):
                        await env.sleep(60)
                        await asyncio.sleep(0.5)  # the writes and mails are activities of their own
                        seen[minute] = {"task": state()[0], "alerts": state()[1], "mails": len(inbox.messages)}

    asyncio.run(body())
    first = seen[1]["task"]
    assert first["assignee_id"] == ids["ann"] and first["title"] == "Call back Acme Health Ltd: Renewal price"
    assert seen[2]["mails"] >= 1 and not seen[2]["alerts"]  # the reminder, a minute before the due time
    assert [a["level"] for a in seen[3]["alerts"]] == [1] and seen[3]["task"]["assignee_id"] == ids["ann"]
    assert set(seen[3]["alerts"][0]["recipients"]) == {ids["ann"], ids["mia"]}
    assert seen[4]["task"]["assignee_id"] == ids["mia"] and [a["level"] for a in seen[4]["alerts"]] == [1, 2]
    assert "taken from Ann Sales and given to their manager" in seen[4]["alerts"][1]["message"]
    subjects = {email.message_from_string(c)["Subject"] for _, c in inbox.messages}
    assert {"[Tailor] Reminder: Call back Acme Health Ltd: Renewal price", "[Tailor] Overdue: Call back Acme Health Ltd: Renewal price"} <= subjects
    with engine.connect() as conn:  # Mia hears of it in the app too: the alert, then the call handed to her
        told = [n.text for n in conn.execute(sa.select(notifications).where(notifications.c.user_id == ids["mia"]).order_by(notifications.c.id))]
    assert any("has not called yet" in t for t in told) and any(t.startswith("Handed to you: Call back Acme") for t in told)
