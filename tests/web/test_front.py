"""The one layer in front of the app (admin/front.py), as a client meets it: an API request is authenticated before a
byte of its body is read and never gets a session; a page request gets its session; both have the size limit."""
from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.schema import contact_history, metadata as platform, users
from tests.conftest import CRM

LIMIT = 4096


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'front.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    token, digest = new_token()
    portal, portal_digest = new_token()
    with engine.begin() as conn:
        conn.execute(users.insert().values(username="erp", name="ERP", roles=["staff", "sales_manager"], api_token_hash=digest,
                                           created_at=dt.datetime.now(dt.timezone.utc)))
        conn.execute(users.insert().values(username="viewer", name="Viewer", roles=["portal"], api_token_hash=portal_digest,
                                           created_at=dt.datetime.now(dt.timezone.utc)))
        company = records.create_record(conn, compiled, "company", {"name": "Acme", "status": "customer"}, None).id
    app = create_app(engine, compiled, None, secret_key="k", max_body_bytes=LIMIT)
    app.state.portal_token = portal
    return app, engine, token, company


def call(app, path: str, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, dict[str, str], bytes, int]:
    """One POST straight through the ASGI app, its body sent in `chunks`: (status, headers, body, chunks the app read)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "root_path": "", "query_string": b"", "server": ("testserver", 80), "client": ("127.0.0.1", 1),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    read = 0
    out: dict = {"body": b""}

    async def receive():
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return out["status"], out["headers"], out["body"], read


def note(company: int, size: int = 0) -> bytes:
    return json.dumps({"record_id": company, "values": {"direction": "outbound", "subject": "Renewal", "notes": "n" * size}}).encode()


def entries(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(contact_history)).scalar()


URL = "/api/forms/call_note/submissions"


def test_an_api_request_without_a_good_token_is_answered_401_without_its_body_being_read(site):
    app, engine, _, company = site
    for headers in ({}, {"Authorization": "Bearer tl_unknown"}, {"Authorization": "Basic abc"}):
        for body in (note(company), note(company, 10 * LIMIT)):  # within the limit, and over it
            status, answer, content, read = call(app, URL, {**headers, "Content-Type": "application/json", "Idempotency-Key": "a",
                                                            "Content-Length": str(len(body))}, [body])
            assert (status, read) == (401, 0) and answer["www-authenticate"] == "Bearer"
            assert answer["content-type"] == "application/problem+json" and b"nnnn" not in content
    assert entries(engine) == 0


def test_an_authenticated_body_over_the_limit_is_refused_with_413_declared_or_streamed(site):
    app, engine, token, company = site
    big = note(company, 2 * LIMIT)
    base = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": "b"}
    status, answer, content, read = call(app, URL, {**base, "Content-Length": str(len(big))}, [big])
    assert (status, read) == (413, 0)  # declared too long: refused before a byte is read
    assert answer["content-type"] == "application/problem+json" and b"nnnn" not in content
    chunks = [big[i:i + 1024] for i in range(0, len(big), 1024)]
    status, _, _, read = call(app, URL, base, chunks)  # no Content-Length: read until it passes the limit, no further
    assert status == 413 and read == LIMIT // 1024 + 1 < len(chunks)
    assert call(app, URL, {**base, "Content-Length": "lots"}, [big])[0] == 400
    assert entries(engine) == 0
    small = note(company)
    assert call(app, URL, {**base, "Content-Length": str(len(small))}, [small])[0] == 201 and entries(engine) == 1


def test_a_submission_is_refused_403_or_400_before_its_body_is_read(site):
    """Its caller is checked before FastAPI reads the body (routing.ApiRoute, auth.gated): a malformed body changes nothing."""
    app, engine, token, company = site
    bad = b'{"record_id": "not a number", "values": '
    forbidden = {"Authorization": f"Bearer {app.state.portal_token}", "Content-Type": "application/json", "Idempotency-Key": "c",
                 "Content-Length": str(len(bad))}
    status, answer, content, read = call(app, URL, forbidden, [bad])
    assert (status, read) == (403, 0) and json.loads(content)["detail"] == "This needs the 'generate_tasks' permission."
    no_key = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Length": str(len(bad))}
    status, _, content, read = call(app, URL, no_key, [bad])
    assert (status, read) == (400, 0) and json.loads(content)["title"] == "Idempotency-Key required"
    status, _, content, read = call(app, URL, {**no_key, "Idempotency-Key": "k" * 101}, [bad])
    assert (status, read) == (400, 0) and json.loads(content)["title"] == "Idempotency-Key too long"
    status, _, content, _ = call(app, URL, {**no_key, "Idempotency-Key": "d"}, [bad])  # a permitted caller with a key: the body's turn
    assert status == 400 and json.loads(content)["title"] == "Malformed JSON"
    assert entries(engine) == 0


def test_a_page_gets_its_session_and_an_api_request_never_does(site):
    app, _, token, _ = site
    client = TestClient(app)
    page = client.get("/login")
    assert page.status_code == 200 and "tailor_session=" in page.headers["set-cookie"]
    api = client.get("/api/forms", headers={"Authorization": f"Bearer {token}"})  # the page's cookie goes along
    assert api.status_code == 200 and "set-cookie" not in api.headers and "cookie" not in api.headers.get("vary", "").lower()
    # a session cookie is no way into the API
    assert client.get("/api/forms").status_code == 401


def test_a_revoked_token_is_refused_on_the_next_request(site):
    app, engine, token, _ = site
    client = TestClient(app)
    assert client.get("/api/forms", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with engine.begin() as conn:
        conn.execute(users.update().values(api_token_hash=None))
    assert client.get("/api/forms", headers={"Authorization": f"Bearer {token}"}).status_code == 401
