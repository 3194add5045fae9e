"""A task whose step title is a template reads in its reader's language on My work, the task page and the alerts page;
a task made before titles were kept reads as it was made; an administrator sets a user's language on the console's
user page (or the user on their profile, the same change in the same console log), and that user's pages turn German. The German task page in a browser, on a desk and a phone."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from playwright.sync_api import expect, sync_playwright

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.activities import Activities
from runtime.schema import console_log, group_members, tasks, users
from runtime.schema import metadata as platform
from tests.conftest import CRM
from tests.runtime.test_task_titles import CLIENT
from tests.web.browser import ARGS, CHROMIUM, needs_chromium
from tests.web.look import serve
from tests.web.test_look import page_width

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
SHOTS = Path("/tmp/titles-shots")


@pytest.fixture
def site(packs, tmp_path):
    compiled = compile_model(load([CRM, packs.write("client", CLIENT, extends="crm: '>=1.0'")]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'titles.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        ids = {name: conn.execute(users.insert().values(username=name, name=name.title(), roles=roles, locale=locale, created_at=now,
                                                        password_hash=FAST.hash(f"{name}-secret"))).inserted_primary_key[0]
               for name, roles, locale in (("ada", ["admin", "staff"], None), ("ann", ["staff"], None), ("uwe", ["staff"], "de"))}
        conn.execute(group_members.insert(), [{"group_name": "sales", "user_id": ids[n], "manager": False} for n in ("ann", "uwe")])
        company = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer"}, None).id
        old = conn.execute(tasks.insert().values(key="old:call", workflow_id="old", process="check_in", step_id="call",
                                                 title="Call Old Co (prospect)", entity="company", record_id=company,
                                                 group_name="sales", status="open", created_at=now)).inserted_primary_key[0]
    acts = Activities(engine, compiled)
    made = {who: acts.create_task({  # as the workflow asks for them: the title rendered in English
        "key": f"wf-{who}:call", "workflow_id": f"wf-{who}", "process": "check_in", "step_id": "call", "title": "Call Acme Health (customer)",
        "entity": "company", "record_id": company, "assign": {"kind": "user", "name": who}})["result"]["task_id"] for who in ("uwe", "ann")}
    return create_app(engine, compiled, None, secret_key="titles-secret"), engine, {**ids, "task": made["uwe"], "ann_task": made["ann"], "old": old}


def token(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def logged_in(app, who: str) -> TestClient:
    client = TestClient(app)
    response = client.post("/login", data={"csrf_token": token(client, "/login"), "username": who, "password": f"{who}-secret"},
                           follow_redirects=False)
    assert response.status_code == 303, f"{who} could not log in"
    return client


def words(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


def test_a_german_user_reads_the_german_title_on_my_work_and_the_task_page_and_an_english_user_the_english(site):
    app, _, ids = site
    uwe, ann = logged_in(app, "uwe"), logged_in(app, "ann")
    work = words(uwe.get("/").text)
    assert "Acme Health anrufen (Kunde)" in work and "Call Acme Health" not in work
    page = words(uwe.get(f"/tasks/{ids['task']}").text)
    assert "Acme Health anrufen (Kunde)" in page and "Call Acme Health" not in page
    work = words(ann.get("/").text)
    assert "Call Acme Health (Customer)" in work and "anrufen" not in work  # the choice's label, not its value
    assert "Call Acme Health (Customer)" in words(ann.get(f"/tasks/{ids['ann_task']}").text)


def test_a_task_made_before_titles_were_kept_reads_as_it_was_made(site):
    app, _, ids = site
    uwe = logged_in(app, "uwe")
    assert "Call Old Co (prospect)" in words(uwe.get("/").text)
    assert "Call Old Co (prospect)" in words(uwe.get(f"/tasks/{ids['old']}").text)


def test_the_task_keeps_its_title_in_the_definitions_language_as_people_read_it(site):
    """tasks.title, which the API gives: the English title with the choice's label; the workflow's raw one is gone."""
    _, engine, ids = site
    with engine.connect() as conn:
        row = conn.execute(sa.select(tasks.c.title, tasks.c.titles).where(tasks.c.id == ids["task"])).one()
    assert row == ("Call Acme Health (Customer)", {"de": "Acme Health anrufen (Kunde)"})


def test_an_administrator_sets_a_users_language_on_the_console_and_their_pages_turn_german(site):
    app, engine, ids = site
    ada, ann = logged_in(app, "ada"), logged_in(app, "ann")
    page = ada.get(f"/admin/users/{ids['ann']}").text
    assert '<option value="de" lang="de">Deutsch</option>' in page and "Their browser's language" in page
    refused = ada.post(f"/admin/users/{ids['ann']}/language", data={"csrf_token": token(ada, f"/admin/users/{ids['ann']}"), "locale": "xx"})
    assert refused.status_code == 422 and "Choose a language from the list." in refused.text
    saved = ada.post(f"/admin/users/{ids['ann']}/language", data={"csrf_token": token(ada, f"/admin/users/{ids['ann']}"), "locale": "de"})
    assert saved.status_code == 200 and "Language saved." in saved.text
    assert '<option value="de" lang="de" selected>Deutsch</option>' in saved.text
    assert "Acme Health anrufen (Kunde)" in words(ann.get("/").text)  # her next page, in the session she already had
    with engine.connect() as conn:
        logged = conn.execute(sa.select(console_log.c.action, console_log.c.details, console_log.c.actor_id)).all()
    assert logged == [("user.language", {"language": ["their browser's language", "Deutsch"]}, ids["ada"])]
    assert 'data-label="What">Language</td>' in saved.text  # the page's own list of changes to Ann names it


def test_a_user_sets_their_own_language_on_the_profile_as_the_console_does_and_a_bad_one_changes_nothing(site):
    app, engine, ids = site
    ann = logged_in(app, "ann")
    saved = ann.post("/profile/language", data={"csrf_token": token(ann, "/profile"), "locale": "de"})
    assert saved.status_code == 200 and "Labels are now shown in Deutsch." in saved.text
    work = ann.get("/")
    assert '<html lang="de">' in work.text
    assert "Acme Health anrufen (Kunde)" in words(work.text) and "Call Acme Health" not in words(work.text)
    with engine.connect() as conn:  # in the console log as an administrator's change is, made by Ann herself
        logged = conn.execute(sa.select(console_log.c.action, console_log.c.subject, console_log.c.details, console_log.c.actor_id)).all()
    assert logged == [("user.language", "user ann (Ann)", {"language": ["their browser's language", "Deutsch"]}, ids["ann"])]
    refused = ann.post("/profile/language", data={"csrf_token": token(ann, "/profile"), "locale": "xx"})
    assert refused.status_code == 422
    assert '<p class="error" id="locale-error">Choose a language from the list.</p>' in refused.text  # at the select
    assert re.search(r'<select id="locale" name="locale" aria-invalid="true"', refused.text)
    assert '<option value="de" lang="de" selected>Deutsch</option>' in refused.text  # her language as it still is
    with engine.connect() as conn:
        assert conn.execute(sa.select(users.c.locale).where(users.c.id == ids["ann"])).scalar() == "de"
        assert conn.execute(sa.select(sa.func.count()).select_from(console_log)).scalar() == 1
    assert "Acme Health anrufen (Kunde)" in words(ann.get("/").text)


@needs_chromium
def test_the_german_task_page_in_a_browser_fits_a_desk_and_a_phone(site):
    app, _, ids = site
    SHOTS.mkdir(exist_ok=True)
    url, server, thread = serve(app)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for width in (1280, 390):
                    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
                    page.goto(f"{url}/login")
                    page.get_by_label("User name").fill("uwe")
                    page.get_by_label("Password").fill("uwe-secret")
                    page.get_by_role("button", name="Log in").click()
                    expect(page).not_to_have_url(re.compile(r"/login"))
                    page.goto(f"{url}/tasks/{ids['task']}")
                    expect(page.locator("html")).to_have_attribute("lang", "de")
                    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Health anrufen (Kunde)")
                    page.screenshot(path=str(SHOTS / f"task-de-{width}.png"), full_page=True)
                    assert page_width(page) <= width, f"the page is {page_width(page)} px wide at {width} px"
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=15)
