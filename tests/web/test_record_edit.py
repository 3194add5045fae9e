"""New and edit pages generated from the entity definitions, without a browser: what a person sees and what is stored."""
from __future__ import annotations

import datetime as dt
import html
import re

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from admin.web import recordforms
from engine.compiler import compile_model
from engine.loader import load
from forms import submit as forms
from runtime import records
from runtime.history import list_audit, list_history
from runtime.schema import metadata as platform
from runtime.schema import tasks, users
from tests.conftest import CRM

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'edit.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    ids = {}
    with engine.begin() as conn:
        for name, full, roles, extra in [("ann", "Ann Sales", ["staff"], {}), ("mia", "Mia Manager", ["staff", "sales_manager"], {}),
                                         ("pat", "Pat Portal", ["portal"], {"company_id": 1}), ("bot", "Sync Bot", ["staff"], {"password": None})]:
            password = extra.pop("password", FAST.hash(name))
            ids[name] = conn.execute(users.insert().values(username=name, name=full, roles=roles, password_hash=password, created_at=now,
                                                           **extra)).inserted_primary_key[0]
        acme = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer"}, None)
        globex = records.create_record(conn, compiled, "company", {"name": "Globex", "status": "prospect"}, None)
        ids["acme"], ids["globex"] = acme.id, globex.id
        ids["jane"] = records.create_record(conn, compiled, "person", {"company": acme.id, "first_name": "Jane", "last_name": "Doe"}, None).id
        ids["raj"] = records.create_record(conn, compiled, "person", {"company": globex.id, "first_name": "Raj", "last_name": "Patel"}, None).id
    app = create_app(engine, compiled, None, secret_key="edit-secret")
    return TestClient(app), engine, ids


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def log_in(client: TestClient, who: str) -> None:
    page = client.get("/login")
    assert client.post("/login", data={"csrf_token": token(page.text), "username": who, "password": who},
                       follow_redirects=False).status_code == 303


def inputs(page: str) -> dict[str, str]:
    """Every input, select and textarea of the page's record form with the value it shows."""
    form = page[page.index('class="card record-form"'):page.index("</form>", page.index('class="card record-form"'))]
    out = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form):
        out[name] = html.unescape(value)
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.DOTALL):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        out[name] = chosen.group(1) if chosen else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.DOTALL):
        out[name] = html.unescape(body)
    return out


def options(page: str, name: str) -> list[str]:
    body = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', page, re.DOTALL).group(1)
    return [html.unescape(label) for label in re.findall(r"<option value=\"[^\"]+\"[^>]*>([^<]*)</option>", body)]


def error_of(page: str, name: str) -> str:
    found = re.search(rf'id="f-{name}-error">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


def fields(**values) -> dict:
    return {k: str(v) for k, v in values.items()}


def count(engine, entity: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {entity}")).scalar()


# -- new pages ---------------------------------------------------------------------------------


def test_a_new_company_starts_from_the_definitions_defaults_and_is_created_with_its_history(site, compiled):
    client, engine, _ = site
    log_in(client, "ann")
    page = client.get("/records/company/new")
    assert page.status_code == 200
    shown = inputs(page.text)
    assert shown["status"] == "prospect" and shown["country"] == "United Kingdom"
    assert [s for s in re.findall(r"<legend>([^<]+)</legend>", page.text)][:3] == ["Company", "Contact", "Address"]
    saved = client.post("/records/company/new", data={"csrf_token": token(page.text), "groups": "", **fields(
        name="Bayside Clinic", status="prospect", industry="retail", employees=12, country="United Kingdom")}, follow_redirects=False)
    assert saved.status_code == 303, saved.text[:2000]
    rec_id = int(saved.headers["location"].rsplit("/", 1)[1])
    with engine.connect() as conn:
        rec = records.get_record(conn, compiled, "company", rec_id)
        assert rec.data == {"name": "Bayside Clinic", "status": "prospect", "industry": "retail", "employees": 12, "country": "United Kingdom"}
        assert [h.summary for h in list_history(conn, "company", rec_id)] == ["Company created: Bayside Clinic"]
    assert "Added company &#39;Bayside Clinic&#39;." in client.get(saved.headers["location"]).text


def test_new_person_from_a_company_page_comes_prefilled_with_the_company(site):
    client, _, ids = site
    log_in(client, "ann")
    company_page = client.get(f"/records/company/{ids['acme']}").text
    link = re.search(r'href="(/records/person/new\?company=\d+)">New person[^<]*<', company_page).group(1)
    page = client.get(link)
    assert inputs(page.text)["company"] == str(ids["acme"])
    assert inputs(page.text)["portal_access"] == "none"  # the choice's default
    assert "Acme Health" in options(page.text, "company")


# -- constraints ---------------------------------------------------------------------------------


def test_every_constraint_is_reported_on_its_field_with_what_was_typed_and_nothing_is_written(site):
    client, engine, _ = site
    log_in(client, "ann")
    page = client.get("/records/company/new")
    before = count(engine, "company")
    refused = client.post("/records/company/new", data={"csrf_token": token(page.text), **fields(
        name="", status="customer", employees=-3, account_number="acme-1", company_number="12", email="not an email",
        postcode="far too long a postcode")})
    assert refused.status_code == 422
    assert error_of(refused.text, "name") == "Name is required"
    assert error_of(refused.text, "employees") == "Number of employees must be at least 0"
    assert error_of(refused.text, "account_number") == "Account number is not in the expected format (for example ACM0042)"
    assert error_of(refused.text, "company_number") == "Companies House number is not in the expected format"
    assert error_of(refused.text, "email") == "Email must be an email address like name@example.com"
    assert error_of(refused.text, "postcode") == "Postcode must be at most 8 characters"
    shown = inputs(refused.text)
    assert (shown["employees"], shown["account_number"], shown["email"], shown["status"]) == ("-3", "acme-1", "not an email", "customer")
    assert "Nothing was saved. Please correct 6 things" in refused.text
    assert count(engine, "company") == before


def test_a_unique_value_already_used_names_the_record_that_has_it(site, compiled):
    client, engine, ids = site
    with engine.begin() as conn:
        records.update_record(conn, compiled, "company", ids["acme"], {"account_number": "ACM0001"}, None)
    log_in(client, "ann")
    page = client.get("/records/company/new")
    refused = client.post("/records/company/new", data={"csrf_token": token(page.text), **fields(
        name="Copycat", status="prospect", account_number="ACM0001")})
    assert refused.status_code == 422
    assert error_of(refused.text, "account_number") == "Account number 'ACM0001' is already used by company 'Acme Health'"
    assert inputs(refused.text)["name"] == "Copycat" and count(engine, "company") == 2


def test_money_is_checked_for_its_format_and_its_bounds_on_its_field(site):
    client, engine, ids = site
    log_in(client, "ann")
    page = client.get(f"/records/opportunity/new?company={ids['acme']}")
    base = {"csrf_token": token(page.text), "name": "Upgrade", "company": str(ids["acme"]), "stage": "lead"}
    refused = client.post("/records/opportunity/new", data={**base, "value": "12.345"})
    assert error_of(refused.text, "value") == "Value must be an amount like 1250.00"
    refused = client.post("/records/opportunity/new", data={**base, "value": "-10"})
    assert error_of(refused.text, "value") == "Value must be at least 0"
    assert inputs(refused.text)["value"] == "-10" and count(engine, "opportunity") == 0
    assert client.post("/records/opportunity/new", data={**base, "value": "£12,500"}, follow_redirects=False).status_code == 303


# -- groups -------------------------------------------------------------------------------------


def group_section(page: str, group: str) -> str:
    return re.search(rf'<fieldset[^>]*id="group-{group}"[^>]*>', page).group(0)


def test_a_group_section_appears_on_save_when_its_condition_starts_to_hold_and_its_fields_are_kept(site, compiled):
    client, engine, ids = site
    log_in(client, "ann")
    url = f"/records/company/{ids['globex']}/edit"
    page = client.get(url)
    assert "hidden disabled" in group_section(page.text, "healthcare")
    form = {**inputs(page.text), "csrf_token": token(page.text), "industry": "healthcare"}
    saved = client.post(url, data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"{url}#group-healthcare"
    again = client.get(url)
    assert "Healthcare fields now apply" in again.text
    assert "hidden" not in group_section(again.text, "healthcare") and "hidden" in group_section(again.text, "public_sector")
    assert inputs(again.text)["groups"] == "healthcare"
    form = {**inputs(again.text), "csrf_token": token(again.text), "ods_code": "RJ1", "organisation_type": "nhs_trust"}
    assert client.post(url, data=form, follow_redirects=False).headers["location"] == f"/records/company/{ids['globex']}"
    with engine.connect() as conn:
        rec = records.get_record(conn, compiled, "company", ids["globex"])
        assert (rec.data["ods_code"], rec.data["organisation_type"]) == ("RJ1", "nhs_trust")
        assert list_history(conn, "company", rec.id)[0].summary == "Changed Organisation type: (empty) → NHS trust; ODS code: (empty) → RJ1"
    # another industry: the section goes, and so do its values
    page = client.get(url)
    client.post(url, data={**inputs(page.text), "csrf_token": token(page.text), "industry": "retail"})
    assert "hidden disabled" in group_section(client.get(url).text, "healthcare")
    with engine.connect() as conn:
        assert "ods_code" not in records.get_record(conn, compiled, "company", ids["globex"]).data


def test_which_groups_hold_is_answered_for_the_values_typed_so_far(site):
    client, _, _ = site
    log_in(client, "ann")
    assert client.get("/records/company/groups?industry=healthcare&name=X").json() == {"holding": ["healthcare"]}
    assert client.get("/records/company/groups?industry=education").json() == {"holding": ["public_sector"]}
    assert client.get("/records/company/groups?industry=retail&employees=lots").json() == {"holding": []}


# -- someone else changed it meanwhile ------------------------------------------------------------


def rows(page: str) -> list[tuple[str, ...]]:
    """The rows of the 'changed meanwhile' table."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.DOTALL).group(1)
    return [tuple(html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", row)) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_a_change_to_a_version_someone_else_changed_is_refused_with_the_input_kept_and_their_change_shown(site, compiled):
    client, engine, ids = site
    log_in(client, "ann")
    url = f"/records/company/{ids['acme']}/edit"
    page = client.get(url)
    with engine.begin() as conn:  # Mia saves first
        records.update_record(conn, compiled, "company", ids["acme"], {"status": "former", "owner": ids["mia"]}, ids["mia"])
    mine = {**inputs(page.text), "csrf_token": token(page.text), "town": "Leeds", "employees": "40", "status": "prospect"}
    refused = client.post(url, data=mine)
    assert refused.status_code == 409
    assert "Someone else changed this company while you were editing it, so nothing was saved." in refused.text
    assert sorted(rows(refused.text)) == [("Account manager", "Mia Manager", "Mia Manager", ""),
                                          ("Status", "Former customer", "Mia Manager", "Prospect")]
    shown = inputs(refused.text)
    # what Ann typed is kept; the field she left as it was (the account manager) shows Mia's change
    assert (shown["town"], shown["employees"], shown["status"], shown["owner"]) == ("Leeds", "40", "prospect", str(ids["mia"]))
    with engine.connect() as conn:
        rec = records.get_record(conn, compiled, "company", ids["acme"])
    assert "town" not in rec.data and rec.data["status"] == "former" and shown["row_version"] == str(rec.row_version)
    # saving again, having seen it, applies Ann's input over Mia's change
    assert client.post(url, data={**shown, "csrf_token": token(refused.text)}, follow_redirects=False).status_code == 303
    with engine.connect() as conn:
        rec = records.get_record(conn, compiled, "company", ids["acme"])
    assert (rec.data["town"], rec.data["status"], rec.data["owner"]) == ("Leeds", "prospect", ids["mia"])


def test_an_edit_without_its_version_is_refused(site):
    client, _, ids = site
    log_in(client, "ann")
    page = client.get(f"/records/company/{ids['acme']}/edit")
    form = {k: v for k, v in inputs(page.text).items() if k != "row_version"}
    assert client.post(f"/records/company/{ids['acme']}/edit", data={**form, "csrf_token": token(page.text)}).status_code == 400


# -- a record's own fields -----------------------------------------------------------------------


def test_a_records_own_field_is_added_edited_and_removed_each_in_the_history_and_the_audit_log(site, compiled):
    client, engine, ids = site
    log_in(client, "mia")
    url = f"/records/company/{ids['acme']}/edit"
    page = client.get(url)
    added = client.post(f"/records/company/{ids['acme']}/fields", follow_redirects=False,
                        data={"csrf_token": token(page.text), "label": "Parking bays", "type": "integer", "value": "3", "back": "edit"})
    assert added.status_code == 303 and added.headers["location"] == f"{url}#own"
    page = client.get(url)
    assert inputs(page.text)["own-parking_bays"] == "3"
    refused = client.post(url, data={**inputs(page.text), "csrf_token": token(page.text), "own-parking_bays": "three"})
    assert refused.status_code == 422 and error_of(refused.text, "own-parking_bays") == "Parking bays must be a whole number"
    assert client.post(url, data={**inputs(page.text), "csrf_token": token(page.text), "own-parking_bays": "5"},
                       follow_redirects=False).status_code == 303
    page = client.get(url)
    version = inputs(page.text)["row_version"]
    removed = client.post(f"/records/company/{ids['acme']}/fields/parking_bays/remove", follow_redirects=False,
                          data={"csrf_token": token(page.text), "row_version": version})
    assert removed.status_code == 303
    with engine.connect() as conn:
        rec = records.get_record(conn, compiled, "company", ids["acme"])
        history = [h.summary for h in list_history(conn, "company", ids["acme"])]
        actions = [a.action for a in list_audit(conn, "company", ids["acme"])]
    assert rec.record_fields == {}
    assert history[:3] == ["Removed the field Parking bays (was 5)", "Changed Parking bays (this company only): 3 → 5",
                           "Added a field of this company only: Parking bays = 3"]
    assert actions[-3:] == ["add_field", "update", "remove_field"]


def test_removing_an_own_field_from_a_stale_page_is_refused(site, compiled):
    client, engine, ids = site
    with engine.begin() as conn:
        records.add_record_field(conn, compiled, "company", ids["acme"], "gate_code", "string", "Gate code", "1234", None)
    log_in(client, "mia")
    page = client.get(f"/records/company/{ids['acme']}/edit")
    with engine.begin() as conn:
        records.set_record_field(conn, compiled, "company", ids["acme"], "gate_code", "9999", ids["ann"])
    refused = client.post(f"/records/company/{ids['acme']}/fields/gate_code/remove",
                          data={"csrf_token": token(page.text), "row_version": inputs(page.text)["row_version"]})
    assert refused.status_code == 409
    assert rows(refused.text) == [("Gate code (this company only)", "9999", "Ann Sales")]
    with engine.connect() as conn:
        assert records.get_record(conn, compiled, "company", ids["acme"]).record_fields["gate_code"]["value"] == "9999"


def test_a_bad_own_field_is_refused_on_the_add_form_with_what_was_typed(site):
    client, _, ids = site
    log_in(client, "mia")
    page = client.get(f"/records/company/{ids['acme']}/edit")
    refused = client.post(f"/records/company/{ids['acme']}/fields",
                          data={"csrf_token": token(page.text), "label": "Renewal", "type": "date", "value": "soon", "back": "edit"})
    assert refused.status_code == 422
    assert "Nothing was added: Renewal must be a date like 2024-05-31" in refused.text
    assert 'id="own-value" name="value" value="soon"' in refused.text


# -- pickers ---------------------------------------------------------------------------------------


def test_a_contact_picker_lists_the_people_of_the_chosen_company_and_everyone_while_none_is_chosen(site):
    client, _, ids = site
    log_in(client, "ann")
    scoped = client.get(f"/records/opportunity/pick/contact?company={ids['acme']}&q=").json()
    assert [r["title"] for r in scoped] == ["Jane Doe"]
    assert [r["title"] for r in client.get("/records/opportunity/pick/contact?q=").json()] == ["Jane Doe", "Raj Patel"]
    assert [r["title"] for r in client.get(f"/records/opportunity/pick/contact?company={ids['globex']}&q=jane").json()] == []
    page = client.get(f"/records/opportunity/new?company={ids['acme']}")
    assert options(page.text, "contact") == ["Jane Doe"]
    assert 'data-scope="company"' in page.text


def test_user_pickers_offer_active_staff_only(site, compiled):
    """Not Pat (portal), not Sync Bot (API only: no password), not Old Timer (deactivated)."""
    client, engine, _ = site
    with engine.begin() as conn:
        conn.execute(users.insert().values(username="old", name="Old Timer", roles=["staff"], password_hash=FAST.hash("old"), active=False,
                                           created_at=dt.datetime.now(dt.UTC)))
    log_in(client, "ann")
    assert [r["title"] for r in client.get("/records/company/pick/owner?q=").json()] == ["Ann Sales", "Mia Manager"]
    assert options(client.get("/records/company/new").text, "owner") == ["Ann Sales", "Mia Manager"]
    assert client.get("/records/company/pick/name?q=").status_code == 404


# -- forms: defaults and constraints on the form's own fields ----------------------------------------


def test_a_form_starts_from_its_fields_defaults(site, compiled):
    client, engine, ids = site
    with engine.begin() as conn:
        deal = records.create_record(conn, compiled, "opportunity", {"name": "Deal", "company": ids["acme"]}, None).id
        task = conn.execute(tasks.insert().values(key="t:proposal", workflow_id="w", process="lead_follow_up", step_id="proposal",
                                                  title="Send the proposal", entity="opportunity", record_id=deal, form="proposal",
                                                  assignee_id=ids["ann"], status="open",
                                                  created_at=dt.datetime.now(dt.UTC))).inserted_primary_key[0]
    log_in(client, "ann")
    page = client.get(f"/tasks/{task}").text
    assert re.search(r'name="discount_percent" type="number"\s+value="0"', page)
    assert '<option value="proposal" selected>Proposal sent</option>' in page
    support = client.get(f"/forms/support_request?record={ids['acme']}").text
    assert '<option value="question" selected>Question</option>' in support


def test_a_negative_budget_on_the_lead_form_is_flagged_on_the_budget_field_and_nothing_is_written(site):
    client, engine, ids = site
    log_in(client, "ann")
    page = client.get(f"/forms/lead_enquiry?record={ids['acme']}")
    refused = client.post(f"/forms/lead_enquiry?record={ids['acme']}", data={
        "csrf_token": token(page.text), "submission_id": "neg-budget", "channel": "phone", "summary": "40 seats", "budget": "-5000"})
    assert refused.status_code == 422
    assert error_of(refused.text, "budget") == "Budget must be at least 0"
    assert "could not create" not in refused.text
    assert count(engine, "opportunity") == 0
    with engine.connect() as conn:
        assert list_history(conn, "company", ids["acme"]) == []


def test_a_record_an_action_cannot_write_is_reported_on_the_form_field_its_value_came_from(packs, tmp_path):
    folder = packs.write("shop", {
        "thing.yaml": """
            kind: entity
            name: purchase_order
            title: "{{ record.ref }}"
            fields:
              ref: {type: string, required: true, max_length: 5}
              quantity: {type: integer, min: 1}
        """,
        "order_form.yaml": """
            kind: form
            name: order_form
            fields:
              reference: string
              how_many: {type: integer, label: How many}
            on_submit:
              - create: purchase_order
                as: order
                set:
                  ref: reference
                  quantity: how_many
        """})
    compiled = compile_model(load([folder]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    values, errors = forms.parse(compiled.model.forms["order_form"], {"reference": "TOO-LONG", "how_many": "0"})
    assert errors == {}
    with pytest.raises(forms.SubmissionInvalid) as caught, engine.begin() as conn:
        forms.submit(conn, compiled, "order_form", values, submission_id="s1", user={"id": None}, record_id=None)
    assert caught.value.errors == {"reference": "Reference must be at most 5 characters", "how_many": "How many must be at least 1"}
    assert count(engine, "purchase_order") == 0


def test_a_reference_to_records_that_refer_back_lists_only_this_records_own(packs):
    """A company's contact is one of its people: person.company refers back to the company being edited."""
    folder = packs.write("club", {
        "entities.yaml": """
            kind: entity
            name: club
            title: "{{ record.name }}"
            fields:
              name: {type: string, required: true}
              contact: {type: reference, entity: member}
            ---
            kind: entity
            name: member
            title: "{{ record.name }}"
            fields:
              name: {type: string, required: true}
              club: {type: reference, entity: club, required: true}
        """})
    model = compile_model(load([folder])).model
    club = model.entities["club"]
    contact = club.field("contact")
    assert recordforms.scope_pairs(model, club, contact) == [("club", "id")]
    assert recordforms.scope_of(model, club, contact, {}, 7) == {"club": 7}
    assert recordforms.scope_of(model, club, contact, {}, None) == {}  # a new club has no people yet: anyone
