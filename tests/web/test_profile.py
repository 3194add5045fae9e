"""The profile page: a user's time zone changes how every time reads; a password change ends their other sessions."""
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
from runtime.schema import metadata as platform
from runtime.schema import tasks, users
from tests.conftest import CRM

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
DUE = dt.datetime(2030, 7, 1, 8, 0, tzinfo=dt.UTC)  # a summer Monday: London is UTC+1 then


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'profile.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        ann = conn.execute(users.insert().values(username="ann", name="Ann Sales", roles=["staff"], password_hash=FAST.hash("ann-secret"),
                                                 created_at=now)).inserted_primary_key[0]
        company = records.create_record(conn, compiled, "company", {"name": "Acme", "status": "customer"}, None).id
        task = conn.execute(tasks.insert().values(key="t", workflow_id="wf", process="lead_follow_up", step_id="call", title="Call Acme back",
                                                  entity="company", record_id=company, assignee_id=ann, status="open", due_at=DUE,
                                                  created_at=now)).inserted_primary_key[0]
    return create_app(engine, compiled, None, secret_key="profile-secret"), engine, task


def token(client: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def logged_in(app, password: str = "ann-secret") -> TestClient:
    client = TestClient(app)
    response = client.post("/login", data={"csrf_token": token(client), "username": "ann", "password": password}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/", "ann could not log in"
    return client


def test_the_time_zone_a_user_chooses_changes_how_a_due_time_reads(site):
    app, _, task = site
    client = logged_in(app)
    assert "Mon 1 Jul 2030, 09:00" in client.get("/").text  # the organisation's zone (the calendar's: Europe/London) by default
    profile = client.get("/profile")
    assert '<option value="" selected>' in profile.text and "Europe/London" in profile.text

    saved = client.post("/profile", data={"csrf_token": token(client, "/profile"), "time_zone": "America/New_York"})
    assert "Times are now shown in America/New_York." in saved.text
    assert re.search(r'<option value="America/New_York" selected>New York \(UTC-0[45]:00\)</option>', saved.text)
    home, task_page = client.get("/").text, client.get(f"/tasks/{task}").text
    assert "Mon 1 Jul 2030, 04:00" in home and "09:00" not in home
    assert "Mon 1 Jul 2030, 04:00" in task_page

    client.post("/profile", data={"csrf_token": token(client, "/profile"), "time_zone": "Asia/Tokyo"})
    assert "Mon 1 Jul 2030, 17:00" in client.get("/").text
    client.post("/profile", data={"csrf_token": token(client, "/profile"), "time_zone": ""})  # back to the organisation's
    assert "Mon 1 Jul 2030, 09:00" in client.get("/").text


def test_a_time_zone_that_is_not_in_the_list_is_refused_on_its_field(site):
    app, engine, _ = site
    client = logged_in(app)
    response = client.post("/profile", data={"csrf_token": token(client, "/profile"), "time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 422
    assert 'id="time_zone-error">Choose a time zone from the list.' in response.text and 'aria-invalid="true"' in response.text
    with engine.connect() as conn:
        assert conn.execute(sa.select(users.c.time_zone).where(users.c.username == "ann")).scalar() is None


def test_changing_the_password_ends_every_other_session_and_keeps_this_one(site):
    app, _, _ = site
    here, elsewhere = logged_in(app), logged_in(app)
    assert elsewhere.get("/", follow_redirects=False).status_code == 200
    done = here.post("/profile/password", data={"csrf_token": token(here, "/profile"), "current_password": "ann-secret",
                                                "new_password": "correct horse battery", "confirm_password": "correct horse battery"})
    assert done.status_code == 200 and "Your password is changed. You were logged out of 1 other session." in done.text
    assert here.get("/", follow_redirects=False).status_code == 200  # still logged in here
    gone = elsewhere.get("/", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    fresh = TestClient(app)
    old = fresh.post("/login", data={"csrf_token": token(fresh), "username": "ann", "password": "ann-secret"}, follow_redirects=False)
    assert old.status_code == 401
    logged_in(app, "correct horse battery")


def test_a_wrong_current_password_is_refused_with_a_message_and_changes_nothing(site):
    app, engine, _ = site
    client, other = logged_in(app), logged_in(app)
    with engine.connect() as conn:
        before = conn.execute(sa.select(users.c.password_hash).where(users.c.username == "ann")).scalar()
    response = client.post("/profile/password", data={"csrf_token": token(client, "/profile"), "current_password": "guess",
                                                      "new_password": "correct horse battery", "confirm_password": "correct horse"})
    assert response.status_code == 422
    assert 'id="current_password-error">That is not your current password.' in response.text
    assert 'id="confirm_password-error">The two new passwords are not the same.' in response.text  # every problem at once
    assert "correct horse" not in response.text  # what was typed into a password field is never sent back
    with engine.connect() as conn:
        assert conn.execute(sa.select(users.c.password_hash).where(users.c.username == "ann")).scalar() == before
    assert other.get("/", follow_redirects=False).status_code == 200  # nobody was logged out


def test_a_short_new_password_is_refused(site):
    app, _, _ = site
    client = logged_in(app)
    response = client.post("/profile/password", data={"csrf_token": token(client, "/profile"), "current_password": "ann-secret",
                                                      "new_password": "short", "confirm_password": "short"})
    assert response.status_code == 422 and "Choose a new password of at least 8 characters." in response.text


def test_guessing_the_current_password_is_throttled_like_logging_in(site):
    app, _, _ = site
    client = logged_in(app)
    attempts = [client.post("/profile/password", data={"csrf_token": token(client, "/profile"), "current_password": f"guess {n}",
                                                       "new_password": "correct horse battery", "confirm_password": "correct horse battery"}).status_code
                for n in range(6)]
    assert attempts == [422] * 5 + [429]
