"""Emails in the recipient's language: an alert's message and a reminder name fields, choices, queues and plain task
titles as each recipient's language calls them; recipients who chose none read the definitions as written."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from engine.compiler import compile_model
from engine.loader import load
from runtime import messages
from runtime.schema import metadata as platform
from runtime.schema import users
from tests.conftest import CRM

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


@pytest.fixture
def mail_site(packs, tmp_path):
    compiled = compile_model(load([CRM, packs.write("client", CLIENT, extends="crm: '>=1.0'")]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'mail.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        ids = {name: conn.execute(users.insert().values(username=name, name=name.title(), roles=["staff"], password_hash="-", locale=locale,
                                                        created_at=now)).inserted_primary_key[0]
               for name, locale in (("ann", None), ("uwe", "de"))}
    return compiled, engine, ids


TASK = {"id": 7, "title": "Call the customer", "process": "check_in", "step_id": "call", "entity": "company", "record_id": 1,
        "group_name": "sales", "assignee_id": None, "due_at": "2030-07-01T08:00:00+00:00"}


def test_an_alert_reads_in_each_recipients_language(mail_site):
    compiled, engine, ids = mail_site
    req = {"template": "{{ record.name }} ({{ record.status }}, {{ record.industry }}) waits in {{ task.assignee }}",
           "context": {"record": {"name": "Acme", "status": "customer", "industry": "healthcare"}, "steps": {}},
           "now": "2030-07-01T09:00:00+00:00", "steps": ["call"], "message": "fallback"}
    with engine.connect() as conn:
        readers = {u: r.reader for u, r in messages.recipients(conn, compiled.model, [ids["ann"], ids["uwe"]]).items()}
        message, texts = messages.alert_texts(conn, compiled, req, TASK, readers)
        mails = messages.alert_mails(conn, compiled.model, {"recipients": [ids["ann"], ids["uwe"]], "message": message, "level": 1},
                                     TASK, texts, "http://tailor/tasks/7", readers)
    assert message == "Acme (Customer, Healthcare) waits in the Sales queue"  # the alert's own row: as written
    assert texts[ids["ann"]] == message
    assert texts[ids["uwe"]] == "Acme (Kunde, Gesundheitswesen) waits in the Vertrieb queue"
    by_reader = {tuple(to): (subject, body) for to, subject, body in mails}
    assert by_reader[(ids["ann"],)][0] == "[Tailor] Overdue: Call the customer"
    subject, body = by_reader[(ids["uwe"],)]
    assert subject == "[Tailor] Überfällig: Den Kunden anrufen"
    assert body.startswith("Acme (Kunde, Gesundheitswesen) waits in the Vertrieb queue\n") and "Den Kunden anrufen" in body


def test_a_reminder_names_the_task_in_its_assignees_language(mail_site):
    compiled, engine, ids = mail_site
    with engine.connect() as conn:
        german = messages.reminder_mail(conn, compiled.model, {**TASK, "assignee_id": ids["uwe"]}, "http://tailor/tasks/7")
        english = messages.reminder_mail(conn, compiled.model, {**TASK, "assignee_id": ids["ann"]}, "http://tailor/tasks/7")
    assert german[0] == "[Tailor] Erinnerung: Den Kunden anrufen"
    assert english[0] == "[Tailor] Reminder: Call the customer"
