"""The customer's single view and the pipeline board, as a person sees them (TestClient, real SQLite).

The record page shows display values (names, labels, local times), the group sections that apply, the records
that point at it, the open tasks of the record, of those records and of its projects, and the contact history
with who did it and through which form; the board shows a column per stage and moves a card as a record change.
"""
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
from forms import submit as forms
from runtime import records
from runtime import tasks as task_service
from runtime.history import list_audit, list_history
from runtime.schema import metadata as platform
from runtime.schema import process_starts, projects, tasks, users
from tests.conftest import CRM, PackWriter
from tests.runtime.conftest import DIALECTS, empty_database

UTC = dt.timezone.utc
ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
ISO_DATE = re.compile(r">\s*\d{4}-\d{2}-\d{2}\s*<")

# A role that may look but not change anything, and a process a won deal starts: the CRM pack has neither.
EXTRA = {
    "roles.yaml": """
        kind: role
        name: viewer
        description: Looks at records and boards, changes nothing.
        permissions: [access]
    """,
    "processes/won_handover.yaml": """
        kind: process
        name: won_handover
        label: Hand-over of a won deal
        entity: opportunity
        triggers:
          - record: opportunity
            on: [changed]
            when: "record.stage == 'won' and before.stage != 'won'"
        steps:
          - id: handover
            title: "Hand over {{ record.name }}"
            assign: owner
            due: 2 days
    """,
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    extra = PackWriter(tmp_path_factory.mktemp("packs")).write("extra", EXTRA, extends="crm: '>=1.0'")
    return compile_model(load([CRM, extra]))


class Site:
    """An app on its own SQLite database with Ann and Bob (staff), Mia (sales manager) and Vic (viewer)."""

    def __init__(self, compiled, engine: sa.Engine):
        self.compiled = compiled
        self.engine = engine
        platform.create_all(self.engine)
        compiled.metadata.create_all(self.engine)
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        self.users = {}
        with self.engine.begin() as conn:
            for name, full, roles in [("ann", "Ann Sales", ["staff"]), ("bob", "Bob Sales", ["staff"]),
                                      ("mia", "Mia Manager", ["staff", "sales_manager"]), ("vic", "Vic Viewer", ["viewer"])]:
                self.users[name] = conn.execute(users.insert().values(
                    username=name, name=full, email=f"{name}@example.com", roles=roles, password_hash=hasher.hash(name),
                    created_at=dt.datetime.now(UTC))).inserted_primary_key[0]
        self.app = create_app(self.engine, compiled, None, secret_key="customer-view")

    def client(self, who: str) -> TestClient:
        client = TestClient(self.app)
        page = client.get("/login")
        response = client.post("/login", data={"csrf_token": token(page.text), "username": who, "password": who}, follow_redirects=False)
        assert response.status_code == 303
        return client

    def create(self, entity: str, values: dict, who: str | None = "ann") -> records.Record:
        with self.engine.begin() as conn:
            return records.create_record(conn, self.compiled, entity, values, self.users.get(who), history=True)

    def task(self, title: str, entity: str | None, record_id: int | None, *, assignee: str | None = "bob", status: str = "open",
             due: dt.datetime | None = None, project: int | None = None, form: str | None = None, group: str | None = None) -> int:
        with self.engine.begin() as conn:
            return conn.execute(tasks.insert().values(
                key=f"test:{title}", workflow_id=f"test-{title}", process="lead_follow_up", step_id="qualify", title=title,
                entity=entity, record_id=record_id, project_id=project, form=form, group_name=group,
                assignee_id=self.users[assignee] if assignee else None, status=status, due_at=due,
                created_at=dt.datetime.now(UTC))).inserted_primary_key[0]


@pytest.fixture(params=DIALECTS)
def site(request, compiled, tmp_path):
    """The site on a SQLite file, and on a fresh PostgreSQL schema (the board sums amounts stored as JSON text)."""
    with empty_database(request.param, tmp_path) as engine:
        yield Site(compiled, engine)


def token(text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


def main(text: str) -> str:
    """What the page shows inside <main>, tags and all (the header and its nav are the same on every page)."""
    return text.split("<main>", 1)[1].split("</main>", 1)[0]


def visible(text: str) -> str:
    """The text a person reads in <main>: tags and attributes removed, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main(text)))).strip()


def section(text: str, heading_id: str) -> str:
    """The visible text of the <section> whose heading has id `heading_id`."""
    body = main(text)
    start = body.index(f'id="{heading_id}"')
    start = body.rindex("<section", 0, start)
    end = body.index("</section>", start)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body[start:end]))).strip()


def definition(text: str, label: str) -> str:
    """The value shown next to `label` in the details."""
    found = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", main(text), re.S)
    assert found, f"no '{label}' in the details"
    return found.group(1)


# -- the record page -----------------------------------------------------------------------


def test_values_show_as_names_labels_and_local_times_never_ids_raw_choices_or_iso(site):
    acme = site.create("company", {"name": "Acme Health", "status": "former", "industry": "public_sector", "owner": site.users["ann"]})
    jane = site.create("person", {"company": acme.id, "first_name": "Jane", "last_name": "Doe"})
    deal = site.create("opportunity", {"name": "Upgrade", "company": acme.id, "contact": jane.id, "owner": site.users["bob"],
                                       "stage": "won", "value": "12500", "source": "existing_customer", "expected_close": "2026-12-03"})
    page = site.client("ann").get(f"/records/opportunity/{deal.id}")
    assert page.status_code == 200
    assert definition(page.text, "Company") == f'<a href="/records/company/{acme.id}">Acme Health</a>'
    assert definition(page.text, "Contact") == f'<a href="/records/person/{jane.id}">Jane Doe</a>'
    assert definition(page.text, "Owner") == "Bob Sales"
    assert definition(page.text, "Stage") == "Closed – won"
    assert definition(page.text, "Value") == "£12,500.00"
    assert definition(page.text, "Lead source") == "Existing customer"
    assert definition(page.text, "Expected close date") == "Thu 3 Dec 2026"
    shown = visible(page.text)
    assert "existing_customer" not in shown and ">won<" not in main(page.text) and "12500" not in shown
    assert not ISO_MOMENT.search(shown) and not ISO_DATE.search(main(page.text))
    company = site.client("ann").get(f"/records/company/{acme.id}")
    assert definition(company.text, "Account manager") == "Ann Sales"
    assert definition(company.text, "Status") == "Former customer"
    assert definition(company.text, "Industry") == "Public sector"
    assert not ISO_MOMENT.search(visible(company.text))  # the history's times are local text too


def test_a_group_section_appears_when_its_condition_holds_and_shows_its_values(site):
    clinic = site.create("company", {"name": "Bayside Clinic", "status": "customer", "industry": "healthcare"})
    shop = site.create("company", {"name": "Corner Shop", "status": "customer", "industry": "retail"})
    ann = site.client("ann")
    page = ann.get(f"/records/company/{clinic.id}")
    assert "<h3>Healthcare</h3>" in page.text and "Nothing recorded yet." in page.text
    assert f'href="/records/company/{clinic.id}/edit"' in page.text
    assert "<h3>Healthcare</h3>" not in ann.get(f"/records/company/{shop.id}").text
    with site.engine.begin() as conn:
        records.update_record(conn, site.compiled, "company", clinic.id, {"organisation_type": "nhs_trust", "ods_code": "RJ1"}, None)
    page = ann.get(f"/records/company/{clinic.id}")
    healthcare = main(page.text).split("<h3>Healthcare</h3>", 1)[1].split("<h3>", 1)[0]
    assert "<dt>Organisation type</dt><dd>NHS trust</dd>" in healthcare and "<dt>ODS code</dt><dd>RJ1</dd>" in healthcare


def test_related_records_each_get_a_short_table_with_a_count_and_a_prefilled_new_link(site):
    acme = site.create("company", {"name": "Acme", "status": "customer"})
    other = site.create("company", {"name": "Globex", "status": "customer"})
    for i in range(12):
        site.create("person", {"company": acme.id, "first_name": "Person", "last_name": f"No{i:02d}", "job_title": "Buyer"})
    site.create("person", {"company": other.id, "first_name": "Sam", "last_name": "Elsewhere"})
    site.create("opportunity", {"name": "Upgrade", "company": acme.id, "stage": "proposal", "value": "9000", "owner": site.users["bob"]})
    site.create("contract", {"reference": "SLA-1", "company": acme.id, "start_date": "2026-01-01", "end_date": "2027-01-15"})
    site.create("support_request", {"company": acme.id, "summary": "Printer jams", "description": "Every morning."})
    page = site.client("ann").get(f"/records/company/{acme.id}")
    people = section(page.text, "rel-person-company")
    assert people.startswith("People 12") and "Job title" in people and "Elsewhere" not in people
    assert people.count("Person No") == 10  # a short table; the rest through the directory
    assert f'href="/directory/person?f1=company&amp;o1=eq&amp;v1={acme.id}"' in page.text and "All 12 people" in people
    assert f'href="/records/person/new?company={acme.id}"' in page.text
    deals = section(page.text, "rel-opportunity-company")
    assert deals.startswith("Opportunities 1") and "Upgrade Proposal £9,000.00 Bob Sales" in deals
    assert f'href="/board/opportunity?company={acme.id}"' in page.text
    assert section(page.text, "rel-contract-company").startswith("Contracts 1")
    assert "Printer jams" in section(page.text, "rel-support_request-company")
    nothing = section(page.text, "rel-none")
    assert "No purchases, shipments for Acme." in nothing
    assert f'href="/records/purchase/new?company={acme.id}"' in page.text
    # a person's page lists what points at them: the field named when an entity has several
    jane = site.create("person", {"company": acme.id, "first_name": "Jane", "last_name": "Doe"})
    site.create("support_request", {"company": acme.id, "person": jane.id, "summary": "Login fails", "description": "Since Monday."})
    person = site.client("ann").get(f"/records/person/{jane.id}")
    assert "Login fails" in section(person.text, "rel-support_request-person")
    assert f'href="/records/support_request/new?person={jane.id}"' in person.text


def test_open_tasks_of_the_record_its_related_records_and_its_projects_are_listed(site):
    acme = site.create("company", {"name": "Acme", "status": "customer"})
    globex = site.create("company", {"name": "Globex", "status": "customer"})
    deal = site.create("opportunity", {"name": "Acme upgrade", "company": acme.id, "stage": "lead"})
    theirs = site.create("opportunity", {"name": "Globex deal", "company": globex.id, "stage": "lead"})
    with site.engine.begin() as conn:
        project = conn.execute(projects.insert().values(key="test:onboarding", title="Onboarding Acme", entity="company",
                                                        record_id=acme.id, manager_id=site.users["mia"], status="open",
                                                        created_at=dt.datetime.now(UTC))).inserted_primary_key[0]
    due = dt.datetime(2030, 7, 1, 8, 30, tzinfo=UTC)  # 09:30 in London (summer time)
    on_deal = site.task("Qualify the enquiry", "opportunity", deal.id, due=due)
    on_company = site.task("Call the customer", "company", acme.id, assignee=None, group="sales")
    in_project = site.task("Hold the kick-off", None, None, assignee="mia", project=project)
    site.task("Already done", "opportunity", deal.id, status="done")
    site.task("Globex task", "opportunity", theirs.id)
    page = site.client("ann").get(f"/records/company/{acme.id}")
    open_tasks = section(page.text, "open-tasks")
    assert open_tasks.startswith("Open tasks 3")
    assert "Qualify the enquiry on Opportunity: Acme upgrade Bob Sales · due Mon 1 Jul 2030, 09:30 · Open" in open_tasks
    assert "Call the customer in the Sales queue · due no due date · Open" in open_tasks
    assert "Hold the kick-off" in open_tasks and "Mia Manager" in open_tasks
    assert "Already done" not in open_tasks and "Globex task" not in open_tasks
    for task_id in (on_deal, on_company, in_project):
        assert f'href="/tasks/{task_id}"' in page.text
    assert "Onboarding Acme — Open, run by Mia Manager" in section(page.text, "projects")
    assert "None" not in open_tasks


def test_the_history_says_who_did_what_through_which_form_with_a_link_to_the_task(site):
    acme = site.create("company", {"name": "Acme", "status": "prospect"})
    with site.engine.begin() as conn:
        ann = conn.execute(sa.select(users).where(users.c.username == "ann")).mappings().one()
        form = site.compiled.model.forms["call_note"]
        values = {f.name: (f.choices[0].value if f.choices else "2026-11-23" if f.type == "date" else
                           "2026-11-23T10:00:00+00:00" if f.type == "datetime" else "Spoke about the renewal")
                  for f in form.fields if f.required}
        forms.submit(conn, site.compiled, "call_note", values, submission_id="s-1", user=dict(ann), record_id=acme.id)
    task = site.task("Send the proposal", "company", acme.id, form="qualification")
    with site.engine.begin() as conn:
        task_service.set_task_state(conn, task, "done", site.users["bob"], outcome="done")
        records.update_record(conn, site.compiled, "company", acme.id, {"status": "customer", "owner": site.users["mia"]},
                              site.users["mia"], history=True)
    page = site.client("ann").get(f"/records/company/{acme.id}")
    timeline = section(page.text, "hist")
    assert f"{form.label} by Ann Sales · form {form.label}" in timeline
    qualification = site.compiled.model.forms["qualification"].label
    assert f"Task completed: Send the proposal by Bob Sales · form {qualification} · the task" in timeline
    assert f'<a href="/tasks/{task}">the task</a>' in main(page.text)
    # a change is told in display values, whoever wrote it
    assert "Status: Prospect → Customer" in timeline and "Account manager: (empty) → Mia Manager" in timeline
    assert "prospect →" not in timeline and "by Mia Manager" in timeline
    assert "Company created: Acme by Ann Sales" in timeline


def test_external_links_only_where_every_value_they_use_exists(site):
    bare = site.create("company", {"name": "Bare", "status": "prospect"})
    full = site.create("company", {"name": "Full", "status": "customer", "account_number": "ACM0042", "website": "https://full.example"})
    ann = site.client("ann")
    page = ann.get(f"/records/company/{bare.id}")
    assert "Elsewhere" not in page.text and "None" not in main(page.text)
    assert "accounts.example.com" not in page.text and "Website" not in visible(page.text)
    page = ann.get(f"/records/company/{full.id}")
    assert '<a href="https://accounts.example.com/customers/ACM0042" rel="noopener noreferrer">Accounting system</a>' in page.text
    assert '<a href="https://full.example" rel="noopener noreferrer">Website</a>' in page.text
    assert "Companies House" not in visible(page.text)  # its number is not recorded


def test_the_record_page_of_a_staged_entity_links_to_its_card_on_the_board(site):
    acme = site.create("company", {"name": "Acme", "status": "customer"})
    deal = site.create("opportunity", {"name": "Upgrade", "company": acme.id, "stage": "lead"})
    page = site.client("ann").get(f"/records/opportunity/{deal.id}")
    assert f'href="/board/opportunity#card-{deal.id}"' in page.text
    assert "/board/company" not in site.client("ann").get(f"/records/company/{acme.id}").text


# -- the pipeline board ----------------------------------------------------------------------


def board_columns(text: str) -> dict[str, str]:
    """Each column's heading -> the visible text of the column."""
    body = main(text)
    found = {}
    for m in re.finditer(r'<section class="stage" data-stage="([^"]+)".*?</section>', body, re.S):
        text_of = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", m.group(0)))).strip()
        found[m.group(1)] = text_of
    return found


def move(client: TestClient, page_text: str, record_id: int, stage: str, **overrides):
    """Send the card's own move form as the page has it (its action and row version), with `stage` chosen."""
    form = re.search(rf'action="(/board/opportunity/{record_id}/move[^"]*)".*?name="row_version" value="(\d+)"', page_text, re.S)
    data = {"csrf_token": token(page_text), "row_version": form.group(2), "stage": stage, **overrides}
    return client.post(html.unescape(form.group(1)), data=data, follow_redirects=False)


def test_the_board_has_a_column_per_stage_with_cards_counts_and_totals(site):
    acme = site.create("company", {"name": "Acme", "status": "customer"})
    site.create("opportunity", {"name": "Big deal", "company": acme.id, "stage": "proposal", "value": "12000", "owner": site.users["ann"]})
    site.create("opportunity", {"name": "Small deal", "company": acme.id, "stage": "proposal", "value": "500.50",
                                "owner": site.users["bob"]})
    site.create("opportunity", {"name": "New lead", "company": acme.id, "stage": "lead"})
    page = site.client("vic").get("/board/opportunity")
    assert page.status_code == 200
    columns = board_columns(page.text)
    assert list(columns) == ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
    assert columns["proposal"].startswith("Proposal 2 · £12,500.50")
    assert "Big deal £12,000.00 Ann Sales" in columns["proposal"] and "Small deal £500.50 Bob Sales" in columns["proposal"]
    assert columns["lead"].startswith("Lead 1 · £0.00") and "New lead no value yet no owner" in columns["lead"]
    assert columns["won"] == "Closed – won 0 · £0.00 Nothing at this stage"
    assert "<form" not in main(page.text).split('class="board"', 1)[1]  # a viewer gets no move forms
    globex = site.create("company", {"name": "Globex", "status": "customer"})
    site.create("opportunity", {"name": "Globex deal", "company": globex.id, "stage": "proposal", "value": "1"})
    scoped = site.client("vic").get(f"/board/opportunity?company={acme.id}")
    assert "Only opportunities where company is Acme." in visible(scoped.text)
    assert "Globex deal" not in scoped.text and board_columns(scoped.text)["proposal"].startswith("Proposal 2 · £12,500.50")
    assert site.client("vic").get("/board/company").status_code == 404
    assert site.client("vic").get("/board/nosuch").status_code == 404


def test_moving_a_card_is_a_record_change_with_audit_history_and_triggers(site):
    acme = site.create("company", {"name": "Acme", "status": "customer"})
    deal = site.create("opportunity", {"name": "Upgrade", "company": acme.id, "stage": "negotiation", "owner": site.users["ann"]})
    ann = site.client("ann")
    board = ann.get("/board/opportunity")
    assert 'data-drag-hint hidden' in board.text and '/static/board.js' in board.text
    moved = move(ann, board.text, deal.id, "won")
    assert moved.status_code == 303 and moved.headers["location"] == f"/board/opportunity#card-{deal.id}"
    after = ann.get(moved.headers["location"])
    assert "Moved 'Upgrade' to Closed – won." in html.unescape(after.text)
    assert "Upgrade" in board_columns(after.text)["won"] and "Upgrade" not in board_columns(after.text)["negotiation"]
    with site.engine.connect() as conn:
        rec = records.get_record(conn, site.compiled, "opportunity", deal.id)
        audit = list_audit(conn, "opportunity", deal.id)
        history = list_history(conn, "opportunity", deal.id)
        starts = conn.execute(sa.select(process_starts.c.process).where(process_starts.c.record_id == deal.id)).scalars().all()
    assert rec.data["stage"] == "won" and rec.row_version == 2 and rec.updated_by == site.users["ann"]
    assert (audit[-1].action, audit[-1].before, audit[-1].after) == ("update", {"stage": "negotiation"}, {"stage": "won"})
    assert history[0].summary == "Moved on the pipeline board: Negotiation → Closed – won" and history[0].user_id == site.users["ann"]
    assert starts == ["won_handover"]  # the record trigger fired, as for any other change
    scoped = ann.get(f"/board/opportunity?company={acme.id}")
    back = move(ann, scoped.text, deal.id, "lost")
    assert back.headers["location"] == f"/board/opportunity?company={acme.id}#card-{deal.id}"


def test_a_stale_move_is_refused_with_what_changed_and_nothing_moves(site):
    acme = site.create("company", {"name": "Acme", "status": "customer"})
    deal = site.create("opportunity", {"name": "Upgrade", "company": acme.id, "stage": "lead"})
    ann = site.client("ann")
    board = ann.get("/board/opportunity")
    with site.engine.begin() as conn:  # Bob moves it meanwhile
        records.update_record(conn, site.compiled, "opportunity", deal.id, {"stage": "proposal"}, site.users["bob"])
    refused = move(ann, board.text, deal.id, "qualified")
    assert refused.status_code == 409
    assert ("'Upgrade' was changed by Bob Sales while you were looking at the board; it is now in Proposal. Nothing was moved"
            in html.unescape(refused.text))
    assert "Upgrade" in board_columns(refused.text)["proposal"]  # the board as it is now
    with site.engine.connect() as conn:
        assert records.get_record(conn, site.compiled, "opportunity", deal.id).data["stage"] == "proposal"
    again = move(ann, refused.text, deal.id, "qualified")  # from the fresh board it goes through
    assert again.status_code == 303


def test_bad_moves_get_a_message_not_an_error(site):
    acme = site.create("company", {"name": "Acme", "status": "customer"})
    deal = site.create("opportunity", {"name": "Upgrade", "company": acme.id, "stage": "lead"})
    ann = site.client("ann")
    board = ann.get("/board/opportunity")
    unknown = move(ann, board.text, deal.id, "bogus")
    assert unknown.status_code == 422 and "Not moved: &#39;bogus&#39; is not a stage" in unknown.text
    assert move(ann, board.text, deal.id, "won", row_version="x").status_code == 400
    form = {"csrf_token": token(board.text), "row_version": "1", "stage": "won"}
    assert ann.post("/board/opportunity/999/move", data=form).status_code == 404
    assert ann.post("/board/opportunity/abc/move", data=form).status_code == 404
    assert ann.post(f"/board/opportunity/{deal.id}/move", data={**form, "csrf_token": "forged"}).status_code == 403


def test_a_role_without_edit_records_sees_the_board_but_may_not_move(site):
    acme = site.create("company", {"name": "Acme", "status": "customer"})
    deal = site.create("opportunity", {"name": "Upgrade", "company": acme.id, "stage": "lead"})
    vic = site.client("vic")
    board = vic.get("/board/opportunity")
    assert board.status_code == 200 and "Upgrade" in board.text and "/static/board.js" not in board.text
    refused = vic.post(f"/board/opportunity/{deal.id}/move", data={"csrf_token": token(board.text), "row_version": "1", "stage": "won"})
    assert refused.status_code == 403 and "add or change records" in refused.text
    with site.engine.connect() as conn:
        assert records.get_record(conn, site.compiled, "opportunity", deal.id).data["stage"] == "lead"
    assert site.client("vic").get(f"/records/opportunity/{deal.id}").status_code == 200
    assert "/edit" not in main(site.client("vic").get(f"/records/company/{acme.id}").text)  # no edit or new links for a viewer
