"""The REST API as an integration uses it: bearer tokens, problem details, idempotent submissions."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.devserver import DevServer
from runtime.schema import contact_history, metadata as platform, process_starts, users
from tests.conftest import CRM, free_port


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def data(compiled, tmp_path):
    """A database with an integration's user ('erp'), a portal user ('viewer') and one company; their tokens."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'api.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    tokens = {}
    with engine.begin() as conn:
        for name, roles in [("erp", ["staff", "sales_manager"]), ("viewer", ["portal"])]:
            token, digest = new_token()
            tokens[name] = token
            conn.execute(users.insert().values(username=name, name=name, roles=roles, api_token_hash=digest,
                                               created_at=dt.datetime.now(dt.timezone.utc)))
        company = records.create_record(conn, compiled, "company", {"name": "Acme", "status": "customer"}, None).id
    return engine, tokens, company


@pytest.fixture
def api(compiled, data):
    engine, tokens, company = data
    client = TestClient(create_app(engine, compiled, None, secret_key="k"))
    return client, engine, tokens, company


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_required_and_permissions_checked(api):
    client, _, tokens, _ = api
    response = client.get("/api/forms")
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
    assert client.get("/api/forms", headers=auth("tl_wrong")).status_code == 401
    assert client.get("/api/forms", headers=auth(tokens["viewer"])).status_code == 403
    assert "lead_enquiry" in [f["name"] for f in client.get("/api/forms", headers=auth(tokens["erp"])).json()]
    schema = client.get("/api/forms/lead_enquiry/schema", headers=auth(tokens["erp"])).json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_submissions_give_per_field_problems_and_are_idempotent(api, compiled):
    client, engine, tokens, company = api
    headers = {**auth(tokens["erp"]), "Idempotency-Key": "order-77"}
    bad = client.post("/api/forms/lead_enquiry/submissions", headers=headers,
                      json={"record_id": company, "values": {"channel": "pigeon", "budget": "lots", "colour": "red"}})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    errors = bad.json()["errors"]
    assert set(errors) == {"channel", "budget", "summary", "colour"}
    good = {"record_id": company, "values": {"channel": "email", "summary": "30 seats", "budget": "9000"}}
    first = client.post("/api/forms/lead_enquiry/submissions", headers=headers, json=good)
    again = client.post("/api/forms/lead_enquiry/submissions", headers=headers, json=good)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["created"] == again.json()["created"] and again.json()["replayed"] is True
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contact_history).where(contact_history.c.kind == "submission")).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(compiled.metadata.tables["opportunity"])).scalar() == 1
    assert client.post("/api/forms/lead_enquiry/submissions", headers=auth(tokens["erp"]), json=good).status_code == 400  # no key


def test_a_submission_is_refused_before_anything_is_written_without_a_valid_token_and_permission(api):
    client, engine, tokens, company = api
    call = {"record_id": company, "values": {"direction": "outbound", "subject": "Renewal", "minutes": 12}}

    def submit(headers: dict, form: str = "call_note", body: dict = call):
        return client.post(f"/api/forms/{form}/submissions", headers={"Idempotency-Key": "call-1", **headers}, json=body)

    def entries() -> int:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(contact_history)).scalar()

    assert submit({}).status_code == 401
    assert submit(auth("tl_wrong"), form="no_such_form").json()["title"] == "Invalid token"  # the token first: no form names leak
    assert submit(auth(tokens["viewer"])).json()["detail"] == "This needs the 'generate_tasks' permission."
    assert submit(auth(tokens["erp"]), form="no_such_form").status_code == 404
    missing = submit(auth(tokens["erp"]), body={**call, "record_id": company + 100})
    assert missing.status_code == 422 and missing.json()["errors"] == {"record_id": f"there is no company {company + 100}"}
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "erp").values(active=False))
    assert submit(auth(tokens["erp"])).status_code == 401  # a deactivated user's token stops working at once
    assert entries() == 0
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "erp").values(active=True))
    assert [submit(auth(tokens["erp"])).status_code for _ in range(2)] == [201, 200]
    assert entries() == 1


def test_records_crud_search_and_optimistic_concurrency(api):
    client, _, tokens, company = api
    h = auth(tokens["erp"])
    created = client.post("/api/records/company", headers=h, json={"name": "Globex", "status": "prospect", "industry": "retail"})
    assert created.status_code == 201
    rid = created.json()["id"]
    invalid = client.post("/api/records/company", headers=h, json={"status": "bogus"})
    assert invalid.status_code == 422 and set(invalid.json()["errors"]) == {"name", "status"}
    found = client.get("/api/records/company", headers=h, params={"industry": "retail"}).json()
    assert [r["title"] for r in found["items"]] == ["Globex"]
    patched = client.patch(f"/api/records/company/{rid}", headers={**h, "If-Match": "1"}, json={"status": "customer"})
    assert patched.status_code == 200 and patched.json()["row_version"] == 2
    stale = client.patch(f"/api/records/company/{rid}", headers={**h, "If-Match": "1"}, json={"status": "former"})
    assert stale.status_code == 412
    assert client.get("/api/records/company/99999", headers=h).status_code == 404
    assert client.get("/api/openapi.json").json()["paths"]["/api/forms/{name}/submissions"]


def test_deleting_a_record_needs_its_version_and_names_what_still_refers_to_it(api, compiled):
    client, engine, tokens, company = api
    h = auth(tokens["erp"])
    with engine.begin() as conn:
        person = records.create_record(conn, compiled, "person", {"company": company, "first_name": "Jane", "last_name": "Doe"}, None)
    assert client.delete(f"/api/records/company/{company}", headers=auth(tokens["viewer"])).status_code == 403
    unversioned = client.delete(f"/api/records/company/{company}", headers=h)
    assert unversioned.status_code == 428 and unversioned.headers["content-type"] == "application/problem+json"
    assert client.delete(f"/api/records/company/{company}", headers={**h, "If-Match": "one"}).status_code == 400
    assert client.delete(f"/api/records/company/{company}", headers={**h, "If-Match": "2"}).status_code == 412
    refused = client.delete(f"/api/records/company/{company}", headers={**h, "If-Match": '"1"'})
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["referenced_by"] == [f"person {person.id} 'Jane Doe' (field Company)"]
    assert "cannot be deleted while these refer to it" in refused.json()["detail"]
    assert client.delete(f"/api/records/person/{person.id}", headers={**h, "If-Match": "1"}).status_code == 204
    assert client.delete(f"/api/records/company/{company}", headers={**h, "If-Match": "1"}).status_code == 204
    assert client.get(f"/api/records/company/{company}", headers=h).status_code == 404
    assert client.delete(f"/api/records/company/{company}", headers={**h, "If-Match": "1"}).status_code == 404
    with engine.connect() as conn:
        audit = conn.execute(sa.text("SELECT action, before FROM audit_log WHERE entity = 'company' ORDER BY id")).all()
    assert [a.action for a in audit] == ["create", "delete"]


def test_records_created_or_changed_through_the_api_start_the_processes_their_triggers_name(compiled, data, tmp_path):
    engine, tokens, company = data
    h = auth(tokens["erp"])

    async def scenario():
        with DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()) as server:
            temporal = await Client.connect(server.address)
            app = create_app(engine, compiled, temporal, secret_key="k", task_queue="api")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tailor") as client:
                request = await client.post("/api/records/support_request", headers=h, json={
                    "company": company, "summary": "Printer on fire", "description": "Smoke", "category": "question"})
                prospect = await client.post("/api/records/company", headers=h, json={"name": "Globex", "status": "prospect"})
                won = await client.patch(f"/api/records/company/{prospect.json()['id']}", headers=h, json={"status": "customer"})
                phone = await client.patch(f"/api/records/company/{prospect.json()['id']}", headers=h, json={"phone": "+44 20 7946 0000"})
            started = [*request.json()["processes"], *won.json()["processes"]]
            return request, prospect, won, phone, {w: (await temporal.get_workflow_handle(w).describe()).status for w in started}

    request, prospect, won, phone, status = asyncio.run(scenario())
    assert (request.status_code, prospect.status_code, won.status_code, phone.status_code) == (201, 201, 200, 200)
    assert request.json()["processes"] == [f"support_sla/support_request-{request.json()['id']}-v1-created"]
    assert prospect.json()["processes"] == [] and phone.json()["processes"] == []  # onboarding: only on becoming a customer
    assert won.json()["processes"] == [f"onboarding/company-{prospect.json()['id']}-v2-changed"]
    assert set(status.values()) == {WorkflowExecutionStatus.RUNNING} and len(status) == 2
    with engine.connect() as conn:
        assert conn.execute(sa.select(process_starts.c.workflow_id, process_starts.c.status).order_by(process_starts.c.id)).all() == [
            (w, "started") for w in status]


def test_forms_publish_ui_schemas_for_rjsf_and_json_forms(api):
    client, _, tokens, _ = api
    rjsf = client.get("/api/forms/lead_enquiry/ui-schema?for=rjsf", headers=auth(tokens["erp"]))
    assert rjsf.status_code == 200 and rjsf.json()["ui:order"][0] != "*"
    forms = client.get("/api/forms/lead_enquiry/ui-schema?for=jsonforms", headers=auth(tokens["erp"])).json()
    assert forms["type"] == "VerticalLayout" and {e["type"] for e in forms["elements"]} == {"Group"}
    assert client.get("/api/forms/lead_enquiry/ui-schema?for=angular", headers=auth(tokens["erp"])).status_code == 422
    assert client.get("/api/forms/nosuch/ui-schema", headers=auth(tokens["erp"])).status_code == 404
