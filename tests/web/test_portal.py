"""The portal conversation without a browser: a customer's request page (details, status history, public replies
only, local times), isolation between companies, the customer's reply box, and staff replying from the task and
record pages (public or internal; only who may work on it)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.conversation import add_reply
from runtime.history import list_history
from runtime.schema import (
    contact_history,
    group_members,
    mail_outbox,
    notifications,
    tasks,
    users,
)
from runtime.schema import metadata as platform
from tests.conftest import CRM

UTC = dt.UTC
RAISED = dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)      # 04:00 in New York, where Pat reads times
TRIAGED = dt.datetime(2025, 3, 3, 14, 30, tzinfo=UTC)   # 09:30 there


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    """Acme (Pat and Kim on the portal, Jane its contact) and Globex (Raj); Sue in support holds Acme's request's triage
    task; Ann is staff, Mia a manager (monitors tasks), Lou a portal user not linked to any company yet."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'portal.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    c = compiled
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for name, full, roles in [("ann", "Ann Sales", ["staff"]), ("sue", "Sue Support", ["staff"]), ("mia", "Mia Manager", ["sales_manager"]),
                                  ("pat", "Pat Acme", ["portal"]), ("kim", "Kim Acme", ["portal"]), ("raj", "Raj Globex", ["portal"]),
                                  ("lou", "Lou Nobody", ["portal"])]:
            ids[name] = conn.execute(users.insert().values(username=name, name=full, email=f"{name}@example.com", roles=roles,
                                                           password_hash=hasher.hash(name), created_at=RAISED)).inserted_primary_key[0]
        conn.execute(group_members.insert().values(group_name="support", user_id=ids["sue"]))
        ids["acme"] = records.create_record(conn, c, "company", {"name": "Acme", "status": "customer", "owner": ids["ann"]}, None).id
        ids["globex"] = records.create_record(conn, c, "company", {"name": "Globex", "status": "customer"}, None).id
        ids["jane"] = records.create_record(conn, c, "person", {"company": ids["acme"], "first_name": "Jane", "last_name": "Doe",
                                                                "email": "jane@acme.example"}, None).id
        base = {"description": "Since Monday the monthly report hangs at 80%.", "category": "fault", "severity": "high"}
        ids["request"] = records.create_record(conn, c, "support_request", {**base, "company": ids["acme"], "person": ids["jane"],
                                                                             "summary": "Reports will not print"}, None, at=RAISED).id
        records.update_record(conn, c, "support_request", ids["request"], {"status": "in_progress", "assignee": ids["sue"],
                                                                           "resolution": "Driver 4.2 is broken", "defect_reference": "DEV-77"},
                              ids["sue"], at=TRIAGED)
        ids["secret"] = records.create_record(conn, c, "support_request", {**base, "company": ids["globex"], "summary": "Globex secret"},
                                              None).id
        ids["opportunity"] = records.create_record(conn, c, "opportunity", {"name": "Acme upgrade", "company": ids["acme"], "stage": "lead"},
                                                   None).id
        conn.execute(users.update().where(users.c.username.in_(["pat", "kim"])).values(company_id=ids["acme"]))
        conn.execute(users.update().where(users.c.username == "pat").values(time_zone="America/New_York"))
        conn.execute(users.update().where(users.c.username == "raj").values(company_id=ids["globex"]))

        def task(key, **values) -> int:
            return conn.execute(tasks.insert().values(key=key, workflow_id=f"wf-{key}", process="support_sla", step_id=key, status="open",
                                                      created_at=RAISED, **values)).inserted_primary_key[0]

        ids["triage"] = task("triage", title="Triage: Reports will not print", entity="support_request", record_id=ids["request"],
                             assignee_id=ids["sue"], group_name="support")
        ids["sales_task"] = task("qualify", title="Qualify Acme upgrade", entity="opportunity", record_id=ids["opportunity"],
                                 assignee_id=ids["sue"])
    app = create_app(engine, compiled, None, secret_key="portal-secret")
    return app, engine, ids


def token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def request_id(html: str, action: str) -> str:
    form = html[html.index(f'action="{action}"'):]
    return re.search(r'name="request_id" value="([^"]+)"', form).group(1)


def client_of(app, who: str) -> TestClient:
    client = TestClient(app)
    page = client.get("/login")
    assert client.post("/login", data={"csrf_token": token(page.text), "username": who, "password": who},
                       follow_redirects=False).status_code == 303
    return client


def text_of(html: str) -> str:
    """What a person reads in the page's main part: its text without tags, spaces collapsed."""
    main = html[html.index("<main>"):html.index("</main>")]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


def staff_reply(app, engine, ids, text: str, public: bool) -> None:
    with engine.begin() as conn:
        add_reply(conn, app.state.compiled, "support_request", ids["request"], text, {"id": ids["sue"], "name": "Sue Support"},
                  public=public, key=text)


# -- what the customer sees ---------------------------------------------------------------------


def test_the_portal_lists_the_companys_requests_each_linked_to_its_page(site):
    app, _, ids = site
    page = client_of(app, "pat").get("/portal")
    assert f'<a href="/portal/requests/{ids["request"]}">#{ids["request"]} Reports will not print</a>' in page.text
    assert "Globex secret" not in page.text and "In progress" in page.text


def test_a_request_page_shows_labels_local_times_the_status_history_and_public_replies_only(site):
    app, engine, ids = site
    staff_reply(app, engine, ids, "Driver 4.2 is the culprit: please install 4.3 and tell us.", public=True)
    staff_reply(app, engine, ids, "INTERNAL: customer is two versions behind, charge for the visit", public=False)
    page = client_of(app, "pat").get(f"/portal/requests/{ids['request']}")
    assert page.status_code == 200
    seen = text_of(page.text)
    # details: labels and display values, the customer's fields only
    for label, value in [("Reported by", "Jane Doe"), ("Category", "Fault / bug"), ("Severity", "High – badly affected"),
                         ("Description", "Since Monday the monthly report hangs at 80%."), ("Status", "In progress")]:
        assert f"{label} {value}" in seen, label
    # when the status changed, in Pat's time (New York), newest first, by label
    assert "Status history Mon 3 Mar 2025, 09:30 In progress (was New) Mon 3 Mar 2025, 04:00 New" in seen
    # staff chose to make this public; the internal comment and internal fields never show
    assert "Driver 4.2 is the culprit: please install 4.3 and tell us." in seen and "Sue Support Support team" in seen
    for hidden in ("INTERNAL", "charge for the visit", "DEV-77", "Driver 4.2 is broken", "Resolution", "Assignee", "in_progress",
                   "fault", "support_sla", "Internal comment"):
        assert hidden not in page.text, hidden


def test_another_companys_request_or_no_request_at_that_number_is_not_found(site):
    app, engine, ids = site
    raj = client_of(app, "raj")
    for path in (f"/portal/requests/{ids['request']}", "/portal/requests/999999", "/portal/requests/abc", "/portal/requests/0",
                 f"/portal/requests/{2**70}", "/portal/requests/-1"):
        page = raj.get(path)
        assert page.status_code == 404, path
        assert "There is no request of yours with that number." in page.text and "Reports will not print" not in page.text
    own = raj.get(f"/portal/requests/{ids['secret']}")
    assert own.status_code == 200
    crafted = raj.post(f"/portal/requests/{ids['request']}/reply", data={"csrf_token": token(own.text), "text": "Injected",
                                                                         "request_id": "x"})
    assert crafted.status_code == 404 and "Reports will not print" not in crafted.text
    with engine.connect() as conn:
        assert list_history(conn, "support_request", ids["request"], kinds=("reply",)) == []
    assert client_of(app, "pat").get(f"/portal/requests/{ids['secret']}").status_code == 404


def test_the_customers_reply_keeps_the_text_on_a_problem_posts_once_and_reaches_the_tasks_assignee(site):
    app, engine, ids = site
    pat = client_of(app, "pat")
    path = f"/portal/requests/{ids['request']}"
    page = pat.get(path)
    empty = pat.post(f"{path}/reply", data={"csrf_token": token(page.text), "text": "   ", "request_id": request_id(page.text, f"{path}/reply")})
    assert empty.status_code == 422 and "Write your reply first: it is empty." in empty.text
    long_text = "Still broken. " * 400
    too_long = pat.post(f"{path}/reply", data={"csrf_token": token(page.text), "text": long_text, "request_id": "r0"})
    assert too_long.status_code == 422 and "at most 5,000 characters" in too_long.text
    assert long_text.strip() in too_long.text  # what was typed is kept
    form = {"csrf_token": token(page.text), "text": "Installed 4.3.\nIt prints now.", "request_id": request_id(page.text, f"{path}/reply")}
    first = pat.post(f"{path}/reply", data=form, follow_redirects=False)
    again = pat.post(f"{path}/reply", data=form, follow_redirects=False)  # a double click
    assert first.status_code == again.status_code == 303 and first.headers["location"] == f"{path}#conversation"
    shown = pat.get(path)
    assert "Your reply is sent" in shown.text and "Installed 4.3.\nIt prints now." in shown.text
    assert "You" in text_of(shown.text)
    with engine.connect() as conn:
        replies = list_history(conn, "support_request", ids["request"], kinds=("reply",))
        told = conn.execute(sa.select(notifications.c.user_id, notifications.c.kind, notifications.c.link)).all()
    assert len(replies) == 1 and replies[0].public
    assert told == [(ids["sue"], "reply", f"/tasks/{ids['triage']}")]
    # Kim, of the same company, sees Pat's reply under Pat's name
    assert "Pat Acme" in text_of(client_of(app, "kim").get(path).text)


def test_a_portal_user_not_linked_to_a_company_gets_a_home_not_a_refusal_loop(site):
    app, _, ids = site
    lou = client_of(app, "lou")
    home = lou.get("/portal")
    assert home.status_code == 200 and "not linked to a company yet" in home.text
    refused = lou.get(f"/portal/requests/{ids['request']}")
    assert refused.status_code == 403 and 'href="/portal">Back to your requests' in refused.text  # a way back that opens
    for page in (home, refused, client_of(app, "pat").get(f"/portal/requests/{ids['request']}")):
        assert '<a class="brand" href="/portal">' in page.text  # the brand leads a customer's people to the portal home


def test_the_portal_form_shows_the_intro_written_for_customers_not_the_definitions_notes(site):
    app, _, _ = site
    page = client_of(app, "pat").get("/portal/forms/support_request")
    assert "You can follow your request on its page here" in page.text
    assert "support_sla" not in page.text and "processes/" not in page.text and "starts the support SLA" not in page.text


# -- staff answer the customer -----------------------------------------------------------------


def test_the_assignee_replies_publicly_or_internally_from_the_task_page(site):
    app, engine, ids = site
    sue = client_of(app, "sue")
    task_path = f"/tasks/{ids['triage']}"
    page = sue.get(task_path)
    assert "Conversation with the customer" in page.text and "emails it to Jane Doe (jane@acme.example), Pat Acme (pat@example.com), Kim Acme " \
        "(kim@example.com)." in page.text
    action = f"{task_path}/reply"
    bad = sue.post(action, data={"csrf_token": token(page.text), "text": "   ", "visibility": "public", "request_id": "1"})
    assert bad.status_code == 422 and "Write your reply first" in bad.text and "Nothing was sent." in bad.text
    unchosen = sue.post(action, data={"csrf_token": token(page.text), "text": "Kept text", "request_id": "2"})
    assert unchosen.status_code == 422 and "Choose whether the customer sees this" in unchosen.text and "Kept text</textarea>" in unchosen.text
    public = {"csrf_token": token(page.text), "text": "Please install driver 4.3.", "visibility": "public",
              "request_id": request_id(page.text, action)}
    done = sue.post(action, data=public)
    assert "Reply sent to the customer: it is on their request&#39;s page in the portal and emailed to Jane Doe, Pat Acme, Kim Acme." \
        in done.text
    sue.post(action, data=public)  # a double click: once
    sue.post(action, data={"csrf_token": token(page.text), "text": "He is on an old driver.", "visibility": "internal",
                           "request_id": "3"})
    with engine.connect() as conn:
        mails = conn.execute(sa.select(mail_outbox.c.recipients, mail_outbox.c.subject, mail_outbox.c.link)).all()
        entries = conn.execute(sa.select(contact_history.c.kind, contact_history.c.public, contact_history.c.summary)
                               .where(contact_history.c.entity == "support_request", contact_history.c.kind.in_(["reply", "note"]))
                               .order_by(contact_history.c.id)).all()
    assert mails == [(["jane@acme.example", "kim@example.com", "pat@example.com"], f"Re: #{ids['request']} Reports will not print",
                      f"/portal/requests/{ids['request']}")]
    assert entries == [("reply", True, "Reply to the customer: Please install driver 4.3."),
                       ("note", False, "Internal comment: He is on an old driver.")]
    portal = text_of(client_of(app, "pat").get(f"/portal/requests/{ids['request']}").text)
    assert "Please install driver 4.3." in portal and "old driver" not in portal
    # staff see both: on the task page among the replies (the internal one tagged), and in the record's history
    box = text_of(sue.get(task_path).text)
    assert "You Staff" in box and "You Internal comment" in box and "He is on an old driver." in box
    record = sue.get(f"/records/support_request/{ids['request']}").text
    assert "Internal comment: He is on an old driver." in record and "Reply to the customer: Please install driver 4.3." in record


def test_only_staff_who_work_on_the_task_or_record_may_answer_the_customer(site):
    app, _, ids = site
    mia = client_of(app, "mia")  # a manager: she may look at Sue's task, not work on it
    page = mia.get(f"/tasks/{ids['triage']}")
    assert page.status_code == 200 and "Conversation with the customer" not in page.text
    refused = mia.post(f"/tasks/{ids['triage']}/reply", data={"csrf_token": token(page.text), "text": "Hi", "visibility": "public"})
    assert refused.status_code == 403
    sue = client_of(app, "sue")
    other = sue.get(f"/tasks/{ids['sales_task']}")  # a task about an opportunity: nobody to reply to
    assert other.status_code == 200 and "Conversation with the customer" not in other.text
    assert sue.post(f"/tasks/{ids['sales_task']}/reply", data={"csrf_token": token(other.text), "text": "Hi",
                                                               "visibility": "public"}).status_code == 404
    ann = client_of(app, "ann")  # staff who change records answer from the request's record page, not from a company's
    record = ann.get(f"/records/support_request/{ids['request']}")
    assert "Conversation with the customer" in record.text
    assert "Conversation with the customer" not in ann.get(f"/records/company/{ids['acme']}").text
    assert ann.post(f"/records/company/{ids['acme']}/reply", data={"csrf_token": token(record.text), "text": "Hi",
                                                                  "visibility": "public"}).status_code == 404
    pat = client_of(app, "pat")
    assert pat.post(f"/tasks/{ids['triage']}/reply", data={"csrf_token": token(pat.get('/portal').text), "text": "Hi",
                                                          "visibility": "internal"}).status_code == 403


def test_staff_reply_from_the_record_page_and_a_problem_keeps_the_text(site):
    app, engine, ids = site
    ann = client_of(app, "ann")
    path = f"/records/support_request/{ids['request']}"
    page = ann.get(path)
    bad = ann.post(f"{path}/reply", data={"csrf_token": token(page.text), "text": "x" * 5001, "visibility": "public", "request_id": "a"})
    assert bad.status_code == 422 and "at most 5,000 characters" in bad.text and "x" * 5001 in bad.text
    ok = ann.post(f"{path}/reply", data={"csrf_token": token(page.text), "text": "We are on it.", "visibility": "public",
                                         "request_id": request_id(page.text, f"{path}/reply")}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == f"{path}#reply-h"
    with engine.connect() as conn:
        assert [e.data["text"] for e in list_history(conn, "support_request", ids["request"], public_only=True)] == ["We are on it."]


def test_an_error_page_never_offers_the_refused_page_itself_as_the_way_back(site):
    app, engine, _ = site
    with engine.begin() as conn:  # an account without roles: its way back would be the portal, which refuses it
        conn.execute(users.insert().values(username="nobody", name="No Roles", roles=[], created_at=RAISED,
                                           password_hash=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("nobody")))
    page = client_of(app, "nobody").get("/portal")
    assert page.status_code == 403
    assert 'href="/profile">Go to your profile</a>' in page.text and 'href="/portal">Back to your requests' not in page.text
