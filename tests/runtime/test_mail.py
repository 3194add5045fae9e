"""Alert emails: written into the mail outbox with the alert, once; a send repeated after a crash is the same message
(same Message-ID), not a second one."""
from __future__ import annotations

import datetime as dt
import email

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from runtime import mailbox
from runtime.activities import Activities
from runtime.mail import MailSettings
from runtime.schema import alerts, mail_outbox, tasks
from tests.conftest import free_port
from tests.runtime.conftest import Store
from tests.runtime.test_workflows import Inbox

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def overdue_alert(store: Store) -> int:
    """An alert raised by a process recorded before the alert's write emailed it: its emails are still to be written."""
    with store.begin() as conn:
        task = conn.execute(tasks.insert().values(key="wf:call", workflow_id="wf", process="lead_follow_up", step_id="call",
                                                  title="Call Acme back", status="open", assignee_id=store.bob, due_at=NOW,
                                                  created_at=NOW).returning(tasks.c.id)).scalar_one()
        return conn.execute(alerts.insert().values(key="wf:call:L1", task_id=task, level=1, recipients=[store.alice],
                                                   message="Call Acme back is overdue", due_at=NOW, raised_at=NOW)
                            .returning(alerts.c.id)).scalar_one()


def test_an_alert_email_sent_again_after_a_crash_carries_the_same_message_id(store: Store):
    alert = overdue_alert(store)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = MailSettings(port=port, sender="alerts@crm.example.com")
        acts = Activities(store.engine, store.compiled, mail)
        acts.email_alert({"alert_id": alert})  # an older history's activity: it writes the emails into the outbox
        acts.email_alert({"alert_id": alert})  # retried: nothing more is written
        assert mailbox.send_due(store.engine, mail) == 1
        with store.begin() as conn:  # the worker died after the server took the mail, before it was marked sent
            conn.execute(mail_outbox.update().values(status=mailbox.PENDING, next_attempt_at=mailbox.utcnow()))
        assert mailbox.send_due(store.engine, mail) == 1
        assert mailbox.send_due(store.engine, mail) == 0  # marked sent this time: nothing more goes out
    finally:
        controller.stop()
    sent = [email.message_from_string(content) for _, content in inbox.messages]
    assert [rcpt for rcpt, _ in inbox.messages] == [["alice@example.com"], ["alice@example.com"]]
    assert [m["Message-ID"] for m in sent] == [f"<tailor-alert-{alert}@crm.example.com>"] * 2
    assert sent[0]["Subject"] == "[Tailor] Overdue: Call Acme back"
    assert "Open it: http://127.0.0.1:8000/tasks/" in sent[0].get_payload()
    with store.connect() as conn:
        assert conn.execute(sa.select(alerts.c.emailed_at).where(alerts.c.id == alert)).scalar() is not None


def test_the_development_outbox_keeps_one_file_per_email(store: Store, tmp_path):
    alert = overdue_alert(store)
    mail = MailSettings(outbox=tmp_path / "mail")
    Activities(store.engine, store.compiled, mail).email_alert({"alert_id": alert})
    mailbox.send_due(store.engine, mail)
    with store.begin() as conn:
        conn.execute(mail_outbox.update().values(status=mailbox.PENDING, next_attempt_at=mailbox.utcnow()))
    mailbox.send_due(store.engine, mail)
    [eml] = (tmp_path / "mail").iterdir()
    assert eml.name == f"tailor-alert-{alert}.eml"
    assert "Call Acme back is overdue" in eml.read_text()
