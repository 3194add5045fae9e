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


class Peers:
    """An SMTP handler that keeps who sent each email (the client's address and port: one per connection) and refuses
    one mailbox, as a real server refuses a recipient it does not know."""

    def __init__(self):
        self.peers: list = []
        self.subjects: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == "gone@example.com":
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.peers.append(session.peer)
        self.subjects.append(email.message_from_bytes(envelope.content)["Subject"])
        return "250 OK"


def test_a_batch_of_emails_goes_over_one_connection_and_a_refused_one_waits_without_holding_up_the_rest(store: Store):
    with store.begin() as conn:
        for key, to in (("first", "alice@example.com"), ("refused", "gone@example.com"), ("second", "bob@example.com"),
                        ("third", "alice@example.com")):
            mailbox.enqueue(conn, key, [to], f"About {key}", "Hello")
    handler, port = Peers(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert mailbox.send_due(store.engine, MailSettings(port=port)) == 3
    finally:
        controller.stop()
    assert handler.subjects == ["About first", "About second", "About third"]
    assert len(set(handler.peers[1:])) == 1 and handler.peers[0] != handler.peers[1]  # after the refusal, one new connection
    with store.connect() as conn:
        rows = {r.key: r for r in conn.execute(sa.select(mail_outbox))}
    assert {k: r.status for k, r in rows.items()} == {"first": "sent", "refused": "pending", "second": "sent", "third": "sent"}
    assert "no such mailbox" in rows["refused"].last_error and rows["refused"].attempts == 1
    assert rows["refused"].next_attempt_at > rows["first"].sent_at  # its next turn comes later: 2 s on


def test_an_email_is_sent_again_on_a_new_connection_when_the_server_dropped_the_idle_one(store: Store):
    handler, port = Peers(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with MailSettings(port=port).session() as post:
            post.send(["alice@example.com"], "One", "Hello", key="one")
            controller.stop()  # the server goes away and comes back: the session's connection is dead
            controller = Controller(handler, hostname="127.0.0.1", port=port)
            controller.start()
            post.send(["alice@example.com"], "Two", "Hello", key="two")
    finally:
        controller.stop()
    assert handler.subjects == ["One", "Two"] and handler.peers[0] != handler.peers[1]
