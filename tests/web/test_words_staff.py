"""The staff pages' own words (buttons, headings, table headers, empty states, hints, flash messages) in the reader's
language: a German reader (uwe, who chose German on his profile, or a browser asking for German) reads My work, a record,
its edit form, a task, the alerts, the profile, the login and an error page in German, an English reader the same
pages in English, and no English word is left among the words those pages mark for translation."""
from __future__ import annotations

import datetime as dt
import re
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from jinja2.ext import babel_extract

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from forms import widgets
from runtime import records, words
from runtime.schema import alerts, tasks, users
from runtime.schema import metadata as platform
from tests.conftest import CRM

TEMPLATES = Path(__file__).resolve().parents[2] / "admin" / "web" / "templates"
# the staff pages' templates whose words this catalog work covers (the console stays English; other areas have their own)
STAFF = ["base.html", "fields.html", "errors", "auth", "profile", "notifications", "alerts", "work", "tasks", "records"]

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    """Ann reads English, Uwe German; Uwe has a task about Acme Health, overdue, and an alert about it; so has Ann."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'words.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        ids = {}
        for name, locale in (("ann", None), ("uwe", "de")):
            ids[name] = conn.execute(users.insert().values(username=name, name=name.title(), roles=["staff"],
                                                           password_hash=FAST.hash(f"{name}-secret"), locale=locale,
                                                           created_at=now)).inserted_primary_key[0]
        company = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer",
                                                                    "industry": "healthcare", "is_own_organisation": False}, None).id
        task_ids = {}
        for name, user_id in ids.items():
            task_ids[name] = conn.execute(tasks.insert().values(
                key=f"t-{name}", workflow_id=f"wf-{name}", process="lead_follow_up", step_id="qualify", title="Qualify Acme",
                entity="company", record_id=company, assignee_id=user_id, status="open", created_at=now - dt.timedelta(days=2),
                due_at=now - dt.timedelta(days=1))).inserted_primary_key[0]
            conn.execute(alerts.insert().values(key=f"a-{name}", task_id=task_ids[name], level=1, recipients=[user_id],
                                                message="Qualify Acme is late", raised_at=now - dt.timedelta(hours=2)))
    return create_app(engine, compiled, None, secret_key="words-secret"), company, task_ids


def token(client: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def logged_in(app, who: str, **headers) -> TestClient:
    client = TestClient(app, headers=headers)
    response = client.post("/login", data={"csrf_token": token(client), "username": who, "password": f"{who}-secret"}, follow_redirects=False)
    assert response.status_code == 303, f"{who} could not log in"
    return client


def text_of(html: str) -> str:
    """The page's text and the words of its attributes people hear (labels, placeholders), tags dropped, spaces squeezed."""
    said = " ".join(re.findall(r'(?:aria-label|placeholder)="([^"]*)"', html))
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)) + " " + said)


def reads(text: str, wanted: list[str], unwanted: list[str]) -> None:
    missing = [w for w in wanted if w not in text]
    left = [w for w in unwanted if re.search(rf"\b{re.escape(w)}\b", text)]
    assert not missing and not left, f"missing {missing}, still there {left}"


# (German, English) of each page: the German words a German reader sees, and the same words in English
MY_WORK = [("Meine Arbeit", "My work"), ("1 Aufgabe zu erledigen", "1 task to do"), ("Überfällig", "Overdue"),
           ("Wann fällig", "When due"), ("Alle Prozesse", "Any process"), ("Bei wem", "Who has it"), ("Aufgabe öffnen", "Open the task"),
           ("Meine Kunden", "My customers"), ("Bestätigen", "Acknowledge"), ("Alle Einträge durchsuchen", "Search all records"),
           ("Abmelden", "Log out"), ("Zum Inhalt springen", "Skip to main content")]
RECORD = [("Firma bearbeiten", "Edit this company"), ("Details", "Details"), ("Für jeden Eintrag (Firma)", "For every company"),
          ("Offene Aufgaben", "Open tasks"), ("Kontakt erfassen", "Record a contact"), ("Kontaktverlauf", "Contact history"),
          ("Projekte", "Projects"), ("Keine Projekte.", "No projects."), ("Noch nichts", "Nothing yet")]
EDIT = [("Acme Health bearbeiten", "Edit Acme Health"), ("Speichern", "Save"), ("Abbrechen", "Cancel"), ("— auswählen —", "— choose —")]
TASK = [("Aufgabe erledigen", "Complete this task"), ("Der Prozess bisher", "The process so far"), ("Kommentare", "Comments"),
        ("Noch keine Kommentare.", "No comments yet."), ("Kommentieren", "Add comment"), ("Zugewiesen an", "Assigned to"),
        ("Fällig", "Due"), ("Überfällig", "Overdue")]
ALERTS = [("Warnungen", "Alerts"), ("1 noch nicht bestätigt", "1 not yet acknowledged"), ("Erstellt", "Raised"),
          ("Stufe 1", "Level 1"), ("Bestätigen", "Acknowledge"), ("Welche Warnungen", "Which alerts")]
PROFILE = [("Ihr Profil", "Your profile"), ("Zeitzone speichern", "Save time zone"), ("Sprache speichern", "Save language"),
           ("Aktuelles Passwort", "Current password"), ("Passwort ändern", "Change password"), ("Sprache Ihres Browsers", "Your browser's language")]
LOGIN = [("Bei Tailor anmelden", "Log in to Tailor"), ("Benutzername", "User name"), ("Passwort", "Password"), ("Anmelden", "Log in")]
NOT_FOUND = [("Nicht gefunden", "Not found"), ("Unter dieser Adresse gibt es nichts.", "There is nothing at this address."),
             ("Zurück zu Meine Arbeit", "Back to My work")]


def pages(app, who: str, company: int, task_id: int, **headers) -> dict[str, tuple[str, list]]:
    client = logged_in(app, who, **headers)
    return {"my work": (client.get("/").text, MY_WORK), "record": (client.get(f"/records/company/{company}").text, RECORD),
            "edit": (client.get(f"/records/company/{company}/edit").text, EDIT), "task": (client.get(f"/tasks/{task_id}").text, TASK),
            "alerts": (client.get("/alerts").text, ALERTS), "profile": (client.get("/profile").text, PROFILE),
            "not found": (client.get("/no/such/page").text, NOT_FOUND)}


def test_a_german_reader_reads_the_staff_pages_own_words_in_german(site):
    app, company, task_ids = site
    for name, (html, pairs) in pages(app, "uwe", company, task_ids["uwe"]).items():
        assert '<html lang="de">' in html, name
        english = [en for de, en in pairs if en != de and en not in ("Details",)]
        reads(text_of(html), [de for de, _ in pairs], english)


def test_an_english_reader_reads_the_same_pages_in_english(site):
    app, company, task_ids = site
    for name, (html, pairs) in pages(app, "ann", company, task_ids["ann"]).items():
        assert '<html lang="en">' in html, name
        reads(text_of(html), [en for _, en in pairs], [de for de, en in pairs if de != en and de not in ("Passwort",)])


def test_the_login_page_follows_the_browsers_language(site):
    app, _, _ = site
    german = TestClient(app, headers={"Accept-Language": "de-DE,de;q=0.9"}).get("/login").text
    reads(text_of(german), [de for de, _ in LOGIN], ["Log in to Tailor", "User name"])
    english = TestClient(app).get("/login").text
    reads(text_of(english), [en for _, en in LOGIN], ["Bei Tailor anmelden", "Benutzername"])
    refused = TestClient(app, headers={"Accept-Language": "de"})
    page = refused.post("/login", data={"csrf_token": token(refused), "username": "uwe", "password": "wrong"})
    assert page.status_code == 401 and "Benutzername und Passwort passen nicht zusammen." in text_of(page.text)


def test_a_refused_edit_form_says_what_is_wrong_in_german_and_english(site):
    app, company, _ = site
    for who, summary, buttons in (("uwe", "Nichts wurde gespeichert. Bitte korrigieren Sie 1 Angabe:", ["Speichern", "Abbrechen"]),
                                  ("ann", "Nothing was saved. Please correct 1 thing:", ["Save", "Cancel"])):
        client = logged_in(app, who)
        edit = client.get(f"/records/company/{company}/edit").text
        version = re.search(r'name="row_version" value="(\d+)"', edit).group(1)
        refused = client.post(f"/records/company/{company}/edit", data={"csrf_token": token(client, f"/records/company/{company}/edit"),
                                                                        "row_version": version, "name": "Acme Health",
                                                                        "status": "customer", "employees": "-1"})
        assert refused.status_code == 422
        reads(text_of(refused.text), [summary, *buttons], [])


def test_flash_messages_are_said_in_the_readers_language(site):
    app, company, _ = site
    for who, saved_record, acknowledged, zone in (
            ("uwe", "Firma „Acme GmbH“ gespeichert.", "Warnung bestätigt.", "Zeiten werden jetzt in Europe/Berlin angezeigt."),
            ("ann", "Saved company 'Acme Ltd'.", "Alert acknowledged.", "Times are now shown in Europe/Berlin.")):
        client = logged_in(app, who)
        edit = client.get(f"/records/company/{company}/edit").text
        version = re.search(r'name="row_version" value="(\d+)"', edit).group(1)
        page = client.post(f"/records/company/{company}/edit", data={"csrf_token": token(client, f"/records/company/{company}/edit"),
                                                                     "row_version": version, "name": "Acme " + ("GmbH" if who == "uwe" else "Ltd"),
                                                                     "status": "customer", "industry": "healthcare"})
        assert saved_record in text_of(page.text)
        alert_id = re.search(r'action="/alerts/(\d+)/acknowledge"', client.get("/alerts").text).group(1)
        page = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": token(client, "/alerts"), "show": "open"})
        assert acknowledged in text_of(page.text)
        page = client.post("/profile", data={"csrf_token": token(client, "/profile"), "time_zone": "Europe/Berlin"})
        assert zone in text_of(page.text)


def test_dates_and_yes_or_no_read_in_the_readers_language():
    """forms.widgets: English as it always was, German in German words and order; a language without calendar data as English."""
    moment = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    today = dt.date(2026, 12, 1)
    assert widgets.when_text(moment, ZoneInfo("UTC"), today) == "Thu 3 Dec, 09:00"
    assert widgets.when_text(moment, ZoneInfo("UTC"), today, locale="de") == "Do., 3. Dez., 09:00"
    assert widgets.when_text(moment, ZoneInfo("UTC"), dt.date(2027, 1, 1), locale="de") == "Do., 3. Dez. 2026, 09:00"
    assert widgets.date_text(dt.date(2026, 12, 3), locale="de") == "Do., 3. Dez. 2026"
    assert widgets.date_text(dt.date(2026, 12, 3), locale="xx") == "Thu 3 Dec 2026"


def test_a_german_reader_reads_dates_and_yes_or_no_in_german_on_a_record_and_my_work(site):
    app, company, _ = site
    uwe, ann = logged_in(app, "uwe"), logged_in(app, "ann")
    text = text_of(uwe.get("/").text)
    assert re.search(r"(Mo|Di|Mi|Do|Fr|Sa|So)\., \d{1,2}\. \w+\.?,? ", text), "a due date in German"
    assert not re.search(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} ", text)
    assert re.search(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)", text_of(ann.get("/").text))
    record = uwe.get(f"/records/company/{company}").text
    assert re.search(r"<dt>Das ist unsere Organisation</dt><dd>Nein</dd>", record)
    assert re.search(r"<dt>This is our organisation</dt><dd>No</dd>", ann.get(f"/records/company/{company}").text)


def test_every_word_the_staff_templates_mark_has_a_german_translation():
    """No English left among the marked words: each `_()`, `ngettext()` and `{% trans %}` of the staff pages' templates is
    in a German catalog (a new word added in English only fails here)."""
    german = words.catalog("de")
    missing = []
    for item in STAFF:
        path = TEMPLATES / item
        for template in sorted(path.rglob("*.html")) if path.is_dir() else [path]:
            with template.open("rb") as f:
                for line, _, message, _ in babel_extract(f, ("_", "gettext", "ngettext"), [], {"newstyle_gettext": "true"}):
                    if isinstance(message, tuple):  # a call with values names them as None
                        message = tuple(m for m in message if m is not None)
                        message = message if len(message) > 1 else (message[0] if message else None)
                    singular = message[0] if isinstance(message, tuple) else message
                    if not singular:
                        continue  # said(): a message chosen elsewhere
                    found = german.ngettext(*message[:2], 2) if isinstance(message, tuple) else german.gettext(singular)
                    if found == (message[1] if isinstance(message, tuple) else singular) and not re.fullmatch(r"[\W\d%()s]*|Details|Status", singular):
                        missing.append(f"{template.relative_to(TEMPLATES)}:{line}: {singular!r}")
    assert not missing, "\n".join(missing)
