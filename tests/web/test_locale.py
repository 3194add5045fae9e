"""A user's language: labels of fields, choices, forms and processes on pages (and the page's `lang`) follow the language
they chose on their profile, else their browser's; someone who chose none and whose browser asks for nothing shipped
reads the definitions as written."""
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


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'locale.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        for name, locale in (("ann", None), ("uwe", "de")):
            conn.execute(users.insert().values(username=name, name=name.title(), roles=["staff"], password_hash=FAST.hash(f"{name}-secret"),
                                               locale=locale, created_at=now))
        company = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer",
                                                                    "industry": "healthcare"}, None).id
        conn.execute(users.insert().values(username="pia", name="Pia", roles=["portal"], company_id=company, password_hash=FAST.hash("pia-secret"),
                                           created_at=now))  # a customer's person, in the portal
        uwe = conn.execute(sa.select(users.c.id).where(users.c.username == "uwe")).scalar()
        conn.execute(tasks.insert().values(key="t", workflow_id="wf", process="lead_follow_up", step_id="qualify", title="Qualify Acme",
                                           entity="company", record_id=company, assignee_id=uwe, status="open", created_at=now))
    return create_app(engine, compiled, None, secret_key="locale-secret"), engine, company


def token(client: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def logged_in(app, who: str, **headers) -> TestClient:
    client = TestClient(app, headers=headers)
    response = client.post("/login", data={"csrf_token": token(client), "username": who, "password": f"{who}-secret"}, follow_redirects=False)
    assert response.status_code == 303, f"{who} could not log in"
    return client


def words(html: str) -> str:
    """The page's text, tags dropped and spaces squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_german_user_reads_german_field_and_choice_labels_on_a_record_page(site):
    app, _, company = site
    page = logged_in(app, "uwe").get(f"/records/company/{company}")
    assert page.status_code == 200
    assert '<html lang="de">' in page.text
    text = words(page.text)
    assert "Branche" in text and "Gesundheitswesen" in text  # the field industry and its choice healthcare
    assert "Kunde" in text  # status: customer
    assert "Industry" not in text and "Healthcare" not in text


def test_a_german_user_reads_a_form_in_german(site):
    app, _, company = site
    client = logged_in(app, "uwe")
    form = client.get(f"/forms/support_request?record={company}")
    assert form.status_code == 200
    text = words(form.text)
    assert "Supportanfrage" in text and "Schweregrad" in text and "Kritisch – Dienst ausgefallen" in text
    assert "Wie dringend ist es?" in text  # a section title
    assert "Severity" not in text
    new = words(client.get("/records/company/new").text)  # the staff form of a new record
    assert "Branche" in new and "Öffentlicher Sektor" in new


def test_a_user_who_chose_no_language_reads_the_definitions_as_written(site):
    app, _, company = site
    page = logged_in(app, "ann").get(f"/records/company/{company}")
    assert '<html lang="en">' in page.text
    text = words(page.text)
    assert "Industry" in text and "Healthcare" in text and "Customer" in text
    assert "Branche" not in text and "Gesundheitswesen" not in text


def test_the_browser_language_serves_someone_who_chose_none_and_a_choice_wins_over_it(site):
    app, _, company = site
    ann = logged_in(app, "ann", **{"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert "Gesundheitswesen" in words(ann.get(f"/records/company/{company}").text)
    assert '<html lang="de">' in ann.get("/login").text  # not logged in: the browser's language too
    uwe = logged_in(app, "uwe", **{"Accept-Language": "fr, en;q=0.5"})
    assert "Gesundheitswesen" in words(uwe.get(f"/records/company/{company}").text)  # his own choice
    unknown = logged_in(app, "ann", **{"Accept-Language": "fr"})
    assert "Healthcare" in words(unknown.get(f"/records/company/{company}").text)


def test_a_user_picks_a_language_the_packs_ship_on_the_profile(site):
    app, engine, company = site
    client = logged_in(app, "ann")
    profile = client.get("/profile").text
    assert re.search(r'<option value="de" lang="de">Deutsch</option>', profile)
    saved = client.post("/profile/language", data={"csrf_token": token(client, "/profile"), "locale": "de"})
    assert "Labels are now shown in Deutsch." in saved.text
    assert '<option value="de" lang="de" selected>Deutsch</option>' in saved.text
    assert "Gesundheitswesen" in words(client.get(f"/records/company/{company}").text)
    refused = client.post("/profile/language", data={"csrf_token": token(client, "/profile"), "locale": "xx"})
    assert refused.status_code == 422 and "Choose a language from the list." in refused.text
    client.post("/profile/language", data={"csrf_token": token(client, "/profile"), "locale": ""})
    assert "Healthcare" in words(client.get(f"/records/company/{company}").text)
    with engine.connect() as conn:
        assert conn.execute(sa.select(users.c.locale).where(users.c.username == "ann")).scalar() is None


def test_directory_columns_and_their_choice_values_are_in_the_users_language(site):
    app, _, _ = site
    text = words(logged_in(app, "uwe").get("/directory/company").text)
    assert "Firmen" in text and "Branche" in text and "Ort" in text and "Kundenbetreuer" in text
    assert "Gesundheitswesen" in text and "Kunde" in text
    assert "Industry" not in text and "Healthcare" not in text


def test_my_work_names_the_process_of_a_task_in_the_users_language(site):
    app, _, _ = site
    assert "Lead-Nachverfolgung" in words(logged_in(app, "uwe").get("/").text)


def test_a_refused_record_names_its_field_in_each_readers_language(site):
    app, _, _ = site
    for who, label in (("uwe", "Anzahl Mitarbeitende"), ("ann", "Number of employees")):
        client = logged_in(app, who)
        refused = client.post("/records/company/new", data={"csrf_token": token(client, "/records/company/new"), "name": "Tiny",
                                                             "status": "prospect", "employees": "-1"})
        assert refused.status_code == 422
        assert f"{label} must be at least 0" in words(refused.text)


def test_a_portal_contact_form_follows_the_customers_browser_language(site):
    app, _, _ = site
    german = logged_in(app, "pia", **{"Accept-Language": "de"}).get("/portal/forms/support_request")
    assert german.status_code == 200 and '<html lang="de">' in german.text
    text = words(german.text)
    assert "Supportanfrage" in text and "Schweregrad" in text and "Kritisch – Dienst ausgefallen" in text
    assert "Ihre Anfrage verfolgen Sie auf ihrer Seite hier" in text  # the form's portal description
    english = words(logged_in(app, "pia").get("/portal/forms/support_request").text)
    assert "Severity" in english and "Schweregrad" not in english
