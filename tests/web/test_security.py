"""Security items of the web layer, each as a caller would meet it: authentication before work, size limits,
revocable sessions, no user-name oracle, formula-safe CSV, deep links kept through the login, no 500 on odd ids."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.schema import metadata as platform
from runtime.schema import sessions, users
from tests.conftest import CRM

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'sec.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    token, digest = new_token()
    with engine.begin() as conn:
        for name, roles in [("ann", ["staff"]), ("mia", ["staff", "sales_manager"])]:
            conn.execute(users.insert().values(username=name, name=name.title(), roles=roles, password_hash=FAST.hash(name),
                                               api_token_hash=digest if name == "mia" else None, created_at=now))
        company = records.create_record(conn, compiled, "company", {"name": "=HYPERLINK(\"http://evil.example\",\"x\")",
                                                                    "status": "customer"}, None)
    app = create_app(engine, compiled, None, secret_key="test-secret", max_body_bytes=64 * 1024)
    return app, engine, token, company.id


def csrf(client: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def log_in(client: TestClient, who: str, next_page: str | None = None):
    data = {"csrf_token": csrf(client), "username": who, "password": who}
    if next_page:
        data["next"] = next_page
    return client.post("/login", data=data, follow_redirects=False)


def test_the_api_refuses_a_caller_without_a_token_before_reading_the_body(site):
    app, _, _, _ = site
    client = TestClient(app)
    for body in (b"[1]", json.dumps(["x" * 100] * 20_000).encode()):  # the second is 2 MB: over the limit too
        response = client.post("/api/records/company", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 401, response.text[:200]
        assert response.headers["content-type"] == "application/problem+json"
        assert len(response.content) < 500 and "xxxx" not in response.text
    assert client.post("/api/records/company", json={}, headers={"Authorization": "Bearer tl_wrong"}).status_code == 401


def test_a_body_over_the_limit_is_refused_with_413_and_not_echoed(site):
    app, _, token, _ = site
    client = TestClient(app)
    big = json.dumps({"name": "y" * 100_000})
    response = client.post("/api/records/company", content=big, headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
    assert "yyyy" not in response.text
    # pages have the same limit, answered with a page
    ann = TestClient(app)
    log_in(ann, "ann")
    page = ann.post("/logout", content="csrf_token=" + "z" * 100_000, headers={"content-type": "application/x-www-form-urlencoded"})
    assert page.status_code == 413 and "Too large" in page.text and "zzzz" not in page.text


def test_a_validation_problem_names_the_wrong_part_without_echoing_it(site):
    app, _, token, _ = site
    client = TestClient(app)
    response = client.post("/api/records/company", json=["SECRET-VALUE", 2], headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert "SECRET-VALUE" not in response.text and response.json()["errors"]


def test_logging_out_ends_the_session_on_the_server_even_for_a_copied_cookie(site):
    app, engine, _, _ = site
    client = TestClient(app)
    assert log_in(client, "ann").status_code == 303
    copied = dict(client.cookies)
    assert client.get("/", follow_redirects=False).status_code == 200
    client.post("/logout", data={"csrf_token": csrf(client, "/")}, follow_redirects=False)
    thief = TestClient(app, cookies=copied)
    assert thief.get("/", follow_redirects=False).headers["location"].startswith("/login")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions).where(sessions.c.revoked_at.is_not(None))).scalar() == 1


def test_deactivating_a_user_ends_their_sessions_at_once(site):
    app, engine, _, _ = site
    client = TestClient(app)
    log_in(client, "ann")
    assert client.get("/", follow_redirects=False).status_code == 200
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "ann").values(active=False))
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_an_unknown_user_name_costs_a_password_check_like_a_known_one(site):
    app, _, _, _ = site

    class Counting(PasswordHasher):
        calls = 0

        def verify(self, hash, password):
            Counting.calls += 1
            return super().verify(hash, password)

    app.state.services.hasher = Counting(time_cost=1, memory_cost=1024, parallelism=1)
    client = TestClient(app)
    client.post("/login", data={"csrf_token": csrf(client), "username": "nosuchuser", "password": "x"})
    client.post("/login", data={"csrf_token": csrf(client), "username": "ann", "password": "wrong"})
    assert Counting.calls == 2


def test_exported_cells_that_a_spreadsheet_would_run_are_neutralised(site):
    app, _, _, _ = site
    client = TestClient(app)
    log_in(client, "mia")
    response = client.get("/directory/company/export.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[1][1].startswith("'=HYPERLINK")


def test_a_deep_link_survives_the_login(site):
    app, _, _, company = site
    client = TestClient(app)
    first = client.get(f"/records/company/{company}", follow_redirects=False)
    assert first.headers["location"] == f"/login?next=/records/company/{company}"
    page = client.get(first.headers["location"])
    assert f'name="next" value="/records/company/{company}"' in page.text
    done = log_in(client, "ann", f"/records/company/{company}")
    assert done.headers["location"] == f"/records/company/{company}"
    assert log_in(TestClient(app), "ann", "//evil.example/").headers["location"] == "/"


@pytest.mark.parametrize("path", ["/records/company/{big}", "/tasks/{big}", "/projects/{big}", "/records/company/-1",
                                  "/records/company/abc", "/records/nosuch/1", "/directory/nosuch"])
def test_ids_no_database_holds_answer_not_found_on_a_styled_page(site, path):
    app, _, _, _ = site
    client = TestClient(app)
    log_in(client, "mia")
    response = client.get(path.format(big=2**64), follow_redirects=False)
    assert response.status_code == 404, response.text[:200]
    assert "Back to My work" in response.text and "<h1" in response.text


def test_api_ids_no_database_holds_answer_a_404_problem(site):
    app, _, token, _ = site
    client = TestClient(app)
    response = client.get(f"/api/records/company/{2**64}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


def test_a_page_number_that_is_not_a_number_shows_the_first_page(site):
    app, _, _, _ = site
    client = TestClient(app)
    log_in(client, "ann")
    response = client.get("/directory/company?page=abc")
    assert response.status_code == 200 and "invalid literal" not in response.text and "HYPERLINK" in response.text


def test_a_refused_page_says_in_words_what_the_role_does_not_allow(site):
    app, _, _, _ = site
    client = TestClient(app)
    log_in(client, "ann")  # staff: no export permission
    page = client.get("/directory/company/export.csv")
    assert page.status_code == 403
    assert "Your role does not let you export records or write mail merges" in page.text and "(export)" not in page.text
