"""Bad input gets a clear 4xx problem (API) or a message on the page, never a 500, on SQLite and on PostgreSQL.

Each case is one a probe found answered with a traceback: ids and page numbers past what a column holds, JSON that is
malformed, the wrong shape or deeply nested, a lone surrogate or a NUL character in a text field, text where a number
is compared, a number no column holds, an over-long Idempotency-Key, a sort key that is not a field.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import re

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from temporalio.client import Client

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.devserver import DevServer
from runtime.schema import contact_history, idempotency_keys, metadata as platform, tasks, users
from tests.conftest import CRM, free_port

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PROBLEM = "application/problem+json"
KEYS = itertools.count()


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture(scope="module")
def site(compiled, module_database):
    """The app over SQLite or PostgreSQL: 'mia' (staff, sales manager; a password and a token), a company and an open task."""
    engine = module_database
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    token, digest = new_token()
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        mia = conn.execute(users.insert().values(username="mia", name="Mia", roles=["staff", "sales_manager"], password_hash=FAST.hash("mia"),
                                                 api_token_hash=digest, created_at=now)).inserted_primary_key[0]
        company = records.create_record(conn, compiled, "company", {"name": "Acme", "status": "customer"}, None).id
        task = conn.execute(tasks.insert().values(key="bad-input:task", workflow_id="lead_follow_up/none", process="lead_follow_up",
                                                  step_id="qualify", title="Qualify", status="open", assignee_id=mia,
                                                  created_at=now)).inserted_primary_key[0]
    app = create_app(engine, compiled, None, secret_key="bad-input")
    return app, engine, {"Authorization": f"Bearer {token}"}, company, task


@pytest.fixture
def api(site):
    app, _, auth, _, _ = site
    return TestClient(app), auth


@pytest.fixture
def page(site):
    """A browser session logged in as mia."""
    client = TestClient(site[0])
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"csrf_token": csrf, "username": "mia", "password": "mia"}, follow_redirects=False).status_code == 303
    return client


def problem(response, status: int) -> dict:
    """The problem document of `response`, once it is one with `status`."""
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == PROBLEM
    return response.json()


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def raw_json(client, method: str, url: str, body: bytes, headers: dict):
    return client.request(method, url, content=body, headers={**headers, "content-type": "application/json"})


# -- ids and page numbers past what a column holds ---------------------------------------------

@pytest.mark.parametrize("page_number", [2**62, 2**63, 2**64])
def test_a_page_past_any_offset_is_an_empty_page(api, page_number):
    client, auth = api
    response = client.get("/api/records/company", params={"page": page_number}, headers=auth)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["items"] == [] and response.json()["total"] == 1 and response.json()["page"] == page_number


@pytest.mark.parametrize("size", [2**63, 501, 0])
def test_a_page_size_out_of_range_is_a_problem_naming_it(api, size):
    client, auth = api
    assert "query.page_size" in problem(client.get("/api/records/company", params={"page_size": size}, headers=auth), 422)["errors"]


@pytest.mark.parametrize("value", [str(2**63), str(-(2**63) - 1), "abc", "1.5"])
def test_an_id_filter_that_no_id_can_equal_is_a_bad_query(api, value):
    client, auth = api
    body = problem(client.get("/api/records/company", params={"id": value}, headers=auth), 400)
    assert body["title"] == "Bad query" and "'id'" in body["detail"]


# -- malformed, wrongly shaped and deeply nested JSON --------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 kB: under the size limit, past any parser's nesting


@pytest.mark.parametrize("url", ["/api/tasks/{task}/complete", "/api/records/company"])
def test_malformed_json_is_a_400_saying_so(site, api, url):
    client, auth = api
    url = url.format(task=site[4])
    body = problem(raw_json(client, "POST", url, b'{"data": ', auth), 400)
    assert body["title"] == "Malformed JSON" and body["detail"].startswith("The body is not JSON: ")
    assert problem(raw_json(client, "POST", url, DEEP, auth), 400)["detail"]


@pytest.mark.parametrize("url", ["/api/tasks/{task}/complete", "/api/records/company"])
def test_json_of_the_wrong_shape_is_a_422_naming_the_body(site, api, url):
    client, auth = api
    errors = problem(client.post(url.format(task=site[4]), json=[1, 2], headers=auth), 422)["errors"]
    assert list(errors) == ["body"] and errors["body"].startswith("Input should be a valid dictionary")


def test_step_form_values_are_checked_before_they_reach_the_process(site, api):
    client, auth = api
    url = f"/api/tasks/{site[4]}/complete"

    def errors(body: dict | bytes) -> dict:
        sent = raw_json(client, "POST", url, body, auth) if isinstance(body, bytes) else client.post(url, json=body, headers=auth)
        return problem(sent, 422)["errors"]

    assert errors({"data": {"notes": {"deep": [[1]]}}}) == {"data.notes": "a form value is text, a number, true or false, null, or a list of those"}
    assert errors({"data": {"notes": "a\x00b"}}) == {"data.notes": "text must not contain a NUL character (U+0000)"}
    assert errors(b'{"data": {"score": NaN}}') == {"data.score": "a number must be finite"}
    assert list(errors(b'{"comment": "\\ud800"}')) == ["comment"]
    assert list(problem(client.post(f"/api/tasks/{site[4]}/reassign", json={"to_user": 2**64}, headers=auth), 422)["errors"]) == ["to_user"]
    # what passes the checks reaches the process engine, which this app has not got: 503, not 500
    assert problem(client.post(url, json={"data": {"notes": "fine"}}, headers=auth), 503)["title"] == "The process engine is not connected."


# -- submissions ---------------------------------------------------------------------------------

def submit(client, auth, body: dict | bytes, key: str | None = None):
    headers = {**auth, "Idempotency-Key": key or f"bad-input-{next(KEYS)}"}
    if isinstance(body, bytes):
        return raw_json(client, "POST", "/api/forms/lead_enquiry/submissions", body, headers)
    return client.post("/api/forms/lead_enquiry/submissions", json=body, headers=headers)


def test_submission_values_of_the_wrong_shape_are_named(site, api):
    client, auth = api
    company = site[3]
    assert problem(submit(client, auth, {"record_id": company, "values": [1]}), 422)["errors"] == {"values": "Input should be a valid dictionary"}
    several = problem(submit(client, auth, {"record_id": company, "values": {"summary": ["a", "b"], "channel": "email", "budget": "10"}}), 422)
    assert several["errors"] == {"summary": "What are they looking for?: a list of several values has no single value"}
    assert "record_id" in problem(submit(client, auth, {"record_id": 2**64, "values": {}}), 422)["errors"]
    assert count(site[1], contact_history) == 0


@pytest.mark.parametrize(("text", "says"), [("a\x00b", "must not contain a NUL character (U+0000)"),
                                            ("\ud800", "must not contain U+D800, half of a surrogate pair")])
def test_text_a_database_cannot_hold_is_refused_per_field_in_a_submission(site, api, text, says):
    client, auth = api
    body = json.dumps({"record_id": site[3], "values": {"summary": text, "channel": "email", "budget": "10"}}).encode()
    errors = problem(submit(client, auth, body), 422)["errors"]
    assert set(errors) == {"summary"} and errors["summary"].startswith(f"What are they looking for? {says}")
    assert count(site[1], contact_history) == 0


@pytest.mark.parametrize("length", [101, 301, 1000])
def test_an_over_long_idempotency_key_is_a_400_and_nothing_is_recorded(site, api, length):
    client, auth = api
    body = problem(submit(client, auth, {"record_id": site[3], "values": {"summary": "Seats", "channel": "email", "budget": "10"}},
                          key="k" * length), 400)
    assert body == {"type": "about:blank", "title": "Idempotency-Key too long", "status": 400,
                    "detail": f"An Idempotency-Key has at most 100 characters; this one has {length}."}
    assert count(site[1], idempotency_keys) == 0 and count(site[1], contact_history) == 0
    assert problem(client.post(f"/api/tasks/{site[4]}/complete", json={}, headers={**auth, "Idempotency-Key": "k" * length}), 400)


def test_the_longest_idempotency_key_goes_through(site, api):
    client, auth = api
    done = submit(client, auth, {"record_id": site[3], "values": {"summary": "Seats", "channel": "email", "budget": "10"}}, key="k" * 100)
    assert done.status_code == 201, done.text[:300]
    with site[1].begin() as conn:  # leave the other tests an empty history
        conn.execute(contact_history.delete())


# -- records: text and numbers a database cannot hold ----------------------------------------------

@pytest.mark.parametrize(("body", "field", "says"), [
    (b'{"name": "a\\u0000b", "status": "customer"}', "name", "Name must not contain a NUL character (U+0000)"),
    (b'{"name": "\\ud800", "status": "customer"}', "name", "Name must not contain U+D800, half of a surrogate pair"),
    (b'{"name": "Big", "status": "customer", "employees": 1000000000000000000000000000000}', "employees",
     "Number of employees must be between -2147483648 and 2147483647"),
    (b'{"name": "Big", "status": "customer", "employees": 3000000000}', "employees",
     "Number of employees must be between -2147483648 and 2147483647"),
])
def test_a_record_with_a_value_the_database_cannot_hold_is_refused_per_field(site, api, body, field, says):
    client, auth = api
    errors = problem(raw_json(client, "POST", "/api/records/company", body, auth), 422)["errors"]
    assert set(errors) == {field} and errors[field].startswith(says)
    patched = problem(raw_json(client, "PATCH", f"/api/records/company/{site[3]}", body, auth), 422)["errors"]
    assert set(patched) == {field}
    assert client.get(f"/api/records/company/{site[3]}", headers=auth).json()["data"]["name"] == "Acme"


def test_a_reference_past_any_id_is_refused_per_field(site, api):
    client, auth = api
    errors = problem(client.post("/api/records/person", json={"company": 2**64, "first_name": "Jane", "last_name": "Doe"}, headers=auth), 422)
    assert errors["errors"] == {"company": "Company must be between -9223372036854775808 and 9223372036854775807"}


def test_a_field_name_that_is_half_a_surrogate_is_named_without_breaking_the_answer(api):
    client, auth = api
    errors = problem(raw_json(client, "POST", "/api/records/company", b'{"\\ud800": 1, "name": "X", "status": "customer"}', auth), 422)
    assert errors["errors"] == {"\ufffd": "'\ufffd' is not a field of company"}


# -- searching with values a column cannot be compared with ---------------------------------------------

@pytest.mark.parametrize(("params", "says"), [
    ({"employees": str(10**30)}, "a filter on 'employees' must be between -2147483648 and 2147483647"),
    ({"employees": "many"}, "'employees' is an integer field; 'many' is not a value it can be compared with"),
    ({"name": "a\x00b"}, "a filter on 'name' must not contain a NUL character (U+0000)"),
    ({"is_own_organisation": "perhaps"}, "'is_own_organisation' is a boolean field; 'perhaps' is not a value it can be compared with"),
    ({"created_at": "yesterday"}, "'created_at' is a datetime field; 'yesterday' is not a value it can be compared with"),
    ({"sort": "nosuch"}, "cannot search companies by 'nosuch': no such field"),
])
def test_a_filter_value_the_field_cannot_hold_is_a_bad_query(api, params, says):
    client, auth = api
    body = problem(client.get("/api/records/company", params=params, headers=auth), 400)
    assert body["detail"].startswith(says)


# -- the same on the pages -------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "says"), [
    ("f1=id&o1=contains&v1=abc", "&#39;id&#39; is an integer field; &#39;abc&#39; is not a value it can be compared with"),
    (f"f1=employees&o1=eq&v1={10**30}",
     "Number of employees: “1000000000000000000000000000000” must be between -2147483648 and 2147483647"),
    ("q=a%00b", "What to search for must not contain a NUL character (U+0000)"),
])
def test_the_directory_says_what_is_wrong_with_a_filter(page, query, says):
    response = page.get(f"/directory/company?{query}")
    assert response.status_code == 400 and 'role="alert"' in response.text
    assert says in response.text


def test_an_export_sorted_by_no_field_says_so_on_the_page(page):
    response = page.get("/directory/company/export.csv?sort=nosuch")
    assert response.status_code == 400 and "text/html" in response.headers["content-type"]
    assert "Companies cannot be sorted by “nosuch”: there is no such column." in response.text


def test_a_lookup_for_text_no_title_holds_finds_nothing(page):
    response = page.get("/lookup/company", params={"q": "a\x00b"})
    assert response.status_code == 200 and response.json() == []


def test_the_directory_finds_a_record_by_a_part_of_its_number(site, page):
    response = page.get(f"/directory/company?f1=id&o1=contains&v1={site[3]}")
    assert response.status_code == 200 and 'role="alert"' not in response.text and "Acme" in response.text


def test_an_amount_past_what_its_column_holds_is_refused(api):
    client, auth = api
    errors = problem(client.post("/api/records/opportunity", json={"value": "1" * 17 + ".00"}, headers=auth), 422)["errors"]
    assert errors.get("value") == "Value must have at most 16 digits before the decimal point"


# -- what the OpenAPI says ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "url", "allow"), [
    ("PUT", "/api/records/company/1", "DELETE, GET, PATCH"), ("TRACE", "/api/records/company", "GET, POST"),
    ("GET", "/api/tasks/1/complete", "POST"), ("DELETE", "/api/forms", "GET"),
])
def test_a_method_a_path_does_not_take_is_a_405_naming_every_one_it_does(api, method, url, allow):
    client, auth = api
    response = client.request(method, url, headers=auth)
    assert problem(response, 405)["title"] == "Method Not Allowed" and response.headers["allow"] == allow


def test_the_openapi_documents_problems_headers_and_bodies_as_the_api_answers(api):
    client, _ = api
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]

    def header(path, method, name):
        return next(p for p in paths[path][method]["parameters"] if p["in"] == "header" and p["name"] == name)

    assert header("/api/forms/{name}/submissions", "post", "Idempotency-Key")["required"] is True
    for action in ("complete", "approve", "reassign"):
        operation = paths[f"/api/tasks/{{task_id}}/{action}"]["post"]
        assert header(f"/api/tasks/{{task_id}}/{action}", "post", "Idempotency-Key")["required"] is False
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert spec["components"]["schemas"][body]["properties"]
        assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "409", "413", "422", "503"}
    assert header("/api/records/{entity}/{record_id}", "delete", "If-Match")["required"] is True
    assert header("/api/records/{entity}/{record_id}", "patch", "If-Match")["required"] is False
    for method in ("post", "patch"):
        path = "/api/records/{entity}" if method == "post" else "/api/records/{entity}/{record_id}"
        assert paths[path][method]["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    assert set(paths["/api/records/{entity}/{record_id}"]["delete"]["responses"]) == {"204", "400", "401", "403", "404", "409", "412", "422", "428"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            errors = {s: r for s, r in operation["responses"].items() if s >= "400"}
            assert "401" in errors and "500" not in errors, (method, path)
            assert all(list(r["content"]) == [PROBLEM] for r in errors.values()), (method, path)
            assert all(r["content"]["application/json"]["schema"] for s, r in operation["responses"].items() if s < "300" and s != "204")


def test_an_action_on_a_task_whose_process_has_ended_is_a_409(compiled, tmp_path):
    """A task row still open while Temporal no longer knows its workflow: a conflict the caller can act on, not a 500."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ended.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    token, digest = new_token()
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        mia = conn.execute(users.insert().values(username="mia", name="Mia", roles=["staff"], api_token_hash=digest,
                                                 created_at=now)).inserted_primary_key[0]
        task = conn.execute(tasks.insert().values(key="ended:task", workflow_id="lead_follow_up/ended", process="lead_follow_up",
                                                  step_id="qualify", title="Qualify", status="open", assignee_id=mia,
                                                  created_at=now)).inserted_primary_key[0]

    async def scenario():
        with DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()) as server:
            app = create_app(engine, compiled, await Client.connect(server.address), secret_key="ended")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tailor") as client:
                return await client.post(f"/api/tasks/{task}/complete", json={"data": {}}, headers={"Authorization": f"Bearer {token}"})

    assert problem(asyncio.run(scenario()), 409)["title"] == "The process this task belongs to has ended."


def test_times_in_answers_carry_their_offset_on_either_database(site, api):
    """The OpenAPI says date-time (RFC 3339, with an offset); SQLite hands back naive times, which are UTC."""
    client, auth = api
    mine = client.get("/api/tasks", headers=auth).json()
    assert [t["id"] for t in mine] == [site[4]]
    assert dt.datetime.fromisoformat(mine[0]["created_at"]).utcoffset() == dt.timedelta(0)
    company = client.get(f"/api/records/company/{site[3]}", headers=auth).json()
    assert dt.datetime.fromisoformat(company["updated_at"]).utcoffset() == dt.timedelta(0)
