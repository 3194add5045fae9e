"""The administrator's console without a browser: users, passwords, tokens, groups, a person's access and the log."""
from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.schema import console_log, group_members, metadata as platform, project_members, projects, sessions, users
from tests.conftest import CRM
from tests.web.test_pages import log_in, token


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
        for name, full, roles in [("ada", "Ada Admin", ["admin", "staff"]), ("ann", "Ann Sales", ["staff"]), ("mia", "Mia Manager", ["staff"])]:
            conn.execute(users.insert().values(username=name, name=full, email=f"{name}@example.com", roles=roles,
                                               password_hash=hasher.hash(name), created_at=now))
        acme = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer"}, None)
        jane = records.create_record(conn, compiled, "person", {"first_name": "Jane", "last_name": "Doe", "company": acme.id,
                                                                "email": "jane@acme.example"}, None)
        loner = records.create_record(conn, compiled, "person", {"first_name": "Lone", "last_name": "Wolf", "company": acme.id}, None)
        project = conn.execute(projects.insert().values(key="p1", title="Acme roll-out", entity="company", record_id=acme.id, status="open",
                                                        created_at=now)).inserted_primary_key[0]
    app = create_app(engine, compiled, None, secret_key="test-secret")
    ids = {"jane": jane.id, "loner": loner.id, "project": project, "acme": acme.id}
    with engine.connect() as conn:
        ids.update(dict(conn.execute(sa.select(users.c.username, users.c.id)).all()))
    return TestClient(app), engine, ids


def csrf(client, url: str) -> str:
    return token(client.get(url).text)


def post(client, url: str, data: dict, page: str | None = None):
    return client.post(url, data={"csrf_token": csrf(client, page or url), **data}, follow_redirects=False)


def shown_once(html: str) -> str:
    return re.search(r'<code class="once">([^<]+)</code>', html).group(1)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_only_administrators_reach_the_console(site):
    client, _, ids = site
    log_in(client, "ann")
    for url in ("/admin", "/admin/users", f"/admin/users/{ids['mia']}", "/admin/groups", "/admin/groups/sales", "/admin/log"):
        response = client.get(url)
        assert response.status_code == 403 and "administer Tailor" in response.text, url
    assert "Console" not in client.get("/").text
    log_in(client, "ada")
    assert 'href="/admin"' in client.get("/").text  # in the admin's navigation
    assert client.get("/admin/users").status_code == 200


def test_create_a_user_who_must_choose_a_password_at_the_first_login(site):
    client, engine, _ = site
    log_in(client, "ada")
    bad = post(client, "/admin/users", {"name": "", "username": "Bad Name!", "email": "not-an-email", "reason": ""}, "/admin/users/new")
    assert bad.status_code == 422
    page = text(bad.text)
    assert "Give the person's name." in page and "lower-case letters" in page and "like name@example.com" in page
    assert 'value="Bad Name!"' in bad.text  # what was typed stays
    taken = post(client, "/admin/users", {"name": "Another Ann", "username": "ann", "roles": "staff"}, "/admin/users/new")
    assert taken.status_code == 422 and "is taken" in taken.text

    made = post(client, "/admin/users", {"name": "Tom New", "username": "tom", "email": "tom@example.com", "roles": ["staff", "sales_manager"],
                                         "reason": "joined the sales team"}, "/admin/users/new")
    assert made.status_code == 200 and "User added." in made.text
    password = shown_once(made.text)
    with engine.connect() as conn:
        tom = conn.execute(sa.select(users).where(users.c.username == "tom")).mappings().one()
        logged = conn.execute(sa.select(console_log)).mappings().all()
    assert tom["must_change_password"] and tom["roles"] == ["staff", "sales_manager"] and password not in str(dict(tom))
    assert [(r["action"], r["subject"], r["reason"]) for r in logged] == [("user.create", "user tom (Tom New)", "joined the sales team")]

    client.cookies.clear()
    assert log_in(client, "tom", password).status_code == 303
    response = client.get("/", follow_redirects=False)  # anything but the profile sends them to choose a password
    assert response.status_code == 303 and response.headers["location"] == "/profile#password"
    profile = client.get("/profile")
    assert "Choose your own password" in profile.text and "set by an administrator" in profile.text
    changed = post(client, "/profile/password", {"current_password": password, "new_password": "tom's own secret",
                                                 "confirm_password": "tom's own secret"}, "/profile")
    assert changed.status_code == 303
    assert client.get("/").status_code == 200  # My work, at last


def test_reset_password_ends_their_sessions_and_they_must_change_it(site):
    client, engine, ids = site
    other = TestClient(client.app)
    log_in(other, "ann")
    assert other.get("/").status_code == 200
    log_in(client, "ada")
    answer = post(client, f"/admin/users/{ids['ann']}/reset-password", {}, f"/admin/users/{ids['ann']}")
    assert answer.status_code == 200 and "Temporary password" in answer.text
    temporary = shown_once(answer.text)
    assert other.get("/", follow_redirects=False).status_code == 303  # Ann's session ended on the server
    assert log_in(other, "ann", "ann").status_code == 401  # the old password no longer works
    assert log_in(other, "ann", temporary).status_code == 303
    assert other.get("/", follow_redirects=False).headers["location"] == "/profile#password"
    assert client.get(f"/admin/users/{ids['ann']}").text.count(temporary) == 0  # shown once, never again


def test_an_api_token_is_shown_once_and_a_revoked_one_is_refused_at_once(site):
    client, _, ids = site
    log_in(client, "ada")
    answer = post(client, f"/admin/users/{ids['mia']}/token", {}, f"/admin/users/{ids['mia']}")
    bearer = {"Authorization": f"Bearer {shown_once(answer.text)}"}
    api = TestClient(client.app)
    assert api.get("/api/forms", headers=bearer).status_code == 200
    revoked = post(client, f"/admin/users/{ids['mia']}/token/revoke", {}, f"/admin/users/{ids['mia']}")
    assert revoked.status_code == 303
    assert api.get("/api/forms", headers=bearer).status_code == 401
    again = post(client, f"/admin/users/{ids['mia']}/token/revoke", {}, f"/admin/users/{ids['mia']}")
    assert again.status_code == 422 and "has no API token" in again.text


def test_deactivate_needs_a_reason_ends_sessions_and_an_admin_cannot_deactivate_themselves(site):
    client, engine, ids = site
    other = TestClient(client.app)
    log_in(other, "ann")
    log_in(client, "ada")
    page = f"/admin/users/{ids['ann']}"
    refused = post(client, f"{page}/deactivate", {"reason": " "}, page)
    assert refused.status_code == 422 and "Say why" in refused.text
    assert post(client, f"{page}/deactivate", {"reason": "left the company"}, page).status_code == 303
    assert other.get("/", follow_redirects=False).status_code == 303
    listed = text(client.get("/admin/users?status=deactivated").text)
    assert "Ann Sales" in listed and "Deactivated" in listed and "Ann Sales" not in text(client.get("/admin/users").text)
    assert post(client, f"{page}/reactivate", {}, page).status_code == 303
    me = f"/admin/users/{ids['ada']}"
    mine = post(client, f"{me}/deactivate", {"reason": "testing"}, me)
    assert mine.status_code == 422 and "cannot deactivate yourself" in mine.text
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(console_log.c.action).order_by(console_log.c.id))]
    assert actions == ["user.deactivate", "user.reactivate"]
    assert "left the company" in text(client.get("/admin/log").text)


def test_group_members_and_managers(site):
    client, engine, ids = site
    log_in(client, "ada")
    groups = text(client.get("/admin/groups").text)
    assert "Nobody" in groups  # an empty team stands out
    page = "/admin/groups/sales"
    assert post(client, f"{page}/members", {"user_id": str(ids["ann"]), "part": "member"}, page).status_code == 303
    assert post(client, f"{page}/members", {"user_id": str(ids["mia"]), "part": "manager"}, page).status_code == 303
    shown = text(client.get(page).text)
    assert "Ann Sales" in shown and "Mia Manager Manager" in shown
    nobody = post(client, f"{page}/members", {"user_id": "x"}, page)
    assert nobody.status_code == 422 and "Choose someone from the list." in nobody.text
    with engine.connect() as conn:
        rows = set(conn.execute(sa.select(group_members.c.group_name, group_members.c.user_id, group_members.c.manager)).all())
    assert rows == {("sales", ids["ann"], False), ("sales", ids["mia"], True)}
    assert post(client, f"{page}/members/{ids['ann']}/remove", {}, page).status_code == 303
    gone = post(client, f"{page}/members/{ids['ann']}/remove", {}, page)
    assert gone.status_code == 422 and "is not in this group" in gone.text
    assert client.get("/admin/groups/no_such_group").status_code == 404
    assert client.get("/admin/users/99999").status_code == 404


def test_give_a_person_portal_access_from_their_record(site):
    client, engine, ids = site
    log_in(client, "ada")
    record = f"/records/person/{ids['jane']}"
    page = client.get(record).text
    assert "has no access yet" in page and 'value="jane"' in page  # the user name suggested from the email
    answer = post(client, f"/admin/people/{ids['jane']}/access", {"kind": "portal", "username": "jane"}, record)
    assert answer.status_code == 200 and "Temporary password" in answer.text
    with engine.connect() as conn:
        jane = conn.execute(sa.select(users).where(users.c.username == "jane")).mappings().one()
    assert jane["roles"] == ["portal"] and jane["company_id"] == ids["acme"] and jane["person_id"] == ids["jane"]
    with engine.connect() as conn:  # the person record says so too (it read "No access" while she logged in)
        assert records.get_record(conn, client.app.state.compiled, "person", ids["jane"]).data["portal_access"] == "portal"
    assert "logs in as" in text(client.get(record).text) and "Portal user" in text(client.get(record).text)
    # a user name already taken: nothing is made, the record page says why
    lone = post(client, f"/admin/people/{ids['loner']}/access", {"kind": "portal", "username": "jane"}, f"/records/person/{ids['loner']}")
    assert lone.status_code == 303 and "is taken" in client.get(lone.headers["location"]).text
    assert "has no access yet" in client.get(f"/records/person/{ids['loner']}").text


def test_give_a_person_a_place_on_a_project_team(site):
    client, engine, ids = site
    log_in(client, "ada")
    record = f"/records/person/{ids['jane']}"
    answer = post(client, f"/admin/people/{ids['jane']}/access", {"kind": "project_team", "project_id": str(ids["project"]),
                                                                  "username": "jane.doe"}, record)
    assert answer.status_code == 200
    with engine.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == "jane.doe")).scalar_one()
        assert conn.execute(sa.select(project_members.c.project_id).where(project_members.c.user_id == uid)).scalar() == ids["project"]


def test_the_person_access_block_is_for_administrators_only(site):
    client, _, ids = site
    log_in(client, "ann")
    assert "Access to Tailor" not in client.get(f"/records/person/{ids['jane']}").text
    response = post(client, f"/admin/people/{ids['jane']}/access", {"kind": "portal"}, "/")
    assert response.status_code == 403


def test_a_wrong_page_number_goes_to_the_last_page(site):
    client, _, _ = site
    log_in(client, "ada")
    response = client.get("/admin/users?page=99", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].endswith("page=1")
    assert client.get("/admin/users?page=abc").status_code == 200
    assert client.get("/admin/log?page=-4").status_code == 200


def test_sessions_table_is_what_ends_a_session(site):
    """Deactivating revokes on the server: the session row is marked revoked (not only the cookie forgotten)."""
    client, engine, ids = site
    other = TestClient(client.app)
    log_in(other, "mia")
    log_in(client, "ada")
    post(client, f"/admin/users/{ids['mia']}/deactivate", {"reason": "moved on"}, f"/admin/users/{ids['mia']}")
    with engine.connect() as conn:
        live = conn.execute(sa.select(sa.func.count()).select_from(sessions).where(sessions.c.user_id == ids["mia"],
                                                                                   sessions.c.revoked_at.is_(None))).scalar()
    assert live == 0
