"""Pages without a browser: sessions, CSRF, permissions, throttling and exactly-once submissions."""
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
from runtime.schema import contact_history, metadata as platform, users
from tests.conftest import CRM


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'web.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    hasher = PasswordHasher()
    with engine.begin() as conn:
        for name, roles in [("ann", ["staff"]), ("pat", ["portal"])]:
            conn.execute(users.insert().values(username=name, name=name.title(), email=f"{name}@example.com", roles=roles,
                                               password_hash=hasher.hash(name), created_at=now))
        company = records.create_record(conn, compiled, "company", {"name": "Acme", "status": "customer"}, None)
    app = create_app(engine, compiled, None, secret_key="test-secret")
    return TestClient(app), engine, company.id


def token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(client: TestClient, who: str, password: str | None = None):
    page = client.get("/login")
    return client.post("/login", data={"csrf_token": token(page.text), "username": who, "password": password or who}, follow_redirects=False)


def test_pages_need_a_login_and_the_session_cookie_is_httponly_and_samesite(site):
    client, _, _ = site
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/"
    response = log_in(client, "ann")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "My work" in client.get("/").text


def test_failed_logins_are_throttled(site):
    client, _, _ = site
    assert [log_in(client, "ann", "wrong").status_code for _ in range(6)] == [401] * 5 + [429]
    assert log_in(client, "ann").status_code == 429  # even the right password waits out the lockout


def test_every_post_needs_the_csrf_token(site):
    client, _, company = site
    log_in(client, "ann")
    response = client.post(f"/forms/call_note?record={company}", data={"csrf_token": "forged", "summary": "x"})
    assert response.status_code == 403


def test_roles_decide_what_a_user_may_open(site):
    client, _, company = site
    log_in(client, "pat")
    assert client.get(f"/forms/lead_enquiry?record={company}").status_code == 403


def test_a_double_submission_is_recorded_once(site, compiled):
    client, engine, company = site
    log_in(client, "ann")
    page = client.get(f"/forms/call_note?record={company}")
    assert page.status_code == 200
    fields = {f.name: f for f in compiled.model.forms["call_note"].fields}
    data = {"csrf_token": token(page.text), "submission_id": re.search(r'name="submission_id" value="([^"]+)"', page.text).group(1)}
    for name, f in fields.items():
        if f.required:
            data[name] = str(f.choices[0].value) if f.choices else ("2026-11-23" if f.type == "date" else
                                                                     "2026-11-23T10:00" if f.type == "datetime" else "Spoke about renewal")
    first = client.post(f"/forms/call_note?record={company}", data=data, follow_redirects=False)
    again = client.post(f"/forms/call_note?record={company}", data=data, follow_redirects=False)
    assert first.status_code == again.status_code == 303, first.text
    with engine.connect() as conn:
        entries = conn.execute(sa.select(contact_history.c.summary).where(contact_history.c.kind == "submission")).scalars().all()
    assert entries == [compiled.model.forms["call_note"].label]


def test_directory_filters_on_variable_and_group_fields_and_exports_csv(site, compiled):
    client, engine, _ = site
    with engine.begin() as conn:
        records.create_record(conn, compiled, "company", {"name": "Bayside Clinic", "status": "prospect", "industry": "healthcare"}, None)
        records.create_record(conn, compiled, "company", {"name": "Corner Shop", "status": "prospect", "industry": "retail"}, None)
    log_in(client, "ann")
    page = client.get("/directory/company", params={"f1": "industry", "o1": "eq", "v1": "healthcare"})
    assert page.status_code == 200
    assert "Bayside Clinic" in page.text and "Corner Shop" not in page.text and "1 found" in page.text
    page = client.get("/directory/company", params={"q": "shop"})
    assert "Corner Shop" in page.text and "Bayside" not in page.text
    bad = client.get("/directory/company", params={"f1": "industry", "o1": "eq", "v1": "farming"})
    assert bad.status_code == 400 and "is not one of its choices" in bad.text
    csv = client.get("/directory/company/export.csv", params={"sort": "title"})
    assert csv.status_code == 403  # staff may not export; the role needs 'export'


def test_export_needs_the_export_permission_and_gives_every_field(site, compiled):
    client, engine, _ = site
    with engine.begin() as conn:
        conn.execute(users.insert().values(username="mia", name="Mia", email="mia@example.com", roles=["sales_manager"],
                                           password_hash=PasswordHasher().hash("mia"), created_at=dt.datetime.now(dt.timezone.utc)))
    log_in(client, "mia")
    csv = client.get("/directory/company/export.csv", params={"sort": "title"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("id,Company,Account number") and any("Acme" in line for line in lines[1:])


def test_portal_users_see_and_name_only_their_own_company(site, compiled):
    client, engine, acme = site
    with engine.begin() as conn:
        other = records.create_record(conn, compiled, "company", {"name": "Globex", "status": "customer"}, None).id
        jane = records.create_record(conn, compiled, "person", {"company": acme, "first_name": "Jane", "last_name": "Doe"}, None).id
        spy = records.create_record(conn, compiled, "person", {"company": other, "first_name": "Sam", "last_name": "Spy"}, None).id
        base = {"summary": "x", "description": "y", "category": "fault", "severity": "low", "status": "new"}
        ours = records.create_record(conn, compiled, "support_request", {**base, "company": acme, "summary": "Our printer"}, None).id
        secret = records.create_record(conn, compiled, "support_request", {**base, "company": other, "summary": "Globex secret"}, None).id
        conn.execute(users.update().where(users.c.username == "pat").values(company_id=acme))
    response = log_in(client, "pat")
    assert response.headers["location"] == "/portal"
    page = client.get("/portal")
    assert "Our printer" in page.text and "Globex secret" not in page.text
    assert "Our printer" in client.get(f"/portal/requests/{ours}").text
    other_request = client.get(f"/portal/requests/{secret}")  # another company's request by its number: not found, never its content
    assert other_request.status_code == 404 and "Globex secret" not in other_request.text
    assert client.get(f"/records/company/{other}").status_code == 403
    assert client.get("/").status_code == 403
    form = client.get("/portal/forms/support_request")
    assert form.status_code == 200 and "Sam Spy" not in form.text
    person_field = next(f.name for f in compiled.model.forms["support_request"].fields if f.type == "reference" and f.entity == "person")
    data = {"csrf_token": token(form.text), "submission_id": "portal-1", person_field: str(spy)}
    refused = client.post("/portal/forms/support_request", data=data)
    assert refused.status_code == 422 and "must be one of the listed records" in refused.text
    assert jane  # a person of her own company is offered instead
    assert "Jane Doe" in form.text


def test_staff_with_permission_add_a_field_to_one_record_only(site, compiled):
    client, engine, company = site
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "ann").values(roles=["staff", "admin"]))
    log_in(client, "ann")
    page = client.get(f"/records/company/{company}")
    assert "Add a field to this company only" in page.text
    bad = client.post(f"/records/company/{company}/fields", data={"csrf_token": token(page.text), "label": "Beds", "type": "integer",
                                                                  "value": "many"})
    assert bad.status_code == 422 and 'value="many"' in bad.text
    ok = client.post(f"/records/company/{company}/fields", data={"csrf_token": token(page.text), "label": "Beds", "type": "integer",
                                                                 "value": "120"}, follow_redirects=True)
    assert "This company only" in ok.text and "Beds" in ok.text and "120" in ok.text
    with engine.connect() as conn:
        assert records.get_record(conn, compiled, "company", company).record_fields["beds"]["value"] == 120


def test_staff_without_the_permission_cannot_add_fields(site):
    client, _, company = site
    log_in(client, "ann")  # plain staff
    page = client.get(f"/records/company/{company}")
    assert "Add a field to this company only" not in page.text
    response = client.post(f"/records/company/{company}/fields", data={"csrf_token": token(page.text), "label": "X", "value": "1"})
    assert response.status_code == 403


def test_deleting_a_record_asks_first_and_refuses_while_others_refer_to_it(site, compiled):
    client, engine, company = site
    log_in(client, "ann")  # plain staff may not delete
    assert "Delete this company" not in client.get(f"/records/company/{company}").text
    assert client.get(f"/records/company/{company}/delete").status_code == 403
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "ann").values(roles=["staff", "sales_manager"]))
        person = records.create_record(conn, compiled, "person", {"company": company, "first_name": "Jane", "last_name": "Doe"}, None)
    record = client.get(f"/records/company/{company}")
    assert f'href="/records/company/{company}/delete"' in record.text
    ask = client.get(f"/records/company/{company}/delete")
    assert "cannot be deleted yet" in ask.text and f"person {person.id} &#39;Jane Doe&#39; (field Company)" in ask.text
    assert "<button" not in ask.text.split("<main>")[1]  # nothing to confirm while something refers to it
    forced = client.post(f"/records/company/{company}/delete", data={"csrf_token": token(ask.text), "row_version": "1"})
    assert forced.status_code == 409 and "cannot be deleted while these refer to it" in forced.text
    with engine.begin() as conn:
        records.delete_record(conn, compiled, "person", person.id, None)
    ask = client.get(f"/records/company/{company}/delete")
    assert "Delete Acme</button>" in ask.text and "audit log" in ask.text
    assert client.post(f"/records/company/{company}/delete", data={"csrf_token": "forged", "row_version": "1"}).status_code == 403
    with engine.begin() as conn:  # someone edits it while the page is open
        records.update_record(conn, compiled, "company", company, {"employees": 5}, None)
    stale = client.post(f"/records/company/{company}/delete", data={"csrf_token": token(ask.text), "row_version": "1"})
    assert stale.status_code == 409 and "Nothing was deleted" in stale.text
    done = client.post(f"/records/company/{company}/delete", data={"csrf_token": token(ask.text), "row_version": "2"},
                       follow_redirects=True)
    assert done.url.path == "/directory/company" and "Deleted company &#39;Acme&#39;" in done.text
    assert client.get(f"/records/company/{company}").status_code == 404
    with engine.connect() as conn:
        summaries = conn.execute(sa.select(contact_history.c.summary).where(contact_history.c.record_id == company)).scalars().all()
    assert "Company deleted: Acme" in summaries


def test_mail_merge_renders_a_letter_per_filtered_record_in_the_sandbox(site, compiled):
    client, engine, _ = site
    with engine.begin() as conn:
        records.create_record(conn, compiled, "company", {"name": "Bayside Clinic", "status": "prospect", "industry": "healthcare"}, None)
        conn.execute(users.update().where(users.c.username == "ann").values(roles=["staff", "sales_manager"]))
    log_in(client, "ann")
    page = client.get("/directory/company", params={"f1": "industry", "o1": "eq", "v1": "healthcare"})
    letters = client.post("/directory/company/merge?f1=industry&o1=eq&v1=healthcare",
                          data={"csrf_token": token(page.text), "template": "Dear {{ record.name }}, thank you."})
    assert letters.status_code == 200 and "Dear Bayside Clinic, thank you." in letters.text and "Dear Acme" not in letters.text
    unsafe = client.post("/directory/company/merge", data={"csrf_token": token(page.text),
                                                           "template": "{{ record.__class__.__mro__ }} {{ colour }}"})
    assert unsafe.status_code == 422 and "unknown name &#39;colour&#39;" in unsafe.text


def test_tasks_of_others_are_only_for_those_who_may_monitor_them(site):
    from runtime.schema import tasks

    client, engine, company = site
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        bob = conn.execute(users.insert().values(username="bob", name="Bob", roles=["staff"], password_hash=PasswordHasher().hash("bob"),
                                                 created_at=now)).inserted_primary_key[0]
        conn.execute(users.insert().values(username="mia", name="Mia", roles=["sales_manager"], password_hash=PasswordHasher().hash("mia"),
                                           created_at=now))
        task = conn.execute(tasks.insert().values(key="k1", workflow_id="w", process="p", step_id="s", title="Bob's call",
                                                  entity="company", record_id=company, assignee_id=bob, status="open",
                                                  created_at=now)).inserted_primary_key[0]
    log_in(client, "ann")
    assert client.get(f"/tasks/{task}").status_code == 403  # staff: not theirs, may not monitor
    page = client.get("/")
    assert client.post(f"/tasks/{task}/complete", data={"csrf_token": token(page.text)}).status_code == 403
    client.post("/logout", data={"csrf_token": token(page.text)})
    log_in(client, "mia")
    page = client.get(f"/tasks/{task}")
    assert page.status_code == 200  # a manager may monitor tasks assigned to others
    assert "<title>Bob&#39;s call · Tailor</title>" in page.text and page.text.count('action="/tasks/') == 2  # comment, reassign


def test_a_task_opens_for_whoever_started_it_and_for_its_group_and_says_why_it_went_where_it_did(site):
    """Before: "Tasks I started for others" listed a task whose page answered 403 to the one who started it."""
    from runtime.schema import group_members, tasks

    client, engine, company = site
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        ids = {}
        for name in ("bob", "cat", "dan"):
            ids[name] = conn.execute(users.insert().values(username=name, name=name.title(), roles=["staff"],
                                                           password_hash=PasswordHasher().hash(name), created_at=now)).inserted_primary_key[0]
        ann = conn.execute(sa.select(users.c.id).where(users.c.username == "ann")).scalar_one()
        conn.execute(group_members.insert(), [{"group_name": "support", "user_id": ids[u]} for u in ("bob", "cat")])
        task = conn.execute(tasks.insert().values(key="k-started", workflow_id="w", process="p", step_id="s", title="Send the minutes",
                                                  entity="company", record_id=company, assignee_id=ids["bob"], group_name="support",
                                                  created_by=ann, status="open", routed="Acme has no owner, so it came to Bob, a manager "
                                                  "of the Support group.", created_at=now)).inserted_primary_key[0]
    seen = {}
    for name in ("ann", "cat", "bob", "dan"):
        log_in(client, name)
        page = client.get(f"/tasks/{task}")
        why = re.search(r'<h2 id="routed-h">(.*?)</h2>\s*<p>(.*?)</p>', page.text)
        seen[name] = (page.status_code, why.groups() if why else None, 'action="/tasks/%d/complete"' % task in page.text)
        if name == "ann":
            assert "Send the minutes" in client.get("/").text  # in her "Tasks I started for others"
        client.post("/logout", data={"csrf_token": token(client.get("/profile").text)})
    because = "Acme has no owner, so it came to Bob, a manager of the Support group."
    assert seen == {"ann": (200, ("Why it went here", because), False),   # she started it for him
                    "cat": (200, ("Why it went here", because), False),   # it is in her group's work, though Bob has it
                    "bob": (200, ("Why you have this", because), True),
                    "dan": (403, None, False)}


def test_the_alerts_inbox_shows_a_manager_the_alerts_of_their_groups_tasks(site):
    from runtime.schema import alerts, group_members, tasks

    client, engine, company = site
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        lee = conn.execute(users.insert().values(username="lee", name="Lee", roles=["staff"], password_hash=PasswordHasher().hash("lee"),
                                                 created_at=now)).inserted_primary_key[0]
        conn.execute(group_members.insert().values(group_name="support", user_id=lee, manager=True))
        task = conn.execute(tasks.insert().values(key="t", workflow_id="w", process="p", step_id="s", title="Fix printer", entity="company",
                                                  record_id=company, group_name="support", status="open", created_at=now)).inserted_primary_key[0]
        alert = conn.execute(alerts.insert().values(key="a", task_id=task, level=1, recipients=[], message="Fix printer is overdue",
                                                    raised_at=now)).inserted_primary_key[0]
    log_in(client, "ann")
    assert "Fix printer is overdue" not in client.get("/alerts").text  # not hers, not her group
    page = client.get("/alerts")
    assert client.post(f"/alerts/{alert}/acknowledge", data={"csrf_token": token(page.text)}).status_code == 403
    client.post("/logout", data={"csrf_token": token(page.text)})
    log_in(client, "lee")
    page = client.get("/alerts")
    assert "Fix printer is overdue" in page.text
    done = client.post(f"/alerts/{alert}/acknowledge", data={"csrf_token": token(page.text)}, follow_redirects=True)
    assert "Alert acknowledged." in done.text and "acknowledged" in client.get("/alerts").text


def test_the_project_manager_builds_the_team_and_members_see_the_project(site):
    from runtime.schema import projects

    client, engine, company = site
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        pam = conn.execute(users.insert().values(username="pam", name="Pam", roles=["staff", "project_manager"],
                                                 password_hash=PasswordHasher().hash("pam"), created_at=now)).inserted_primary_key[0]
        joe = conn.execute(users.insert().values(username="joe", name="Joe", roles=["project_team"], company_id=company,
                                                 password_hash=PasswordHasher().hash("joe"), created_at=now)).inserted_primary_key[0]
        project = conn.execute(projects.insert().values(key="p1", title="Roll-out", entity="company", record_id=company, manager_id=pam,
                                                        created_at=now)).inserted_primary_key[0]
    log_in(client, "joe")
    assert client.get(f"/projects/{project}").status_code == 403  # not on it yet
    client.cookies.clear()
    log_in(client, "pam")
    page = client.get(f"/projects/{project}")
    added = client.post(f"/projects/{project}/members", data={"csrf_token": token(page.text), "user_id": str(joe)}, follow_redirects=True)
    assert "Joe is on the team of Roll-out." in added.text and "<li><span>Joe</span>" in added.text
    client.cookies.clear()
    log_in(client, "joe")
    assert client.get(f"/projects/{project}").status_code == 200


def test_a_form_for_a_company_offers_only_its_people(site, compiled):
    client, engine, company = site
    with engine.begin() as conn:
        other = records.create_record(conn, compiled, "company", {"name": "Other Ltd", "status": "customer"}, None).id
        records.create_record(conn, compiled, "person", {"company": company, "first_name": "Jane", "last_name": "Doe"}, None)
        records.create_record(conn, compiled, "person", {"company": other, "first_name": "Sam", "last_name": "Spy"}, None)
    log_in(client, "ann")
    page = client.get(f"/forms/lead_enquiry?record={company}")
    assert page.status_code == 200
    assert "Jane Doe" in page.text and "Sam Spy" not in page.text


def test_user_pickers_of_forms_offer_active_staff_only(site, compiled):
    from admin.web.finders import options_for

    _, engine, _ = site
    with engine.connect() as conn:
        owner = next(f.name for f in compiled.model.forms["qualification"].fields if f.type == "user")
        offered = [name for _, name in options_for(conn, compiled, "qualification")[owner]]
    assert offered == ["Ann"]  # not the portal user Pat


def test_the_directory_offers_a_new_record_and_the_board_where_they_exist(site):
    client, _, _ = site
    log_in(client, "ann")
    opportunities = client.get("/directory/opportunity").text
    assert 'href="/board/opportunity"' in opportunities and 'href="/records/opportunity/new"' in opportunities
    assert 'href="/board/company"' not in client.get("/directory/company").text
    assert 'href="/board/opportunity"' in client.get("/").text  # the board is in the main menu


def test_the_reassign_picker_offers_only_who_may_hold_the_task(site):
    from runtime.schema import tasks

    client, engine, company = site
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(users.insert().values(username="mia", name="Mia", roles=["sales_manager"], password_hash=PasswordHasher().hash("mia"),
                                           created_at=now))
        conn.execute(users.insert().values(username="erp", name="Erp Integration", roles=["staff"], created_at=now))  # API only
        conn.execute(users.insert().values(username="gone", name="Gone Away", roles=["staff"], active=False,
                                           password_hash=PasswordHasher().hash("gone"), created_at=now))
        task = conn.execute(tasks.insert().values(key="k2", workflow_id="w2", process="p", step_id="s", title="Call back",
                                                  entity="company", record_id=company, status="open", created_at=now)).inserted_primary_key[0]
    log_in(client, "mia")
    picker = re.search(r'<select id="to-user".*?</select>', client.get(f"/tasks/{task}").text, re.S).group(0)
    offered = re.findall(r">([^<]+)</option>", picker)
    assert "Ann" in offered and "Mia" in offered
    assert not {"Pat", "Erp Integration", "Gone Away"} & set(offered)  # portal, API-only, deactivated
