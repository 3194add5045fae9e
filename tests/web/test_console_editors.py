"""The console's structured editors: each writes the YAML it shows into the draft's local pack and the draft checks
clean; a wrong value comes back with a message at its input and what was typed; the process diagram on its page; the
preview of a form for a role and a record (a group's field only for a record of the group); admins only."""
from __future__ import annotations

import datetime as dt
import re
import shutil
import xml.etree.ElementTree as ET
from html import unescape

import pytest
import sqlalchemy as sa
import yaml
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from runtime import records, releases
from runtime.db import upgrade
from runtime.schema import users
from tests.conftest import CRM
from tests.web.test_pages import log_in, token


@pytest.fixture
def site(tmp_path):
    crm = tmp_path / "packs" / "crm"
    shutil.copytree(CRM, crm)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'web.db'}")
    root = tmp_path / "releases"
    with engine.begin() as conn:
        upgrade(conn)
        _, compiled, _ = releases.adopt_disk(conn, [crm], root)
    from runtime.plan import apply, plan
    with engine.begin() as conn:
        apply(conn, compiled, plan(conn, compiled))
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        for name, roles in [("ada", ["admin", "staff"]), ("ann", ["staff"])]:
            conn.execute(users.insert().values(username=name, name=name.title(), roles=roles, password_hash=hasher.hash(name),
                                               created_at=dt.datetime.now(dt.UTC)))
        acme = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer", "industry": "healthcare"}, None)
        shop = records.create_record(conn, compiled, "company", {"name": "Northwind Retail", "status": "prospect", "industry": "retail"}, None)
    app = create_app(engine, compiled, None, secret_key="s", releases_root=root)
    admin = TestClient(app)
    log_in(admin, "ada")
    return {"app": app, "engine": engine, "admin": admin, "acme": acme.id, "shop": shop.id}


def words(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def draft_files(engine) -> dict[str, str]:
    with engine.connect() as conn:
        found = releases.draft(conn)
    return dict(found["files"]) if found else {}


def post(client, url: str, data: dict, page: str | None = None):
    return client.post(url, data={"csrf_token": token(client.get(page or url).text), **data}, follow_redirects=False)


def draft_problems(site) -> list:
    with site["engine"].connect() as conn:
        base = releases.active(conn)[0]
    return releases.check_draft(base, draft_files(site["engine"]), site["app"].state.releases_root / "check")[1]


FIELD_URL = "/admin/editors/entities/company/fields"


# -- the field editor --------------------------------------------------------------------------------
def test_a_group_field_is_shown_as_yaml_then_saved_and_the_draft_checks_clean(site):
    admin = site["admin"]
    page = admin.get(FIELD_URL + "?group=healthcare")
    assert page.status_code == 200 and 'value="group:healthcare" selected' in page.text
    typed = {"scope": "group:healthcare", "name": "bed_count", "label": "Beds", "type": "integer", "min": "0", "help": "Staffed beds."}
    shown = post(admin, FIELD_URL, {**typed, "op": "preview"}, FIELD_URL)
    assert shown.status_code == 200
    said = words(shown.text)
    assert "overlays/entities/company.yaml" in said and "add_group_fields: healthcare: bed_count: type: integer label: Beds" in said
    assert "The draft checks with this change" in said
    assert draft_files(site["engine"]) == {}  # shown, not saved
    saved = post(admin, FIELD_URL, {**typed, "op": "save"}, FIELD_URL)
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/editors/entities/company"
    files = draft_files(site["engine"])
    assert yaml.safe_load(files["overlays/entities/company.yaml"]) == {
        "kind": "overlay", "name": "entity_company", "target": "entity/company",
        "add_group_fields": {"healthcare": {"bed_count": {"type": "integer", "label": "Beds", "help": "Staffed beds.", "min": 0}}}}
    assert "pack.yaml" in files and draft_problems(site) == []
    assert "added field bed_count to company (group healthcare)" in words(admin.get("/admin/editors/entities/company").text)


def test_a_field_for_every_record_goes_into_the_chosen_section(site):
    admin = site["admin"]
    saved = post(admin, FIELD_URL, {"scope": "all", "name": "vat_number", "label": "VAT number", "type": "string", "max_length": "20",
                                    "section": "Contact", "op": "save"}, FIELD_URL)
    assert saved.status_code == 303
    overlay = yaml.safe_load(draft_files(site["engine"])["overlays/entities/company.yaml"])
    assert overlay["add_fields"] == {"vat_number": {"type": "string", "label": "VAT number", "max_length": 20}}
    assert overlay["add_to_sections"] == {"Contact": ["vat_number"]}
    assert draft_problems(site) == []
    # then changed: its label, and moved to another section; the overlay still adds it once
    post(admin, FIELD_URL, {"original": "vat_number", "scope": "all", "name": "vat_number", "label": "VAT", "type": "string",
                            "section": "Company", "op": "save"}, FIELD_URL + "?field=vat_number")
    overlay = yaml.safe_load(draft_files(site["engine"])["overlays/entities/company.yaml"])
    assert overlay["add_fields"] == {"vat_number": {"type": "string", "label": "VAT"}} and overlay["add_to_sections"] == {"Company": ["vat_number"]}


def test_a_base_field_is_changed_and_a_new_group_added(site):
    admin = site["admin"]
    assert post(admin, FIELD_URL, {"original": "employees", "scope": "all", "name": "employees", "label": "Head count", "type": "integer",
                                   "min": "0", "required": "1", "section": "Company", "op": "save"},
                FIELD_URL + "?field=employees").status_code == 303
    assert post(admin, FIELD_URL, {"scope": "new-group", "group_name": "charities", "group_when": "record.industry == 'other'",
                                   "name": "charity_number", "type": "string", "op": "save"}, FIELD_URL).status_code == 303
    overlay = yaml.safe_load(draft_files(site["engine"])["overlays/entities/company.yaml"])
    assert overlay["change_fields"] == {"employees": {"label": "Head count", "required": True}}
    assert overlay["add_groups"] == {"charities": {"when": "record.industry == 'other'", "fields": {"charity_number": {"type": "string"}}}}
    assert draft_problems(site) == []


def test_a_wrong_value_comes_back_at_its_input_with_what_was_typed(site):
    admin = site["admin"]
    typed = {"scope": "group:healthcare", "name": "Bed Count", "label": "Beds", "type": "integer", "min": "lots", "op": "save"}
    refused = post(admin, FIELD_URL, typed, FIELD_URL)
    assert refused.status_code == 422
    said = words(refused.text)
    assert "Give a name of lower-case letters" in said and "Give the smallest value as a number" in said
    assert 'value="Bed Count"' in refused.text and 'value="lots"' in refused.text and 'value="Beds"' in refused.text
    assert 'id="in-min" name="min" type="text" value="lots" aria-describedby="in-min-help in-min-error" aria-invalid="true"' in refused.text
    assert draft_files(site["engine"]) == {}


def test_a_problem_the_check_finds_in_the_written_yaml_is_shown_at_its_input(site):
    admin = site["admin"]
    # a condition naming a field companies do not have: the loader's problem, at the overlay's `when`
    typed = {"scope": "new-group", "group_name": "big", "group_when": "record.staff_count > 100", "name": "site_count", "type": "integer",
             "op": "save"}
    refused = post(admin, FIELD_URL, typed, FIELD_URL)
    assert refused.status_code == 422
    assert re.search(r'id="in-group_when-error">[^<]*staff_count', refused.text)
    assert 'value="record.staff_count &gt; 100"' in refused.text and 'class="bad"' in refused.text  # and at its line of the YAML
    assert draft_files(site["engine"]) == {}
    # a pattern for a whole number means nothing: the check says so at the pattern
    typed = {"scope": "all", "name": "floors", "type": "string", "pattern": "([", "section": "Company", "op": "save"}
    refused = post(admin, FIELD_URL, typed, FIELD_URL)
    assert refused.status_code == 422 and re.search(r'id="in-pattern-error">', refused.text)


def test_the_rules_for_single_record_fields(site):
    admin = site["admin"]
    url = "/admin/editors/entities/company/record-fields"
    bad = post(admin, url, {"allowed": "1", "max": "none", "op": "save"})
    assert bad.status_code == 422 and "Say how many" not in words(bad.text) and "Give how many as a number" in words(bad.text)
    assert "Tick at least one kind" in words(bad.text)
    done = post(admin, url, {"allowed": "1", "types": ["string", "date"], "max": "5", "op": "save"})
    assert done.status_code == 303
    overlay = yaml.safe_load(draft_files(site["engine"])["overlays/entities/company.yaml"])
    assert overlay["record_fields"] == {"types": ["string", "date"], "max": 5}
    assert draft_problems(site) == []
