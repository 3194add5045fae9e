"""Configuration in the console: edit the local pack's YAML, see every problem at its line, see the impact, activate
without a restart (staff see the new form at once), compare releases, revert, export."""
from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from temporalio.testing import WorkflowEnvironment

from admin.web.routes import releases as release_routes
from runtime import records, releases
from runtime.mail import MailSettings
from runtime.schema import group_members, process_instances, tasks, users
from runtime.worker import make_worker
from runtime.workflows import ProcessWorkflow, TaskAction, process_input
from tests.runtime.test_workflows import TEST_SERVER
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


# -- activation moves running instances ----------------------------------------------------------------
RING = """kind: process
name: ring_back
label: Ring back
entity: company
steps:
  - id: call
    title: "Call {{ record.name }}"
    assign: group:sales
    due: 2 hours
  - id: thanks
    title: Say thanks
    assign: completer:call
"""
RING_2 = RING.replace("id: call\n", "id: call_customer\n").replace("completer:call\n", "completer:call_customer\n") + \
    "migrate:\n  steps:\n    call: call_customer\n"
# call_customer becomes phone; thanks becomes thank_you, which the migration does not map: an instance there stays
RING_3 = RING_2.replace("call_customer", "phone").replace("id: thanks", "id: thank_you").replace(
    "migrate:\n  steps:\n    call: phone\n", "migrate:\n  steps:\n    call_customer: phone\n")


def _manifest(version: str) -> str:
    return f"kind: pack\nname: local\nversion: {version}\nextends:\n  crm: \">=1.0\"\n"


def _instances(engine) -> list[tuple]:
    with engine.connect() as conn:
        versions = dict(conn.execute(sa.select(process_instances.c.workflow_id, process_instances.c.version)
                                     .where(process_instances.c.process == "ring_back")).all())
        steps = conn.execute(sa.select(tasks.c.workflow_id, tasks.c.step_id).where(tasks.c.process == "ring_back")
                             .order_by(tasks.c.workflow_id, tasks.c.id)).all()
    return [(wid, versions[wid], [s for w, s in steps if w == wid]) for wid in sorted(versions)]


def test_activation_moves_running_instances_or_leaves_them_pending_to_move_later(site, monkeypatch):
    app, engine = site
    synced = []  # the time-skipping test server has no schedules: the CRM's are synced by nobody here

    async def sync(client, compiled, queue, announce=()):
        synced.append(compiled)

    monkeypatch.setattr(release_routes, "sync_schedules", sync)
    admin = TestClient(app)
    log_in(admin, "ada")
    with engine.begin() as conn:
        ann = conn.execute(sa.select(users.c.id).where(users.c.username == "ann")).scalar_one()
        conn.execute(group_members.insert().values(group_name="sales", user_id=ann, manager=False))
    assert save(admin, "processes/ring_back.yaml", RING).status_code == 200
    page = admin.get("/admin/draft").text
    assert admin.post("/admin/draft/activate", data={"csrf_token": token(page), "reason": "ring back"},
                      follow_redirects=False).headers["location"] == "/admin/releases"  # nothing running: nothing to move
    compiled = app.state.compiled
    spec = compiled.process_specs["ring_back"]
    with engine.begin() as conn:
        acme = records.create_record(conn, compiled, "company", {"name": "Acme"}, None).id

    def activate(reason: str):
        page = admin.get("/admin/draft/impact").text
        return admin.post("/admin/draft/activate", data={"csrf_token": token(page), "reason": reason}, follow_redirects=False)

    async def body():
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"q-{uuid.uuid4()}"
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(env.client, engine, compiled, queue, MailSettings(), pool):
                    for i in (1, 2):
                        await env.client.start_workflow(
                            ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=acme, record={"name": "Acme"},
                                                              started_by=ann, started_at=(await env.get_current_time()).isoformat()),
                            id=f"ring_back-{i}", task_queue=queue)
                    await env.sleep(60)
                    seen = {"started": _instances(engine)}
                    # Temporal away: the release is active all the same, and the moves wait
                    app.state.services.client = None
                    await asyncio.to_thread(save, admin, "pack.yaml", _manifest("1.1.0"))
                    await asyncio.to_thread(save, admin, "processes/ring_back.yaml", RING_2)
                    seen["impact"] = words((await asyncio.to_thread(admin.get, "/admin/draft/impact")).text)
                    away = await asyncio.to_thread(activate, "rename the call")
                    seen["away"] = away.headers["location"]
                    seen["pending"] = words((await asyncio.to_thread(admin.get, away.headers["location"])).text)
                    seen["not moved"] = _instances(engine)
                    # Temporal back: the button moves them, once
                    app.state.services.client = env.client
                    pending = (await asyncio.to_thread(admin.get, away.headers["location"])).text
                    retry = await asyncio.to_thread(admin.post, away.headers["location"], data={"csrf_token": token(pending)},
                                                    follow_redirects=False)
                    seen["retry"] = retry.headers["location"]
                    seen["moved"] = words((await asyncio.to_thread(admin.get, away.headers["location"])).text)
                    seen["after retry"] = _instances(engine)
                    again = await asyncio.to_thread(admin.post, away.headers["location"], data={"csrf_token": token(pending)})
                    seen["again"] = words(again.text)
                    # Temporal there at activation: the moves are sent at once (the second instance is at a step it does not map)
                    await env.client.get_workflow_handle("ring_back-2").execute_update(
                        ProcessWorkflow.complete, TaskAction(step="call_customer", user_id=ann))
                    await env.sleep(5)
                    await asyncio.to_thread(save, admin, "pack.yaml", _manifest("1.2.0"))
                    await asyncio.to_thread(save, admin, "processes/ring_back.yaml", RING_3)
                    direct = await asyncio.to_thread(activate, "phone them")
                    seen["direct"] = words((await asyncio.to_thread(admin.get, direct.headers["location"])).text)
                    seen["at once"] = _instances(engine)
                    seen["log"] = words((await asyncio.to_thread(admin.get, "/admin/log")).text)
                    for i in (1, 2):
                        await env.client.get_workflow_handle(f"ring_back-{i}").terminate()
                    return seen

    seen = asyncio.run(body())
    v1 = spec["version"]
    assert seen["started"] == [("ring_back-1", v1, ["call"]), ("ring_back-2", v1, ["call"])]
    assert "ring_back (Ring back): 2 running on local 1.0.0 will move to local 1.1.0 (steps: call → call_customer)" in seen["impact"]
    assert seen["away"] == "/admin/releases/3/running"
    assert "Temporal did not answer" in seen["pending"] and "have not moved yet" in seen["pending"]
    assert ("Still to move ring_back (Ring back): 2 running on local 1.0.0 will move to local 1.1.0 (steps: call → call_customer) "
            "Move running instances now") in seen["pending"]
    assert seen["not moved"] == seen["started"]
    assert seen["retry"] == "/admin/releases/3/running"
    assert "ring_back (Ring back): 2 moved to local 1.1.0" in seen["moved"]
    assert "None: every running instance this release moves has moved." in seen["moved"] and "Move running instances now" not in seen["moved"]
    v2 = {v for _, v, _ in seen["after retry"]}
    assert len(v2) == 1 and v2 != {v1} and [s for _, _, s in seen["after retry"]] == [["call_customer"], ["call_customer"]]
    assert "No running instance is still to move." in seen["again"]
    stays = ("ring_back-2 stays: step 'thanks' is open and the new version has no step 'thanks': the migration does not map it")
    assert ("ring_back (Ring back): 1 moved to local 1.2.0, 1 stay on local 1.1.0 The one on Acme stays: step 'thanks' is open and "
            "the new version has no step 'thanks': the migration does not map it") in seen["direct"]  # named by its record
    assert "Sent" in seen["direct"] and "Move running instances now" in seen["direct"]  # the one that stays can be tried again
    assert [s for _, _, s in seen["at once"]] == [["phone"], ["call_customer", "thanks"]]
    assert f"Move running release 4 ring_back (Ring back): 1 moved to local 1.2.0, 1 stay on local 1.1.0; {stays}" in seen["log"]
    assert "Temporal did not answer: the moves are pending" in seen["log"]
    assert len(synced) == 1  # the schedules of the release activated while Temporal answered
