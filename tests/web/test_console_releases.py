"""Configuration in the console: edit the local pack's YAML, see every problem at its line, see the impact, activate
without a restart (staff see the new form at once), compare releases, revert, export."""
from __future__ import annotations

import io
import zipfile

import pytest
import yaml
from fastapi.testclient import TestClient

from runtime import releases
from tests.web.console_site import console_site, words
from tests.web.test_pages import log_in, token

VISIT_FORM = """kind: form
name: site_visit
label: Site visit
entity: contract
contact: true
fields:
  visited_on: {type: date, required: true}
  notes: text
"""
BEDS = """kind: overlay
name: beds
target: entity/contract
add_fields:
  bed_count: {type: integer, label: Beds}
"""
BROKEN = """kind: form
name: broken
label: Broken
entity: contract
fields:
  a: string
on_submit:
  - update: record
    set:
      reference: "{{ form.nope }}"
"""


@pytest.fixture
def site(tmp_path):
    return console_site(tmp_path)


def save(client, path: str, text: str):
    return client.post("/admin/draft/files", data={"csrf_token": token(client.get("/admin/draft").text), "path": path, "text": text})


def test_edit_check_see_the_impact_activate_and_revert(site):
    app, engine = site
    admin, staff = TestClient(app), TestClient(app)
    log_in(admin, "ada")
    log_in(staff, "ann")
    assert "Site visit" not in staff.get("/forms").text

    page = admin.get("/admin/draft")
    assert page.status_code == 200 and "pack.yaml" in page.text and "extends:" in page.text  # a new local pack's manifest
    broken = save(admin, "forms/broken.yaml", BROKEN)
    assert broken.status_code == 422
    said = words(broken.text)
    assert "forms/broken.yaml, line 10" in said and "form.nope" in said  # the problem at its line, linked
    assert 'id="line-10" class="bad"' in broken.text
    refused = admin.post("/admin/draft/activate", data={"csrf_token": token(broken.text), "reason": "try"})
    assert refused.status_code == 422 and "problem" in words(refused.text)
    with engine.connect() as conn:
        assert releases.version(conn) == 1  # nothing was activated

    remove = admin.post("/admin/draft/files/delete", data={"csrf_token": token(broken.text), "path": "forms/broken.yaml"}, follow_redirects=False)
    assert remove.status_code == 303
    assert save(admin, "forms/site_visit.yaml", VISIT_FORM).status_code == 200
    fine = save(admin, "overlays/beds.yaml", BEDS)
    assert fine.status_code == 200 and "The draft has no problems." in fine.text

    impact = words(admin.get("/admin/draft/impact").text)
    assert "added form site_visit" in impact and "added field bed_count to contract" in impact
    assert "add field contract.bed_count" in impact.lower() or "bed_count" in impact  # the schema plan names the new column
    no_reason = admin.post("/admin/draft/activate", data={"csrf_token": token(fine.text), "reason": ""})
    assert no_reason.status_code == 422 and "Say why" in no_reason.text
    done = admin.post("/admin/draft/activate", data={"csrf_token": token(fine.text), "reason": "site visits for hospitals"},
                      follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/admin/releases"
    assert "Site visit" in staff.get("/forms").text  # no restart
    history = admin.get("/admin/releases")
    assert "site visits for hospitals" in history.text and "Active" in history.text
    with engine.connect() as conn:
        rows = releases.history(conn)
    new_id, old_id = rows[0]["id"], rows[1]["id"]

    diff = words(admin.get(f"/admin/releases/diff?a={old_id}&b={new_id}").text)
    assert "added form site_visit" in diff and "local/forms/site_visit.yaml (added)" in diff
    exported = admin.get(f"/admin/releases/{new_id}/local.zip")
    names = zipfile.ZipFile(io.BytesIO(exported.content)).namelist()
    assert exported.headers["content-type"] == "application/zip" and sorted(names) == [
        "local/forms/site_visit.yaml", "local/overlays/beds.yaml", "local/pack.yaml"]

    back = admin.post(f"/admin/releases/{old_id}/activate", data={"csrf_token": token(history.text), "reason": "not yet"},
                      follow_redirects=False)
    assert back.status_code == 303
    assert "Site visit" not in staff.get("/forms").text  # reverted
    assert admin.get("/admin/releases/diff?a=1&b=99999").status_code == 404


def test_only_administrators_reach_the_configuration(site):
    app, _ = site
    staff = TestClient(app)
    log_in(staff, "ann")
    for url in ("/admin/draft", "/admin/releases", "/admin/draft/impact"):
        assert staff.get(url).status_code == 403
    response = staff.post("/admin/draft/files", data={"csrf_token": token(staff.get("/").text), "path": "x.yaml", "text": ""})
    assert response.status_code == 403


def test_a_bad_path_is_refused_with_what_was_typed(site):
    app, _ = site
    admin = TestClient(app)
    log_in(admin, "ada")
    bad = save(admin, "../../etc/passwd", "kind: form")
    assert bad.status_code == 422 and "Give a path inside the pack" in words(bad.text) and "kind: form" in bad.text


VISIT_PROCESS = """kind: process
name: visit_follow_up
label: Visit follow-up
entity: contract
fallback: group:sales
migrate:
  from: ">=0.1"
  steps: {call: ring}
steps:
  - id: ring
    title: Ring them
    assign: group:sales
    fallback: user:ann
  - id: write
    title: Write it up
    assign: group:sales
"""


def test_the_process_editor_keeps_the_fallback_and_how_running_instances_move(site):
    from tests.web.test_console_editors import post, step_form
    app, engine = site
    admin = TestClient(app)
    log_in(admin, "ada")
    assert "The draft has no problems." in save(admin, "processes/visit_follow_up.yaml", VISIT_PROCESS).text
    url = "/admin/editors/processes/visit_follow_up/steps"
    data = step_form(admin, f"{url}/ring")
    assert data["title"] == "Ring them"
    saved = post(admin, url, {**data, "title": "Ring them back", "op": "save"}, f"{url}/ring")
    assert saved.status_code == 303
    with engine.connect() as conn:
        written = yaml.safe_load(releases.draft(conn)["files"]["processes/visit_follow_up.yaml"])
    assert written["steps"][0]["title"] == "Ring them back"
    assert written["fallback"] == "group:sales" and written["migrate"] == {"from": ">=0.1", "steps": {"call": "ring"}}
    assert written["steps"][0]["fallback"] == "user:ann"
