"""Alerts and reminders speak like people: `task.due` is a local time, `task.assignee` a name, in the alert, its
email and the reminder (on the time-skipping server, with a real SMTP server); the raw values stay available."""
from __future__ import annotations

import asyncio
import datetime as dt
import email
import re
from zoneinfo import ZoneInfo

from forms.widgets import when_text
from runtime.schema import alerts, notifications, tasks, users
from runtime.workflows import ProcessWorkflow, process_input
from tests.runtime.test_workflows import PACK, _with_worker, _world, rows

LONDON = ZoneInfo("Europe/London")  # the pack's calendar: the organisation's zone
HUMAN = r"[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2}( \d{4})?, \d{2}:\d{2}"  # 'Thu 3 Dec, 09:00'

MESSAGES = {**PACK, "process.yaml": """
    kind: process
    name: follow_up
    entity: company
    calendar: office
    steps:
      - id: call
        title: "Call {{ record.name }}"
        assign: owner
        due: 2 hours
        reminders: ["1 hour"]
        escalate:
          - {at: due, alert: manager, message: "{{ task.title }} was due {{ task.due }} and is still with {{ task.assignee }} ({{ task.assignee_id }}, {{ task.due_at }})"}
    """}


def test_alerts_and_reminders_name_the_assignee_and_give_the_due_time_in_local_time(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, MESSAGES)
    ids, engine = world["ids"], world["engine"]
    with engine.begin() as conn:  # Bob (the owner, in sales) reads his reminders in New York; Mia, sales' manager, chose nothing
        conn.execute(users.update().where(users.c.id == ids["bob"]).values(time_zone="America/New_York"))
    spec = world["compiled"].process_specs["follow_up"]

    async def body(env, queue):
        start = await env.get_current_time()
        await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme", "owner": ids["bob"]},
                                              started_by=ids["ann"], started_at=start.isoformat()), id="messages-1", task_queue=queue)
        await env.sleep(2 * 3600 + 120)  # past the reminder and the due time
        for _ in range(50):  # the emails are activities of their own
            if len(world["inbox"].messages) >= 2:
                break
            await asyncio.sleep(0.2)

    asyncio.run(_with_worker(world, body))
    [task] = rows(world, tasks)
    due = task["due_at"].replace(tzinfo=dt.UTC)
    [alert] = rows(world, alerts)
    assert alert["message"] == (f"Call Acme was due {when_text(due, LONDON)} and is still with Bob ({ids['bob']}, {due.isoformat()})")
    assert re.fullmatch(HUMAN, when_text(due, LONDON))

    mails = {m["Subject"]: m for m in (email.message_from_string(content) for _, content in world["inbox"].messages)}
    overdue, reminder = mails["[Tailor] Overdue: Call Acme"], mails["[Tailor] Reminder: Call Acme"]
    text = overdue.get_payload()
    assert f"Due: {when_text(due, LONDON)} (Europe/London)" in text and "With: Bob" in text
    assert due.isoformat() not in "\n".join(text.splitlines()[1:])  # the raw value only where the template asked for it
    assert f"This task is due {when_text(due, ZoneInfo('America/New_York'))} (America/New_York)." in reminder.get_payload()
    assert "+00:00" not in reminder.get_payload()


ZONED = {**PACK, "process.yaml": """
    kind: process
    name: follow_up
    entity: company
    calendar: office
    steps:
      - id: call
        title: "Call {{ record.name }}"
        assign: owner
        due: 2 hours
        escalate:
          - {at: due, alert: [assignee, manager], message: "{{ task.title }} was due {{ task.due }}; {{ record.owner }} owns {{ record.name }} (user {{ record.raw.owner }})"}
    """}


def test_each_recipient_reads_the_alert_in_their_own_time_zone_with_the_records_values_as_words(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, ZONED)
    ids, engine = world["ids"], world["engine"]
    with engine.begin() as conn:  # Bob, the assignee, in New York; Mia, sales' manager, in Tokyo
        conn.execute(users.update().where(users.c.id == ids["bob"]).values(time_zone="America/New_York"))
        conn.execute(users.update().where(users.c.id == ids["mia"]).values(time_zone="Asia/Tokyo"))
    spec = world["compiled"].process_specs["follow_up"]

    async def body(env, queue):
        start = await env.get_current_time()
        await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme", "owner": ids["bob"]},
                                              started_by=ids["ann"], started_at=start.isoformat()), id="messages-2", task_queue=queue)
        await env.sleep(2 * 3600 + 120)
        for _ in range(50):
            if len(world["inbox"].messages) >= 2:
                break
            await asyncio.sleep(0.2)

    asyncio.run(_with_worker(world, body))
    [task] = rows(world, tasks)
    due = task["due_at"].replace(tzinfo=dt.UTC)
    said = lambda zone: f"Call Acme was due {when_text(due, ZoneInfo(zone))}; Bob owns Acme (user {ids['bob']})"  # noqa: E731
    [alert] = rows(world, alerts)
    assert alert["message"] == said("Europe/London")  # the alert itself: the organisation's zone
    told = {n["user_id"]: n["text"] for n in rows(world, notifications)}
    assert told == {ids["bob"]: said("America/New_York"), ids["mia"]: said("Asia/Tokyo")}
    inbox = {tuple(to): email.message_from_string(content).get_payload() for to, content in world["inbox"].messages}
    assert said("Asia/Tokyo") in inbox[("mia@example.com",)] and "(Asia/Tokyo)" in inbox[("mia@example.com",)]
    assert said("America/New_York") in inbox[("bob@example.com",)] and "(America/New_York)" in inbox[("bob@example.com",)]
