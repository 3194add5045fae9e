"""The console's structured editors: each writes the YAML it shows into the draft's local pack and the draft checks
clean; a wrong value comes back with a message at its input and what was typed; the process diagram on its page; the
preview of a form for a role and a record (a group's field only for a record of the group); admins only."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import unescape

import pytest
import yaml
from fastapi.testclient import TestClient

from runtime import records, releases
from tests.conftest import CRM
from tests.web.console_site import console_site, words
from tests.web.test_pages import log_in, token


@pytest.fixture
def site(tmp_path):
    made = {}

    def seed(conn, compiled):
        made["acme"] = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer",
                                                                          "industry": "healthcare"}, None).id
        made["shop"] = records.create_record(conn, compiled, "company", {"name": "Northwind Retail", "status": "prospect",
                                                                          "industry": "retail"}, None).id

    app, engine = console_site(tmp_path, seed)
    admin = TestClient(app)
    log_in(admin, "ada")
    return {"app": app, "engine": engine, "admin": admin, **made}


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


def test_a_new_group_gets_a_new_condition_and_a_base_group_keeps_its_own(site):
    admin = site["admin"]
    post(admin, FIELD_URL, {"scope": "new-group", "group_name": "big", "group_when": "record.employees > 500", "name": "sites",
                            "type": "integer", "op": "save"}, FIELD_URL)
    url = "/admin/editors/entities/company/groups/big"
    page = admin.get(url)
    assert page.status_code == 200 and 'value="record.employees &gt; 500"' in page.text
    bad = post(admin, url, {"when": "record.staff > 500", "label": "Large", "op": "save"})
    assert bad.status_code == 422 and re.search(r'id="in-when-error">[^<]*staff', bad.text) and 'value="Large"' in bad.text
    assert post(admin, url, {"when": "record.employees > 1000", "label": "Large", "op": "save"}).status_code == 303
    overlay = yaml.safe_load(draft_files(site["engine"])["overlays/entities/company.yaml"])
    assert overlay["add_groups"] == {"big": {"label": "Large", "when": "record.employees > 1000", "fields": {"sites": {"type": "integer"}}}}
    assert draft_problems(site) == []
    base = "/admin/editors/entities/company/groups/healthcare"
    assert "its heading, description and condition stay as the pack says" in words(admin.get(base).text)
    refused = post(admin, base, {"when": "record.industry == 'other'", "op": "save"})
    assert refused.status_code == 422 and "the when of group healthcare comes from its pack" in words(refused.text)


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


# -- the form builder -----------------------------------------------------------------------------------
NEW_FORM = {"name": "site_visit", "label": "Site visit", "entity": "company", "contact": "1", "section_count": "1", "field_count": "2",
            "action_count": "1", "section-0-title": "The visit", "section-0-columns": "2",
            "field-0-name": "visited_on", "field-0-type": "date", "field-0-required": "1", "field-0-section": "0",
            "field-1-name": "topic", "field-1-label": "What it was about", "field-1-type": "string", "field-1-required": "1",
            "field-1-max_length": "200", "field-1-section": "0",
            "action-0-kind": "start", "action-0-target": "callback", "action-0-values": "topic: topic"}


def test_a_new_contact_form_is_written_as_a_definition_and_checks_clean(site):
    admin = site["admin"]
    page = admin.get("/admin/editors/forms/new")
    assert page.status_code == 200 and 'name="field_count" value="1"' in page.text
    shown = post(admin, "/admin/editors/forms/new", {**NEW_FORM, "op": "preview"}, "/admin/editors/forms/new")
    assert shown.status_code == 200 and "local/forms/site_visit.yaml" in words(shown.text) and draft_files(site["engine"]) == {}
    saved = post(admin, "/admin/editors/forms/new", {**NEW_FORM, "op": "save"}, "/admin/editors/forms/new")
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/editors/forms/site_visit"
    assert yaml.safe_load(draft_files(site["engine"])["forms/site_visit.yaml"]) == {
        "kind": "form", "name": "site_visit", "entity": "company", "contact": True,  # the label is the name's: not written
        "fields": {"visited_on": {"type": "date", "required": True},
                   "topic": {"type": "string", "label": "What it was about", "required": True, "max_length": 200}},
        "layout": [{"section": "The visit", "columns": 2, "fields": ["visited_on", "topic"]}],
        "on_submit": [{"start": "callback", "with": {"topic": "topic"}}]}
    assert draft_problems(site) == []
    again = admin.get("/admin/editors/forms/site_visit")
    assert again.status_code == 200 and 'value="What it was about"' in again.text and "topic: topic" in again.text


def test_the_builder_buttons_add_move_and_remove_rows_keeping_what_was_typed(site):
    admin = site["admin"]
    added = post(admin, "/admin/editors/forms/new", {**NEW_FORM, "op": "add-field:0"}, "/admin/editors/forms/new")
    assert added.status_code == 200 and 'name="field_count" value="3"' in added.text and 'value="What it was about"' in added.text
    moved = post(admin, "/admin/editors/forms/new", {**NEW_FORM, "op": "up:1"}, "/admin/editors/forms/new")
    assert moved.text.index('name="field-0-name" type="text" value="topic"') < moved.text.index('name="field-1-name" type="text" value="visited_on"')
    section = post(admin, "/admin/editors/forms/new", {**NEW_FORM, "op": "add-section"}, "/admin/editors/forms/new")
    assert 'name="section_count" value="2"' in section.text
    refused = post(admin, "/admin/editors/forms/new", {**NEW_FORM, "op": "remove-section:0"}, "/admin/editors/forms/new")
    assert "still has fields" in words(refused.text) and 'name="section_count" value="1"' in refused.text
    gone = post(admin, "/admin/editors/forms/new", {**NEW_FORM, "op": "remove-action:0"}, "/admin/editors/forms/new")
    assert 'name="action_count" value="0"' in gone.text
    assert draft_files(site["engine"]) == {}  # buttons never save


def test_a_bad_form_comes_back_with_each_problem_at_its_input(site):
    admin = site["admin"]
    typed = {**NEW_FORM, "field-0-name": "Visited On", "field-1-max_length": "long", "op": "save"}
    refused = post(admin, "/admin/editors/forms/new", typed, "/admin/editors/forms/new")
    assert refused.status_code == 422
    assert re.search(r'id="in-field-0-name-error">Give the field a name', refused.text) and 'value="Visited On"' in refused.text
    assert re.search(r'id="in-field-1-max_length-error">Give a length as a number', refused.text) and 'value="long"' in refused.text
    # a process that does not exist: the check's problem at the action's target, what was typed kept
    typed = {**NEW_FORM, "action-0-target": "call_back", "op": "save"}
    refused = post(admin, "/admin/editors/forms/new", typed, "/admin/editors/forms/new")
    assert refused.status_code == 422 and re.search(r'id="in-action-0-target-error">[^<]*call_back', refused.text)
    assert 'value="call_back"' in refused.text and draft_files(site["engine"]) == {}


def test_a_base_pack_form_gets_an_overlay_with_fields_added_moved_and_changed(site):
    admin = site["admin"]
    page = admin.get("/admin/editors/forms/lead_enquiry")
    assert page.status_code == 200 and "its sections and its actions stay" in words(page.text)
    fields = re.findall(r'name="field-(\d+)-original" value="([a-z_]*)"', page.text)
    data = {k: unescape(v) for k, v in re.findall(r'<input(?![^>]*checkbox)[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text)
            if k != "csrf_token"}
    data.update({k: unescape(v) for k, v in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', page.text)})
    data.update({m.group(1): m.group(2) for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(?:(?!</select>).)*?<option value="([^"]*)" selected',
                                                              page.text, re.DOTALL)})
    data.update({k: "1" for k in re.findall(r'<input type="checkbox" id="[^"]+" name="([^"]+)" value="1" checked', page.text)})
    index = {name: i for i, name in fields}
    data[f"field-{index['summary']}-help"] = "In their own words."
    data[f"field-{index['source']}-section"] = "1"     # moved to What they need
    data["field_count"] = str(len(fields) + 1)
    n = len(fields)
    data.update({f"field-{n}-name": "tender_reference", f"field-{n}-type": "string", f"field-{n}-section": "1"})
    saved = post(admin, "/admin/editors/forms/lead_enquiry", {**data, "op": "save"}, "/admin/editors/forms/lead_enquiry")
    assert saved.status_code == 303, words(saved.text)[-1500:]
    overlay = yaml.safe_load(draft_files(site["engine"])["overlays/forms/lead_enquiry.yaml"])
    assert overlay == {"kind": "overlay", "name": "form_lead_enquiry", "target": "form/lead_enquiry",
                       "add_fields": {"tender_reference": {"type": "string"}},
                       "change_fields": {"summary": {"help": "In their own words."}},
                       "add_to_sections": {"What they need": ["source", "tender_reference"]}}
    assert draft_problems(site) == []


# -- the process editor ----------------------------------------------------------------------------------
STEPS = "/admin/editors/processes/lead_follow_up/steps"


def step_form(client, url: str) -> dict:
    """What a step page's form holds, as a browser would send it."""
    page = client.get(url).text
    data = {k: unescape(v) for k, v in re.findall(r'<input(?![^>]*checkbox)[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page) if k != "csrf_token"}
    data.update({k: unescape(v) for k, v in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', page)})
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.DOTALL):
        chosen = re.search(r'<option value="([^"]*)" selected', m.group(2))
        data[m.group(1)] = unescape(chosen.group(1)) if chosen else ""
    return data


def overlay_of(site, name: str) -> dict:
    return yaml.safe_load(draft_files(site["engine"])[f"overlays/processes/{name}.yaml"])


def test_a_step_is_changed_with_its_assignee_due_time_and_a_new_escalation_level(site):
    admin = site["admin"]
    data = step_form(admin, f"{STEPS}/qualify")
    assert data["assign"] == "group:sales" and data["due_in"] == "2 business days" and data["esc_count"] == "3"  # two levels, one blank
    data.update({"due_in": "1 business day", "assign": "group:sales", "strategy": "least_busy",
                 "esc-2-at": "due + 2 business days", "esc-2-alert": "role:director", "esc-2-message": "Still not qualified."})
    shown = post(admin, STEPS, {**data, "op": "preview"}, f"{STEPS}/qualify")
    assert shown.status_code == 200 and "change_steps:" in shown.text and "The process with this change" in shown.text
    saved = post(admin, STEPS, {**data, "op": "save"}, f"{STEPS}/qualify")
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/editors/processes/lead_follow_up"
    change = overlay_of(site, "lead_follow_up")["change_steps"]["qualify"]
    assert change["due"] == "1 business day" and change["strategy"] == "least_busy"
    assert change["escalate"][2] == {"at": "due + 2 business days", "alert": "role:director", "message": "Still not qualified."}
    assert draft_problems(site) == []


def test_steps_are_inserted_moved_and_removed(site):
    admin = site["admin"]
    new = {"original": "", "kind": "task", "id": "credit_check", "position": "|qualify", "title": "Credit check: {{ record.name }}",
           "assign": "group:sales", "due_in": "1 business day", "due_from": "qualify", "reminder_count": "0", "esc_count": "0"}
    assert post(admin, STEPS, {**new, "op": "save"}, f"{STEPS}/new?after=qualify").status_code == 303
    # chasing before the proposal is sent: refused, the check's problem at the due time it counts from
    moved = step_form(admin, f"{STEPS}/chase")
    moved["position"] = "|qualify"
    refused = post(admin, STEPS, {**moved, "op": "save"}, f"{STEPS}/chase")
    assert refused.status_code == 422 and re.search(r'id="in-due_in-error">step .chase. is due from step .proposal., which does not '
                                                    r'finish before it', unescape(refused.text))
    gone = step_form(admin, f"{STEPS}/discount_approval")
    shown = post(admin, STEPS, {**gone, "op": "remove"}, f"{STEPS}/discount_approval")
    assert shown.status_code == 200 and "Take the step out of the draft" in shown.text
    assert post(admin, STEPS, {**gone, "op": "remove-save"}, f"{STEPS}/discount_approval").status_code == 303
    overlay = overlay_of(site, "lead_follow_up")
    assert overlay["remove_steps"] == ["discount_approval"]
    assert overlay["insert_steps"] == [{"after": "qualify", "step": {
        "id": "credit_check", "title": "Credit check: {{ record.name }}", "assign": "group:sales",
        "due": {"in": "1 business day", "from": "qualify"}}}]
    assert draft_problems(site) == []
    # training moved up, before the parallel block, counted from the kick-off
    url = "/admin/editors/processes/onboarding/steps"
    training = step_form(admin, f"{url}/training")
    training.update({"position": "|kickoff", "due_from": "kickoff"})
    assert post(admin, url, {**training, "op": "save"}, f"{url}/training").status_code == 303
    overlay = overlay_of(site, "onboarding")
    assert overlay["remove_steps"] == ["training"] and overlay["insert_steps"][0]["after"] == "kickoff"
    assert draft_problems(site) == []
    page = words(admin.get("/admin/editors/processes/onboarding").text)
    assert page.index("Kickoff") < page.index("Training") < page.index("Set up")


def test_an_approval_and_a_step_inside_a_parallel_branch(site):
    admin = site["admin"]
    data = step_form(admin, f"{STEPS}/discount_approval")
    assert 'Approved or rejected by' in admin.get(f"{STEPS}/discount_approval").text
    data["approval"] = "role:sales_manager, role:sales_director"
    assert post(admin, STEPS, {**data, "op": "save"}, f"{STEPS}/discount_approval").status_code == 303
    changed = overlay_of(site, "lead_follow_up")
    step = (changed.get("change_steps") or {}).get("discount_approval") or (changed.get("replace_steps") or {}).get("discount_approval")
    assert step["approvers"] == ["role:sales_manager", "role:sales_director"]
    task = step_form(admin, f"{STEPS}/proposal")  # a task's approval is a step of its own: the task form says so
    refused = post(admin, STEPS, {**task, "approval": "role:sales_manager", "op": "save"}, f"{STEPS}/proposal")
    assert refused.status_code == 422 and "An approval is a step of its own" in unescape(refused.text)
    url = "/admin/editors/processes/onboarding/steps"
    new = {"original": "", "kind": "task", "id": "site_check", "position": "set_up/delivery|deliver", "title": "Check the site",
           "assign": "completer:deliver", "reminder_count": "0", "esc_count": "0"}
    assert post(admin, url, {**new, "op": "save"}, f"{url}/new?after=deliver").status_code == 303
    assert overlay_of(site, "onboarding")["insert_steps"] == [{"after": "deliver", "step": {
        "id": "site_check", "title": "Check the site", "assign": "completer:deliver"}}]
    assert draft_problems(site) == []


def test_a_bad_step_comes_back_with_each_problem_at_its_input(site):
    admin = site["admin"]
    data = step_form(admin, f"{STEPS}/qualify")
    data.update({"due_in": "two days", "assign": "the sales team", "esc-0-at": "later", "op": "save"})
    refused = post(admin, STEPS, data, f"{STEPS}/qualify")
    assert refused.status_code == 422
    text = unescape(refused.text)
    assert re.search(r'id="in-due_in-error">Expected e\.g\. .2 business days', text) and 'value="two days"' in text
    assert re.search(r'id="in-assign-error">.the sales team. is not someone', text)
    assert re.search(r'id="in-esc-0-at-error">Expected .due. or .due \+ DURATION.', text) and 'value="later"' in text
    # what only the check can tell: a template naming a field the opportunity does not have, at the title
    data = step_form(admin, f"{STEPS}/qualify")
    data.update({"title": "Qualify {{ record.nme }}", "op": "save"})
    refused = post(admin, STEPS, data, f"{STEPS}/qualify")
    assert refused.status_code == 422 and re.search(r'id="in-title-error">[^<]*record\.nme', refused.text)
    assert 'value="Qualify {{ record.nme }}"' in refused.text and draft_files(site["engine"]) == {}


def test_the_diagram_page_draws_the_active_and_the_draft_version(site):
    admin = site["admin"]
    page = admin.get("/admin/processes/onboarding")
    assert page.status_code == 200 and "Active version" in page.text and "Draft version" not in page.text
    new = {"original": "", "kind": "task", "id": "site_check", "position": "set_up/delivery|deliver", "title": "Check the site",
           "reminder_count": "0", "esc_count": "0", "op": "save"}
    post(admin, "/admin/editors/processes/onboarding/steps", new, "/admin/editors/processes/onboarding/steps/new")
    page = admin.get("/admin/processes/onboarding")
    svgs = re.findall(r'<svg [^>]*role="img".*?</svg>', page.text, re.DOTALL)  # the drawings (not the bell's icon)
    assert len(svgs) == 2 and "Draft version" in page.text
    drawn = [{g.get("data-step") for g in ET.fromstring(s).iter("{http://www.w3.org/2000/svg}g") if g.get("data-step")} for s in svgs]
    assert "site_check" not in drawn[0] and "site_check" in drawn[1]
    assert "Check the site" in words(page.text.split("Draft version")[1])  # the list beside the drawing says it too
    assert admin.get("/admin/processes/nothing").status_code == 404


# -- the preview ---------------------------------------------------------------------------------------
def test_the_preview_shows_a_group_field_only_for_a_record_of_the_group(site):
    admin = site["admin"]
    post(admin, FIELD_URL, {"scope": "group:healthcare", "name": "bed_count", "label": "Beds", "type": "integer", "op": "save"}, FIELD_URL)
    hospital = admin.get(f"/admin/preview?show=entity:company&role=staff&record={site['acme']}")
    assert hospital.status_code == 200 and 'id="f-bed_count"' in hospital.text and "Edit Acme Health" in words(hospital.text)
    assert 'value="Acme Health"' in hospital.text  # the record's own values in its inputs
    shop = admin.get(f"/admin/preview?show=entity:company&role=staff&record={site['shop']}")
    assert shop.status_code == 200 and 'id="f-bed_count"' not in shop.text and 'id="f-name"' in shop.text
    assert "Not shown for Northwind Retail: the group Healthcare" in words(shop.text)
    assert 'id="f-bed_count"' not in admin.get(f"/records/company/{site['acme']}/edit").text  # staff see it only once activated
    assert admin.get("/admin/preview?show=entity:company&record=99999").status_code == 404
    assert admin.get("/admin/preview?show=form:nothing").status_code == 404


def test_the_preview_of_a_new_form_for_a_role_and_a_record(site):
    admin = site["admin"]
    post(admin, "/admin/editors/forms/new", {**NEW_FORM, "op": "save"}, "/admin/editors/forms/new")
    page = admin.get(f"/admin/preview?show=form:site_visit&role=staff&record={site['acme']}")
    said = words(page.text)
    assert page.status_code == 200 and "Site visit for Acme Health" in said and "What it was about" in said
    assert 'id="f-visited_on"' in page.text and "<fieldset disabled>" in page.text  # shown, never sent
    assert "Someone with this role may fill in forms that start work" in said
    portal = words(admin.get("/admin/preview?show=form:site_visit&role=portal").text)
    assert "Someone with only this role cannot open it" in portal
    picker = admin.get("/admin/preview?show=form:site_visit&q=north")
    assert ">Northwind Retail</option>" in picker.text and ">Acme Health</option>" not in picker.text


# -- who, and what is not there ----------------------------------------------------------------------------
GETS = ["/admin/editors", "/admin/editors/entities/company", FIELD_URL, "/admin/editors/entities/company/record-fields",
        "/admin/editors/entities/company/groups/healthcare",
        "/admin/editors/forms/new", "/admin/editors/forms/lead_enquiry", "/admin/editors/processes/lead_follow_up",
        f"{STEPS}/new?after=qualify", f"{STEPS}/qualify", "/admin/processes/lead_follow_up", "/admin/preview?show=form:call_note"]
POSTS = [FIELD_URL, "/admin/editors/entities/company/record-fields", "/admin/editors/entities/company/groups/healthcare",
         "/admin/editors/forms/new", STEPS]


def test_only_administrators_reach_the_editors(site):
    staff = TestClient(site["app"])
    log_in(staff, "ann")
    assert [staff.get(url).status_code for url in GETS] == [403] * len(GETS)
    csrf = token(staff.get("/").text)
    typed = {"csrf_token": csrf, "scope": "all", "name": "x", "type": "string", "section": "Company", "op": "save"}
    assert [staff.post(url, data=typed).status_code for url in POSTS] == [403] * len(POSTS)
    assert draft_files(site["engine"]) == {}
    assert [site["admin"].get(url).status_code for url in GETS] == [200] * len(GETS)


def test_what_is_not_there_is_not_found_and_a_field_removed_meanwhile_is_said(site):
    admin = site["admin"]
    for url in ("/admin/editors/entities/nothing", FIELD_URL + "?field=nothing", "/admin/editors/forms/nothing",
                "/admin/editors/processes/nothing", f"{STEPS}/nothing"):
        assert admin.get(url).status_code == 404, url
    gone = post(admin, FIELD_URL, {"original": "nothing", "scope": "all", "name": "nothing", "type": "string", "section": "Company",
                                   "op": "save"}, FIELD_URL)
    assert gone.status_code == 422 and "no longer have a field named nothing: someone removed it meanwhile" in words(gone.text)
    step = post(admin, STEPS, {"original": "ghost", "kind": "task", "title": "Ghost", "op": "save"}, STEPS + "/qualify")
    assert step.status_code == 422 and "no longer has a step ghost" in words(step.text)


def test_a_draft_with_problems_sends_the_editors_to_the_yaml_files(site):
    admin = site["admin"]
    broken = admin.post("/admin/draft/files", data={"csrf_token": token(admin.get("/admin/draft").text), "path": "forms/bad.yaml",
                                                    "text": "kind: form\nname: bad\nfields: {a: nonsense}\n"})
    assert broken.status_code == 422
    sent = admin.get(FIELD_URL, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/admin/draft#problems"
    assert "fix it here before using the structured editors" in words(admin.get("/admin/draft").text)
    home = words(admin.get("/admin/editors").text)
    assert "The draft has 1 problem" in home
    assert "this is the active configuration" in words(admin.get("/admin/preview?show=form:call_note").text)


def test_every_editor_page_and_save_on_a_draft_with_problems_goes_to_the_yaml_editor_first(site):
    admin = site["admin"]
    broken = admin.post("/admin/draft/files", data={"csrf_token": token(admin.get("/admin/draft").text), "path": "forms/bad.yaml",
                                                    "text": "kind: form\nname: bad\nfields: {a: nonsense}\n"})
    assert broken.status_code == 422
    before = draft_files(site["engine"])
    editors = [url for url in GETS if url.startswith("/admin/editors/")]
    for url in editors:
        sent = admin.get(url, follow_redirects=False)
        assert (sent.status_code, sent.headers.get("location")) == (303, "/admin/draft#problems"), url
        assert "The draft has 1 problem: fix it here before using the structured editors." in words(admin.get("/admin/draft").text), url
    csrf = token(admin.get("/admin/draft").text)
    typed = {"csrf_token": csrf, "scope": "all", "name": "x", "label": "X", "type": "string", "section": "Company", "op": "save"}
    for url in POSTS:
        sent = admin.post(url, data=typed, follow_redirects=False)
        assert (sent.status_code, sent.headers.get("location")) == (303, "/admin/draft#problems"), url
        assert "fix it here before using the structured editors" in words(admin.get("/admin/draft").text), url
    assert draft_files(site["engine"]) == before  # nothing of the saves was written
    # someone who may not use the console is refused, and not told about the draft
    staff = TestClient(site["app"])
    log_in(staff, "ann")
    assert [staff.get(url, follow_redirects=False).status_code for url in editors] == [403] * len(editors)
    assert [staff.post(url, data={**typed, "csrf_token": token(staff.get("/").text)}, follow_redirects=False).status_code
            for url in POSTS] == [403] * len(POSTS)


def test_every_crm_process_page_draws_every_step_branch_and_escalation_level(site):
    from engine.loader import load
    from engine.model import ParallelStep

    def walk(steps):
        for s in steps:
            yield s
            for _, branch in getattr(s, "branches", ()):
                yield from walk(branch)

    for name, process in load([CRM]).processes.items():
        page = site["admin"].get(f"/admin/processes/{name}")
        root = ET.fromstring(re.search(r'<svg [^>]*role="img".*?</svg>', page.text, re.DOTALL).group(0))
        groups = list(root.iter("{http://www.w3.org/2000/svg}g"))
        steps = list(walk(process.steps))
        assert {g.get("data-step") for g in groups if g.get("class") in ("step task", "step approval", "parallel")} == {s.id for s in steps}
        assert [g.get("data-branch") for g in groups if g.get("class") == "branch"] == \
            [n for s in steps if isinstance(s, ParallelStep) for n, _ in s.branches]
        assert [(g.get("data-step"), g.get("data-level")) for g in groups if g.get("class") == "escalation"] == \
            [(s.id, str(i)) for s in steps for i, _ in enumerate(getattr(s, "escalate", ()), start=1)]
        assert root.get("role") == "img" and root.get("aria-label").startswith(f"Diagram of the process {process.label}")
