"""The pages' own words in the reader's language: a German reader of the directory, the board, the forms, a project, the
reports and a dashboard, the search and the portal reads German buttons, headings, hints, empty states and messages
around the German labels the packs give; an English reader reads them as written."""
from __future__ import annotations

import datetime as dt
import html
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
from runtime.schema import projects, users
from tests.conftest import CRM

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    """Acme Health with an opportunity and a support request; Uwe (German) and Ann (as written) are staff who manage sales
    and run a project each; Pia (German) and Pat (as written) are Acme's people in the portal."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'words.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        acme = ids["acme"] = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer"}, None).id
        records.create_record(conn, compiled, "opportunity", {"name": "Acme upgrade", "company": acme, "stage": "lead"}, None)
        records.create_record(conn, compiled, "support_request", {"company": acme, "summary": "Printer jams", "description": "It jams.",
                                                                  "category": "fault", "severity": "high"}, None)
        for name, locale, roles, company in (("uwe", "de", ["staff", "sales_manager", "admin"], None),
                                             ("ann", None, ["staff", "sales_manager", "admin"], None),
                                             ("pia", "de", ["portal"], acme), ("pat", None, ["portal"], acme)):
            ids[name] = conn.execute(users.insert().values(username=name, name=name.title(), roles=roles, locale=locale, company_id=company,
                                                           password_hash=FAST.hash(name), created_at=NOW)).inserted_primary_key[0]
        for who in ("uwe", "ann"):
            ids[f"project-{who}"] = conn.execute(projects.insert().values(
                key=f"onboarding/{who}", title=f"Onboarding {who.title()}", entity="company", record_id=acme, manager_id=ids[who],
                status="open", created_at=NOW)).inserted_primary_key[0]
    return create_app(engine, compiled, None, secret_key="words-secret"), ids


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def logged_in(app, who: str) -> TestClient:
    client = TestClient(app)
    response = client.post("/login", data={"csrf_token": token(client.get("/login").text), "username": who, "password": who},
                           follow_redirects=False)
    assert response.status_code == 303, f"{who} could not log in"
    return client


def main_text(page: str) -> str:
    """What a person reads in the page's main part: its text without tags, entities read, spaces collapsed."""
    main = page[page.index("<main"):page.index("</main>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


def test_the_directory_speaks_german_to_a_german_reader_and_english_to_an_english_one(site):
    app, _ = site
    german = main_text(logged_in(app, "uwe").get("/directory/company").text)
    assert "Filter (alle müssen zutreffen)" in german and "Ihre Ansichten" in german and "Firma anlegen" in german
    assert "Diese Firmen als CSV exportieren" in german and "1 gefunden" in german
    assert "Filters (all must hold)" not in german and "Your views" not in german and "found" not in german
    english = main_text(logged_in(app, "ann").get("/directory/company").text)
    assert "Filters (all must hold)" in english and "Your views" in english and "New company" in english
    assert "Export these companies to CSV" in english and "1 found" in english


def test_the_directorys_empty_result_and_a_bad_page_number_read_in_the_readers_language(site):
    app, _ = site
    uwe, ann = logged_in(app, "uwe"), logged_in(app, "ann")
    assert "Keine Firmen gefunden." in main_text(uwe.get("/directory/company?q=zzz").text)
    assert "No companies match." in main_text(ann.get("/directory/company?q=zzz").text)
    assert "„abc“ ist keine Seitenzahl, daher ist dies die erste Seite." in main_text(uwe.get("/directory/company?page=abc").text)
    assert "“abc” is not a page number, so this is the first page." in main_text(ann.get("/directory/company?page=abc").text)
    past = main_text(uwe.get("/directory/company?page=9").text)
    assert "Es gibt nur 1 Seite dieser Firmen; dies ist die letzte." in past
    problem = uwe.get("/directory/company?f1=status&o1=eq&v1=Nonsense")
    assert problem.status_code == 400
    assert "Status: „Nonsense“ ist keine der Auswahlmöglichkeiten (Interessent, Kunde, Ehemaliger Kunde)." in main_text(problem.text)


def test_saving_a_view_is_confirmed_in_german(site):
    app, _ = site
    uwe = logged_in(app, "uwe")
    page = uwe.get("/directory/company")
    saved = uwe.post("/directory/company/views", data={"csrf_token": token(page.text), "name": "Kunden", "query": "q=Acme"})
    assert "Ansicht „Kunden“ gespeichert." in main_text(saved.text)


def test_the_board_speaks_the_readers_language(site):
    app, _ = site
    german = main_text(logged_in(app, "uwe").get("/board/opportunity").text)
    assert "Verkaufschancen nach Phase" in german and "Als Liste ansehen" in german and "Nichts in dieser Phase" in german
    assert "Verschieben Acme upgrade nach" in german  # the card's title for screen readers only
    assert "See them as a list" not in german and "Nothing at this stage" not in german and "Move" not in german
    english = main_text(logged_in(app, "ann").get("/board/opportunity").text)
    assert "Opportunities by stage" in english and "See them as a list" in english and "Nothing at this stage" in english


def test_the_forms_and_a_form_shown_again_with_its_problems_speak_german(site):
    app, ids = site
    uwe = logged_in(app, "uwe")
    assert "— auf der Seite des Eintrags (Firma) öffnen" in main_text(uwe.get("/forms").text)  # the entity as German names it
    form = uwe.get(f"/forms/support_request?record={ids['acme']}")
    assert "Absenden" in main_text(form.text) and "für Acme Health" in main_text(form.text)
    again = uwe.post(f"/forms/support_request?record={ids['acme']}", data={"csrf_token": token(form.text)})
    assert again.status_code == 422
    assert re.search(r"Bitte korrigieren Sie \d+ (Feld|Felder) unten\.", main_text(again.text))
    ann = logged_in(app, "ann")
    assert "— pick the company on the record's page" in main_text(ann.get("/forms").text)
    form = ann.get(f"/forms/support_request?record={ids['acme']}")
    again = ann.post(f"/forms/support_request?record={ids['acme']}", data={"csrf_token": token(form.text)})
    assert re.search(r"Please correct \d+ fields? below\.", main_text(again.text)) and "Submit" in main_text(again.text)


def test_a_project_page_speaks_the_readers_language(site):
    app, ids = site
    german = main_text(logged_in(app, "uwe").get(f"/projects/{ids['project-uwe']}").text)
    assert "Projektleitung" in german and "Mitglieder" in german and "Zum Team hinzufügen" in german
    assert "0 offene Aufgaben" in german and "Noch keine Aufgaben." in german and "Offen" in german
    assert "Project manager" not in german and "No tasks yet" not in german
    english = main_text(logged_in(app, "ann").get(f"/projects/{ids['project-ann']}").text)
    assert "Project manager" in english and "0 open tasks" in english and "Add to the team" in english


def test_the_reports_and_a_dashboard_speak_the_readers_language(site):
    app, _ = site
    uwe, ann = logged_in(app, "uwe"), logged_in(app, "ann")
    listing = main_text(uwe.get("/reports").text)
    assert "Ihr Start-Dashboard" in listing and "Alle Berichte" in listing
    assert "Your home dashboard" in main_text(ann.get("/reports").text)
    board = main_text(uwe.get("/dashboards/sales").text)
    assert "Alle Berichte und Dashboards" in board and "Zeitraum" in board and "Zwischen diesen Daten" in board
    assert "Letzte 90 Tage" in board and "Anzeigen" in board
    assert "Between these dates" not in board and "Period" not in board
    assert "Between these dates" in main_text(ann.get("/dashboards/sales").text)


def test_search_speaks_the_readers_language(site):
    app, _ = site
    uwe, ann = logged_in(app, "uwe"), logged_in(app, "ann")
    assert "Nichts heißt auch nur ähnlich wie „zzz“." in main_text(uwe.get("/search?q=zzz").text)
    assert "Einen Eintrag nach Namen finden" in main_text(uwe.get("/search?q=Acme").text)
    assert "Nothing is called anything like “zzz”." in main_text(ann.get("/search?q=zzz").text)


def test_the_portal_speaks_german_to_a_german_customer(site):
    app, _ = site
    pia = logged_in(app, "pia")
    home = main_text(pia.get("/portal").text)
    assert "Ihre Anfragen" in home and "Anfrage" in home and "Erstellt" in home
    assert "Your requests" not in home and "Raised" not in home
    assert "Your requests" in main_text(logged_in(app, "pat").get("/portal").text)
    request_url = re.search(r'href="(/portal/requests/\d+)"', pia.get("/portal").text).group(1)
    page = pia.get(request_url)
    text = main_text(page.text)
    assert "Alle Ihre Anfragen" in text and "Gespräch" in text and "Antwort senden" in text and "Statusverlauf" in text
    sent = pia.post(f"{request_url}/reply", data={"csrf_token": token(page.text), "text": "Danke", "request_id": "r-1"})
    assert "Ihre Antwort ist gesendet: Wir antworten hier und per E-Mail." in main_text(sent.text)
    assert "Sie" in main_text(sent.text)  # her own message, as the conversation names the reader
