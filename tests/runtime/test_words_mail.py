"""The emails' frame in the reader's language: an overdue alert, a reminder, an approval request and sent-back work say
"Aufgabe:", "Fällig:", "Öffnen:" to a German reader and "Task:", "Due:", "Open it:" to one who chose no language; the
subject keeps its "[Tailor]" tag. End to end on the time-skipping server with a real SMTP server too."""
from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from engine.compiler import compile_model
from engine.loader import load
from forms.widgets import when_text
from runtime import messages
from runtime.schema import metadata as platform
from runtime.schema import tasks, users
from runtime.workflows import ProcessWorkflow, process_input
from tests.conftest import CRM
from tests.runtime.test_workflows import PACK, _with_worker, _world, rows

CLIENT = {
    "check.yaml": """
        kind: process
        name: check_in
        entity: company
        steps:
          - {id: call, title: Call the customer, assign: group:sales}
        """,
    "locales/de.yaml": """
        kind: labels
        locale: de
        processes:
          check_in:
            label: Nachfrage
            steps: {call: Den Kunden anrufen}
        """,
}
TASK = {"id": 7, "title": "Call the customer", "process": "check_in", "step_id": "call", "entity": "company", "record_id": 1,
        "group_name": "sales", "assignee_id": None, "due_at": "2030-07-01T08:00:00+00:00"}
LINK = "http://tailor/tasks/7"


@pytest.fixture
def mail_site(packs, tmp_path):
    compiled = compile_model(load([CRM, packs.write("client", CLIENT, extends="crm: '>=1.0'")]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'mail.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        ids = {name: conn.execute(users.insert().values(username=name, name=name.title(), roles=["staff"], password_hash="-", locale=locale,
                                                        time_zone="Europe/Berlin", created_at=now)).inserted_primary_key[0]
               for name, locale in (("ann", None), ("uwe", "de"))}
    return compiled, engine, ids


def test_an_overdue_alert_has_a_german_frame_for_a_german_reader(mail_site):
    compiled, engine, ids = mail_site
    alert = {"recipients": [ids["ann"], ids["uwe"]], "message": "Call the customer is late", "level": 1}
    with engine.connect() as conn:
        mails = {tuple(to): (subject, body) for to, subject, body in messages.alert_mails(conn, compiled.model, alert, TASK, {}, LINK,
                                                                                              {u: r.reader for u, r in messages.recipients(conn, compiled.model, alert["recipients"]).items()})}
    due = when_text(dt.datetime(2030, 7, 1, 8, tzinfo=dt.UTC), ZoneInfo("Europe/Berlin"))
    due_de = when_text(dt.datetime(2030, 7, 1, 8, tzinfo=dt.UTC), ZoneInfo("Europe/Berlin"), locale="de")
    assert due_de == "Mo., 1. Juli 2030, 10:00"  # the date too in the reader's words
    subject, body = mails[(ids["uwe"],)]
    assert subject == "[Tailor] Überfällig: Den Kunden anrufen"
    assert body.splitlines()[2:] == ["Aufgabe: Den Kunden anrufen", f"Fällig: {due_de} (Europe/Berlin)", "Bei: Warteschlange Vertrieb",
                                     f"Öffnen: {LINK}"]
    subject, body = mails[(ids["ann"],)]
    assert subject == "[Tailor] Overdue: Call the customer"
    assert body.splitlines()[2:] == ["Task: Call the customer", f"Due: {due} (Europe/Berlin)", "With: the Sales queue", f"Open it: {LINK}"]


def test_a_reminder_an_approval_request_and_sent_back_work_read_in_their_readers_language(mail_site):
    compiled, engine, ids = mail_site
    model = compiled.model
    uwe, ann = {**TASK, "assignee_id": ids["uwe"]}, {**TASK, "assignee_id": ids["ann"]}
    due = when_text(dt.datetime(2030, 7, 1, 8, tzinfo=dt.UTC), ZoneInfo("Europe/Berlin"), locale="de")
    with engine.connect() as conn:
        assert messages.reminder_mail(conn, model, uwe, LINK) == (
            "[Tailor] Erinnerung: Den Kunden anrufen", f"Diese Aufgabe ist fällig am {due} (Europe/Berlin).\nÖffnen: {LINK}\n")
        assert messages.reminder_mail(conn, model, {**ann, "due_at": None}, LINK) == (
            "[Tailor] Reminder: Call the customer", f"This task is waiting for you.\nOpen it: {LINK}\n")
        subject, body = messages.approval_mail(conn, model, uwe, "Mia", LINK)
        assert subject == "[Tailor] Wartet auf Ihre Freigabe: Den Kunden anrufen"
        assert body.startswith("Mia bittet um Ihre Freigabe.\n\nAufgabe: Den Kunden anrufen\n")
        subject, body = messages.approval_mail(conn, model, ann, "Mia", LINK)
        assert subject == "[Tailor] Waiting for your approval: Call the customer" and body.startswith("Mia asks for your approval.\n")
        subject, body = messages.sent_back_mail(conn, model, uwe, "Mia", "Preis fehlt", LINK)
        assert subject == "[Tailor] Zur Überarbeitung zurückgegeben: Den Kunden anrufen"
        assert body.startswith("Mia hat dies zur Überarbeitung zurückgegeben: Preis fehlt\n") and f"Öffnen: {LINK}" in body
        subject, body = messages.sent_back_mail(conn, model, ann, "Mia", "", LINK)
        assert subject == "[Tailor] Sent back for revision: Call the customer" and body.startswith("Mia sent this back for revision.\n")


GERMAN = {**PACK, "process.yaml": """
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
          - {at: due, alert: [assignee, manager]}
    """, "locales/de.yaml": """
    kind: labels
    locale: de
    """}


def test_a_german_assignee_gets_a_german_reminder_and_alert_by_smtp_their_english_manager_english(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, GERMAN)
    ids, engine = world["ids"], world["engine"]
    with engine.begin() as conn:  # Bob, the owner, reads German; Mia, sales' manager, chose nothing
        conn.execute(users.update().where(users.c.id == ids["bob"]).values(locale="de"))
    spec = world["compiled"].process_specs["follow_up"]

    async def body(env, queue):
        start = await env.get_current_time()
        await env.client.start_workflow(
            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=world["record_id"], record={"name": "Acme", "owner": ids["bob"]},
                                              started_by=ids["ann"], started_at=start.isoformat()), id="words-mail-1", task_queue=queue)
        await env.sleep(2 * 3600 + 120)  # past the reminder and the due time
        for _ in range(50):
            if len(world["inbox"].messages) >= 3:
                break
            await asyncio.sleep(0.2)

    asyncio.run(_with_worker(world, body))
    [task] = rows(world, tasks)
    due = when_text(task["due_at"].replace(tzinfo=dt.UTC), ZoneInfo("Europe/London"))
    due_de = when_text(task["due_at"].replace(tzinfo=dt.UTC), ZoneInfo("Europe/London"), locale="de")
    inbox = {(tuple(to), str(m["Subject"])): m.get_content().replace("\r\n", "\n")
             for to, m in ((to, email.message_from_bytes(content.encode(), policy=email.policy.default)) for to, content in world["inbox"].messages)}
    bob, mia = ("bob@example.com",), ("mia@example.com",)
    assert f"Diese Aufgabe ist fällig am {due_de} (Europe/London)." in inbox[(bob, "[Tailor] Erinnerung: Call Acme")]
    german = inbox[(bob, "[Tailor] Überfällig: Call Acme")]
    assert german.startswith("„Call Acme“ ist überfällig (Eskalationsstufe 1)\n")
    assert f"Aufgabe: Call Acme\nFällig: {due_de} (Europe/London)\nBei: Bob\nÖffnen: " in german
    english = inbox[(mia, "[Tailor] Overdue: Call Acme")]
    assert english.startswith("'Call Acme' is overdue (escalation level 1)\n")
    assert f"Task: Call Acme\nDue: {due} (Europe/London)\nWith: Bob\nOpen it: " in english
