"""The conversation on a customer's request: replies written once, the other side notified, public staff replies
emailed exactly once through the mail outbox (a real SMTP server, aiosmtpd)."""
from __future__ import annotations

import datetime as dt
import email

import pytest
import sqlalchemy as sa

from runtime import mailbox, records
from runtime.conversation import ReplyRefused, add_reply
from runtime.history import list_history
from runtime.mail import MailSettings
from runtime.schema import mail_outbox, notifications, tasks, users
from tests.conftest import free_port
from tests.runtime.conftest import Store, add_user

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def request_of(store: Store):
    """A support request of Acme (owned by alice) reported by Jane, with Jane's and Joe's portal accounts, and another
    company's request: (request id, jane's user, joe's user, the other request's id)."""
    c = store.compiled
    with store.begin() as conn:
        acme = records.create_record(conn, c, "company", {"name": "Acme", "status": "customer", "owner": store.alice}, None).id
        globex = records.create_record(conn, c, "company", {"name": "Globex", "status": "customer"}, None).id
        person = records.create_record(conn, c, "person", {"company": acme, "first_name": "Jane", "last_name": "Doe",
                                                           "email": "jane.doe@acme.example"}, None).id
        base = {"description": "It hangs", "category": "fault", "severity": "high"}
        rid = records.create_record(conn, c, "support_request", {**base, "company": acme, "person": person, "summary": "Printing"}, None).id
        other = records.create_record(conn, c, "support_request", {**base, "company": globex, "summary": "Globex's"}, None).id
        jane = add_user(conn, "jane", roles=("portal",))
        joe = add_user(conn, "joe", roles=("portal",))
        conn.execute(users.update().where(users.c.id.in_([jane, joe])).values(company_id=acme))
        conn.execute(users.update().where(users.c.id == joe).values(email=None))  # Joe has no address: only the portal
        add_user(conn, "spy", roles=("portal",))
        conn.execute(users.update().where(users.c.username == "spy").values(company_id=globex))
    people = {}
    with store.connect() as conn:
        for row in conn.execute(sa.select(users)).mappings():
            people[row["username"]] = dict(row)
    return rid, people, other


def notes(store: Store) -> list[tuple[int, str, str, str]]:
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(notifications.c.user_id, notifications.c.kind, notifications.c.text,
                                                         notifications.c.link).order_by(notifications.c.id))]


def open_task(store: Store, rid: int, **values) -> int:
    with store.begin() as conn:
        return conn.execute(tasks.insert().values(key=f"wf:triage:{rid}", workflow_id="wf", process="support_sla", step_id="triage",
                                                  title="Triage: Printing", entity="support_request", record_id=rid, status="open",
                                                  created_at=NOW, **values).returning(tasks.c.id)).scalar_one()


def test_a_customer_reply_is_public_and_reaches_the_open_tasks_assignee_once(store: Store, request_of):
    rid, people, _ = request_of
    task = open_task(store, rid, assignee_id=store.bob)
    for _ in range(2):  # a double submit: the same key and text
        with store.begin() as conn:
            reply = add_reply(conn, store.compiled, "support_request", rid, "  Still hangs at 80%.\r\nAny news?  ", people["jane"],
                              public=True, key="page-1", customer=True)
    assert reply.new is False
    with store.connect() as conn:
        [entry] = list_history(conn, "support_request", rid, kinds=("reply",))
    assert entry.public and entry.data == {"text": "Still hangs at 80%.\nAny news?", "from": "customer"}
    assert entry.summary == "Jane (customer) replied: Still hangs at 80%. Any news?"
    assert notes(store) == [(store.bob, "reply", "Jane replied on #1 Printing: “Still hangs at 80%. Any news?”", f"/tasks/{task}")]
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(mail_outbox)).scalar_one() == 0  # staff are told in the app


def test_a_different_text_under_the_same_page_key_is_a_new_reply(store: Store, request_of):
    rid, people, _ = request_of
    for text in ("First", "Second, after going back"):
        with store.begin() as conn:
            assert add_reply(conn, store.compiled, "support_request", rid, text, people["jane"], public=True, key="page-1",
                             customer=True).new
    with store.connect() as conn:
        assert [e.data["text"] for e in list_history(conn, "support_request", rid, kinds=("reply",))] == ["Second, after going back", "First"]


def test_with_no_open_task_the_queue_then_the_companys_owner_hears_of_a_customer_reply(store: Store, request_of):
    rid, people, _ = request_of
    with store.begin() as conn:
        add_reply(conn, store.compiled, "support_request", rid, "Hello?", people["jane"], public=True, key="a", customer=True)
    assert notes(store) == [(store.alice, "reply", "Jane replied on #1 Printing: “Hello?”", f"/records/support_request/{rid}")]
    with store.begin() as conn:
        carol = add_user(conn, "carol")
        conn.execute(sa.text("INSERT INTO group_members (group_name, user_id, manager) VALUES ('support', :u, false)"), {"u": carol})
    task = open_task(store, rid, group_name="support")
    with store.begin() as conn:
        add_reply(conn, store.compiled, "support_request", rid, "Anyone?", people["jane"], public=True, key="b", customer=True)
    assert notes(store)[-1] == (carol, "reply", "Jane replied on #1 Printing: “Anyone?”", f"/tasks/{task}")


def test_a_public_staff_reply_notifies_the_companys_portal_users_and_is_emailed_once(store: Store, request_of, smtp):
    rid, people, _ = request_of
    inbox, port = smtp
    staff = {"id": store.bob, "name": "Bob Support"}
    with store.begin() as conn:
        add_reply(conn, store.compiled, "support_request", rid, "We found it:\nupdate the driver.", staff, public=True, key="k")
        add_reply(conn, store.compiled, "support_request", rid, "We found it:\nupdate the driver.", staff, public=True, key="k")
    assert notes(store) == [(people["jane"]["id"], "reply", "Bob Support replied on your request #1 Printing", f"/portal/requests/{rid}"),
                            (people["joe"]["id"], "reply", "Bob Support replied on your request #1 Printing", f"/portal/requests/{rid}")]
    mail = MailSettings(port=port, sender="support@crm.example.com", base_url="https://crm.example.com")
    assert mailbox.send_due(store.engine, mail) == 1
    with store.begin() as conn:  # the worker died after the server took the mail, before it was marked sent
        conn.execute(mail_outbox.update().values(status=mailbox.PENDING, next_attempt_at=NOW))
    assert mailbox.send_due(store.engine, mail) == 1
    assert mailbox.send_due(store.engine, mail) == 0  # marked sent this time: nothing more goes out
    sent = [email.message_from_string(content) for _, content in inbox.messages]
    # the person the request names (Jane's address at work) and the company's portal users who have an address (not Joe)
    assert [rcpt for rcpt, _ in inbox.messages] == [["jane.doe@acme.example", "jane@example.com"]] * 2
    assert len({m["Message-ID"] for m in sent}) == 1 and sent[0]["Message-ID"].startswith("<tailor-reply-")
    assert sent[0]["Subject"] == "Re: #1 Printing"
    body = sent[0].get_payload(decode=True).decode().replace("\r\n", "\n")
    assert "Bob Support replied to your request #1 Printing:\n\nWe found it:\nupdate the driver." in body
    assert f"https://crm.example.com/portal/requests/{rid}" in body


def test_an_internal_comment_stays_internal(store: Store, request_of):
    rid, _, _ = request_of
    with store.begin() as conn:
        reply = add_reply(conn, store.compiled, "support_request", rid, "Customer is on an old driver", {"id": store.bob, "name": "Bob"},
                          public=False, key="k")
    assert reply.entry.kind == "note" and not reply.entry.public and reply.entry.summary == "Internal comment: Customer is on an old driver"
    assert notes(store) == []
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(mail_outbox)).scalar_one() == 0
        assert list_history(conn, "support_request", rid, public_only=True) == []


@pytest.mark.parametrize(("text", "message"), [("   \n ", "Write your reply first: it is empty."),
                                               ("x" * 5001, "A reply can be at most 5,000 characters long; this one has 5,001.")])
def test_an_empty_or_overlong_reply_is_refused_and_nothing_is_written(store: Store, request_of, text, message):
    rid, people, _ = request_of
    with pytest.raises(ReplyRefused, match=message), store.begin() as conn:
        add_reply(conn, store.compiled, "support_request", rid, text, people["jane"], public=True, key="k", customer=True)
    with store.connect() as conn:
        assert list_history(conn, "support_request", rid, kinds=("reply",)) == []
    assert notes(store) == []


def test_a_mail_server_that_is_down_leaves_the_email_for_a_later_turn(store: Store, request_of, smtp):
    rid, _, _ = request_of
    with store.begin() as conn:
        add_reply(conn, store.compiled, "support_request", rid, "Fixed.", {"id": store.bob, "name": "Bob"}, public=True, key="k")
    down, now = MailSettings(port=free_port()), mailbox.utcnow()
    assert mailbox.send_due(store.engine, down, now=now) == 0
    with store.connect() as conn:
        row = conn.execute(sa.select(mail_outbox)).one()
    assert row.status == mailbox.PENDING and row.attempts == 1 and "Error" in row.last_error
    assert mailbox.send_due(store.engine, down, now=now + dt.timedelta(seconds=1)) == 0  # its next turn (in 2 s) has not come yet
    inbox, port = smtp
    assert mailbox.send_due(store.engine, MailSettings(port=port), now=now + dt.timedelta(seconds=3)) == 1
    assert len(inbox.messages) == 1


def test_two_senders_never_take_the_same_email(store: Store, request_of):
    rid, _, _ = request_of
    with store.begin() as conn:
        add_reply(conn, store.compiled, "support_request", rid, "Fixed.", {"id": store.bob, "name": "Bob"}, public=True, key="k")
    now = mailbox.utcnow()
    first, second = mailbox._claim(store.engine, now, 10), mailbox._claim(store.engine, now, 10)
    assert len(first) == 1 and second == []
