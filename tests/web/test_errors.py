"""Error pages as a person meets them: styled, saying what happened, with a way back; never a traceback."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime.schema import metadata as platform
from runtime.schema import users
from tests.conftest import CRM

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'errors.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    with engine.begin() as conn:
        for name, roles in [("ann", ["staff"]), ("pat", ["portal"])]:
            conn.execute(users.insert().values(username=name, name=name.title(), roles=roles, password_hash=FAST.hash(name),
                                               created_at=dt.datetime.now(dt.UTC)))
    return create_app(engine, compiled, None, secret_key="errors-secret", max_body_bytes=4096), engine


def logged_in(app, who: str) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"csrf_token": csrf, "username": who, "password": who})
    return client


def styled(html: str) -> bool:
    return '<link rel="stylesheet" href="/static/tailor.css">' in html and 'class="card error-page"' in html


@pytest.mark.parametrize(("who", "method", "path", "status", "heading", "back"), [
    ("ann", "GET", "/records/company/12345", 404, "Not found", "Back to My work"),
    ("ann", "GET", "/no/such/page", 404, "Not found", "Back to My work"),
    ("ann", "PUT", "/alerts", 405, "Not possible here", "Back to My work"),
    ("pat", "GET", "/directory/company", 403, "Not allowed", "Back to your requests"),
    (None, "GET", "/no/such/page", 404, "Not found", "Log in"),
])
def test_an_error_page_says_what_happened_and_offers_a_way_back(site, who, method, path, status, heading, back):
    app, _ = site
    client = logged_in(app, who) if who else TestClient(app)
    response = client.request(method, path)
    assert response.status_code == status
    assert styled(response.text)
    assert re.search(rf'<h1 id="err"><span class="visually-hidden">Error {status}: </span>{heading}</h1>', response.text)
    assert re.search(rf'<a class="button" href="[^"]+">{back}</a>', response.text)


def test_a_request_too_large_gets_a_styled_413(site):
    app, _ = site
    client = logged_in(app, "ann")
    response = client.post("/profile", data={"csrf_token": "x", "time_zone": "x" * 10_000})
    assert response.status_code == 413 and styled(response.text) and "larger than this server accepts" in response.text


def test_an_unexpected_failure_is_a_500_page_with_a_reference_and_no_traceback(site, caplog):
    app, engine = site
    client = logged_in(app, "ann")
    with engine.begin() as conn:  # the home page's query now fails inside the database
        conn.exec_driver_sql("DROP TABLE alerts")
    response = client.get("/")
    assert response.status_code == 500 and styled(response.text)
    assert "Something went wrong" in response.text
    reference = re.search(r"Reference: <code>([0-9a-f]{8})</code>", response.text).group(1)
    for leak in ("Traceback", "sqlalchemy", "OperationalError", "no such table", "alerts"):
        assert leak not in response.text.split("<main>")[1], leak
    assert any(reference in r.getMessage() and r.exc_info for r in caplog.records)  # the log has the why, under the same reference
    assert 'href="/">Back to My work</a>' in response.text


def test_the_api_answers_an_unexpected_failure_with_a_problem_document(site):
    app, engine = site
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE tasks")
    token_client = TestClient(app, raise_server_exceptions=False)
    token, digest = new_token()
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "ann").values(api_token_hash=digest))
    response = token_client.get("/api/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500 and response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text and "tasks" not in response.json()["detail"]
