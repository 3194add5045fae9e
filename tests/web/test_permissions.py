"""The permission matrix: every role of the CRM pack against every route of the app.

Each cell sends one request as one kind of caller and checks only who is let in:
nobody logged in is sent to the login page (pages) or gets a 401 problem (API); a
role without the route's permission gets 403; a role with it gets past the check.
The ids and bodies are real where that costs nothing and dummies otherwise, so a
permitted caller may still see 404/409/422: that is not this test's business.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.schema import alerts, group_members, metadata as platform, project_members, projects, tasks, users
from tests.conftest import CRM

MODEL = load([CRM])  # read at collection: the roles are parameters

ANONYMOUS, NO_ROLES = "no login", "no roles"
CALLERS = [ANONYMOUS, NO_ROLES, *MODEL.roles]

# Open to anyone by design; anything else that answers without a login is a hole.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/health"), ("GET", "/api/openapi.json"), ("MOUNT", "/static")}
ANY_SESSION = None  # a route every logged-in user may use, whatever their roles


@dataclass(frozen=True)
class Id:
    """In a JSON body: the id of the record the `site` fixture made under this name."""
    name: str


@dataclass(frozen=True)
class Rule:
    permission: str | None
    url: str                                  # formatted with the ids the `site` fixture made
    body: dict | None = None                  # pages: form fields besides csrf_token; API: JSON
    headers: dict = field(default_factory=dict)
    hidden: bool = False                      # callers without 'access' (a customer's people) get 404: it is not there for them


# (method, route path) -> what it needs and one concrete request to it.
ROUTES: dict[tuple[str, str], Rule] = {
    ("POST", "/logout"): Rule(ANY_SESSION, "/logout"),
    ("GET", "/profile"): Rule(ANY_SESSION, "/profile"),
    ("POST", "/profile"): Rule(ANY_SESSION, "/profile", {"time_zone": "Europe/Paris"}),
    ("POST", "/profile/password"): Rule(ANY_SESSION, "/profile/password", {"current_password": "wrong"}),
    ("GET", "/"): Rule("access", "/"),
    ("GET", "/forms"): Rule("access", "/forms"),
    ("GET", "/forms/{name}"): Rule("generate_tasks", "/forms/call_note?record={company}"),
    ("POST", "/forms/{name}"): Rule("generate_tasks", "/forms/call_note?record={company}", {}),
    ("GET", "/tasks/{task_id}"): Rule("manage_own_tasks", "/tasks/{task}"),
    ("POST", "/tasks/{task_id}/complete"): Rule("manage_own_tasks", "/tasks/{task}/complete", {}),
    ("POST", "/tasks/{task_id}/decide"): Rule("approve_tasks", "/tasks/{task}/decide", {"decision": "approve"}),
    ("POST", "/tasks/{task_id}/comment"): Rule("manage_own_tasks", "/tasks/{task}/comment", {}),
    ("POST", "/tasks/{task_id}/reassign"): Rule("monitor_tasks", "/tasks/{task}/reassign", {}),
    ("POST", "/tasks/{task_id}/claim"): Rule("manage_own_tasks", "/tasks/{task}/claim", {}),
    ("POST", "/alerts/{alert_id}/acknowledge"): Rule("access", "/alerts/{alert}/acknowledge", {}),
    ("GET", "/projects/{project_id}"): Rule("project_access", "/projects/{project}"),
    ("GET", "/portal"): Rule("portal", "/portal"),
    ("GET", "/portal/forms/{name}"): Rule("portal", "/portal/forms/support_request"),
    ("POST", "/portal/forms/{name}"): Rule("portal", "/portal/forms/support_request", {}),
    ("GET", "/directory/{entity}"): Rule("access", "/directory/company"),
    ("GET", "/lookup/{entity}"): Rule("access", "/lookup/company?q=a"),
    ("GET", "/search"): Rule("access", "/search?q=acme"),
    # views are per user: a permitted caller saves one, and opening or deleting view 1 may be someone else's (404)
    ("POST", "/directory/{entity}/views"): Rule("access", "/directory/company/views", {"name": "Mine", "query": "q=a"}),
    ("GET", "/directory/{entity}/views/{view_id}"): Rule("access", "/directory/company/views/1"),
    ("POST", "/directory/{entity}/views/{view_id}/delete"): Rule("access", "/directory/company/views/1/delete"),
    ("GET", "/alerts"): Rule("access", "/alerts"),
    ("POST", "/projects/{project_id}/members"): Rule("project_access", "/projects/{project}/members", {"username": "staff"}),
    ("GET", "/api/projects"): Rule("project_access", "/api/projects"),
    ("GET", "/directory/{entity}/export.csv"): Rule("export", "/directory/company/export.csv"),
    ("POST", "/directory/{entity}/merge"): Rule("export", "/directory/company/merge", {"template": "Dear {{ record.title }}"}),
    ("GET", "/records/{entity}/{record_id}"): Rule("access", "/records/company/{company}"),
    ("POST", "/records/{entity}/{record_id}/fields"): Rule("add_record_fields", "/records/company/{company}/fields", {}),
    ("POST", "/records/{entity}/{record_id}/fields/{name}/remove"): Rule("add_record_fields", "/records/company/{company}/fields/gone/remove",
                                                                       {"row_version": "1"}),
    ("GET", "/records/{entity}/new"): Rule("edit_records", "/records/person/new?company={company}"),
    ("POST", "/records/{entity}/new"): Rule("edit_records", "/records/company/new", {}),
    ("GET", "/records/{entity}/{record_id}/edit"): Rule("edit_records", "/records/company/{company}/edit"),
    ("POST", "/records/{entity}/{record_id}/edit"): Rule("edit_records", "/records/company/{company}/edit", {"row_version": "1"}),
    ("GET", "/records/{entity}/groups"): Rule("edit_records", "/records/company/groups?industry=healthcare"),
    ("GET", "/records/{entity}/pick/{field}"): Rule("edit_records", "/records/opportunity/pick/contact?company={company}&q=a"),
    # every account is linked to the company, so a permitted delete is refused (409) and the company stays
    ("GET", "/records/{entity}/{record_id}/delete"): Rule("delete_records", "/records/company/{company}/delete"),
    ("POST", "/records/{entity}/{record_id}/delete"): Rule("delete_records", "/records/company/{company}/delete", {"row_version": "1"}),
    ("GET", "/board/{entity}"): Rule("access", "/board/opportunity"),
    # no opportunity exists here, so a permitted move finds nothing (404) and the board stays as it is
    ("POST", "/board/{entity}/{record_id}/move"): Rule("edit_records", "/board/opportunity/1/move", {"row_version": "1", "stage": "won"}),
    ("GET", "/api/forms"): Rule("access", "/api/forms"),
    ("GET", "/api/forms/{name}/schema"): Rule("access", "/api/forms/lead_enquiry/schema"),
    ("GET", "/api/forms/{name}/ui-schema"): Rule("access", "/api/forms/lead_enquiry/ui-schema?for=jsonforms"),
    ("POST", "/api/forms/{name}/submissions"): Rule("generate_tasks", "/api/forms/lead_enquiry/submissions",
                                                    {"record_id": Id("company"), "values": {}}, {"Idempotency-Key": "matrix"}),
    ("GET", "/api/records/{entity}"): Rule("access", "/api/records/company"),
    ("POST", "/api/records/{entity}"): Rule("edit_records", "/api/records/company", {}),
    ("GET", "/api/records/{entity}/{record_id}"): Rule("access", "/api/records/company/{company}"),
    ("PATCH", "/api/records/{entity}/{record_id}"): Rule("edit_records", "/api/records/company/{company}", {"status": "bogus"}),
    ("DELETE", "/api/records/{entity}/{record_id}"): Rule("delete_records", "/api/records/company/{company}", headers={"If-Match": "1"}),
    ("GET", "/api/tasks"): Rule("manage_own_tasks", "/api/tasks"),
    ("POST", "/api/tasks/{task_id}/complete"): Rule("manage_own_tasks", "/api/tasks/{task}/complete", {}),
    ("POST", "/api/tasks/{task_id}/approve"): Rule("approve_tasks", "/api/tasks/{task}/approve", {"approve": True}),
    ("POST", "/api/tasks/{task_id}/reassign"): Rule("monitor_tasks", "/api/tasks/{task}/reassign", {"to_user": 1}),
    ("GET", "/api/alerts"): Rule("access", "/api/alerts"),
    # reports: staff only, and to anyone else there is nothing there; a report or dashboard not for the caller's roles is 404
    ("GET", "/reports"): Rule("access", "/reports", hidden=True),
    ("GET", "/reports/{name}"): Rule("access", "/reports/sla_by_process", hidden=True),
    ("GET", "/reports/{name}/export.csv"): Rule("export", "/reports/sla_by_process/export.csv", hidden=True),
    ("GET", "/dashboards"): Rule("access", "/dashboards", hidden=True),
    ("GET", "/dashboards/{name}"): Rule("access", "/dashboards/management", hidden=True),
    ("GET", "/api/reports"): Rule("access", "/api/reports", hidden=True),
    ("GET", "/api/reports/{name}"): Rule("access", "/api/reports/sla_by_process", hidden=True),
}

# (caller, method, route path) -> why that cell is a known bug in admin/; strict, so a fix shows up.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}  # cells that fail because of a known bug, with the reason


def may(caller: str, permission: str | None) -> bool:
    """What the definitions say, independently of admin/access.py: the union of the roles' permissions, admin implies all."""
    granted = set(MODEL.roles[caller].permissions) if caller in MODEL.roles else set()
    return permission is ANY_SESSION or permission in granted or "admin" in granted


def routes_of(app) -> set[tuple[str, str]]:
    """(method, path) of every route, included routers flattened with their prefixes; a mount is one entry."""
    found = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            found.add(("MOUNT", route.path))
        else:
            found |= {(method, route.path) for method in route.methods - {"HEAD"}}
    return found


def cells() -> list:
    """One parameter set per caller and route, named so a failing cell says which it is."""
    return [pytest.param(caller, method, path, id=f"{caller} {method} {path}",
                         marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[caller, method, path])]
                         if (caller, method, path) in KNOWN_BUGS else [])
            for caller in CALLERS for (method, path) in ROUTES]


# -- the app, its users and their sessions: one of each per module ----------------------

def username(caller: str) -> str:
    return "nobody" if caller == NO_ROLES else caller


class Site:
    """One app on SQLite with a user per caller; sessions and tokens made once and reused."""

    def __init__(self, app, ids: dict, tokens: dict):
        self.app, self.ids, self.tokens = app, ids, tokens
        self.clients: dict[str, TestClient] = {}

    def log_in(self, caller: str) -> TestClient:
        client = TestClient(self.app)
        if caller != ANONYMOUS:
            response = client.post("/login", data={"csrf_token": csrf_token(client), "username": username(caller),
                                                   "password": username(caller)}, follow_redirects=False)
            assert response.status_code == 303, f"{caller} could not log in: {response.status_code}"
        return client

    def session(self, caller: str) -> TestClient:
        if caller not in self.clients:
            self.clients[caller] = self.log_in(caller)
        return self.clients[caller]

    def send(self, client: TestClient, caller: str, method: str, rule: Rule):
        url = rule.url.format(**self.ids)
        if url.startswith("/api/"):
            headers = dict(rule.headers)
            if caller != ANONYMOUS:
                headers["Authorization"] = f"Bearer {self.tokens[caller]}"
            body = {k: self.ids[v.name] if isinstance(v, Id) else v for k, v in (rule.body or {}).items()}
            return client.request(method, url, headers=headers, json=body if method != "GET" else None)
        if method == "GET":
            return client.get(url, follow_redirects=False)
        return client.request(method, url, data={"csrf_token": csrf_token(client), **(rule.body or {})}, follow_redirects=False)


def csrf_token(client: TestClient) -> str:
    """The session's CSRF token, from a page every session may open (whatever its roles)."""
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(MODEL)


@pytest.fixture(scope="module")
def site(compiled, tmp_path_factory):
    engine = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'matrix.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # fast: the app verifies with the hash's own parameters
    tokens = {}
    with engine.begin() as conn:
        company = records.create_record(conn, compiled, "company", {"name": "Acme", "status": "customer"}, None).id
        user_ids = []
        for caller in CALLERS[1:]:
            token, digest = new_token()
            tokens[caller] = token
            # every account is linked to a company, so the portal's own record rule (an unlinked portal
            # account sees nothing) does not hide what the role permission decides
            user_ids.append(conn.execute(users.insert().values(
                username=username(caller), name=caller.title(), roles=[] if caller == NO_ROLES else [caller], company_id=company,
                password_hash=hasher.hash(username(caller)), api_token_hash=digest, created_at=now)).inserted_primary_key[0])
        # an open task anyone may take and an alert sent to everyone, so record rules do not answer first
        task = conn.execute(tasks.insert().values(key="matrix:step", workflow_id="matrix", process="matrix", step_id="step",
                                                  title="Call back", group_name="sales", status="open", created_at=now)).inserted_primary_key[0]
        alert = conn.execute(alerts.insert().values(key="matrix:alert", task_id=task, level=1, recipients=user_ids,
                                                    message="Late", raised_at=now)).inserted_primary_key[0]
        conn.execute(group_members.insert(), [{"group_name": "sales", "user_id": uid} for uid in user_ids])
        # only the customer's project team is on the project: staff see it through the role's project_access
        project = conn.execute(projects.insert().values(key="matrix:project", title="Roll-out", entity="company", record_id=company,
                                                        created_at=now)).inserted_primary_key[0]
        conn.execute(project_members.insert().values(project_id=project, user_id=user_ids[CALLERS[1:].index("project_team")]))
    app = create_app(engine, compiled, None, secret_key="matrix-secret")
    return Site(app, {"company": company, "task": task, "alert": alert, "project": project}, tokens)


# -- the tests --------------------------------------------------------------------------

def test_only_login_health_openapi_and_static_files_are_public(site):
    assert {r for r in routes_of(site.app) if r not in ROUTES} == PUBLIC
    anonymous = TestClient(site.app)
    assert [anonymous.get(p).status_code for p in ("/login", "/health", "/api/openapi.json", "/static/tailor.css")] == [200] * 4


def test_the_matrix_names_every_route_and_only_real_ones(site):
    routes = routes_of(site.app)
    assert set(ROUTES) - routes == set(), "entries for routes that no longer exist"
    assert routes - PUBLIC - set(ROUTES) == set(), "routes without a permission entry: add them to ROUTES"


def test_every_permission_in_the_matrix_is_one_some_role_grants():
    granted = {p for role in MODEL.roles.values() for p in role.permissions}
    assert {r.permission for r in ROUTES.values()} - {ANY_SESSION} <= granted


@pytest.mark.parametrize("role", list(MODEL.roles))
def test_every_role_lands_on_a_page_it_may_open(site, role):
    client = TestClient(site.app)
    response = client.post("/login", data={"csrf_token": csrf_token(client), "username": role, "password": role}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get(response.headers["location"], follow_redirects=False).status_code == 200, response.headers["location"]


def test_logging_in_needs_the_csrf_token_even_without_a_session(site):
    fresh = TestClient(site.app)
    assert fresh.post("/login", data={"username": "staff", "password": "staff"}, follow_redirects=False).status_code == 403


@pytest.mark.parametrize(("caller", "method", "path"), cells())
def test_permission_matrix(site, caller, method, path):
    rule = ROUTES[(method, path)]
    api = path.startswith("/api/")
    # logging out ends the session, so it gets a session of its own
    client = site.log_in(caller) if (method, path) == ("POST", "/logout") else site.session(caller)
    response = site.send(client, caller, method, rule)
    status, kind = response.status_code, response.headers.get("content-type", "")
    where = urlsplit(response.headers.get("location", ""))

    if caller == ANONYMOUS:
        if api:
            assert (status, kind) == (401, "application/problem+json"), response.text
        else:
            assert status == 303 and where.path == "/login", (status, response.headers.get("location"))
            if (method, path) != ("POST", "/logout"):
                assert where.query == f"next={urlsplit(rule.url.format(**site.ids)).path}"
    elif rule.hidden and not may(caller, "access"):
        assert status == 404 and kind.startswith("application/problem+json" if api else "text/html"), (status, response.text[:300])
    elif not may(caller, rule.permission):
        if api:
            assert (status, kind) == (403, "application/problem+json"), response.text
        else:
            assert status == 403 and kind.startswith("text/html"), (status, response.text[:300])
    else:
        assert status not in (401, 403), (status, response.text[:300])
        assert not (status in (302, 303, 307) and where.path == "/login" and (method, path) != ("POST", "/logout")), "sent to log in"
        assert status != 500, response.text[:300]
        if (method, path) == ("POST", "/logout"):
            assert status == 303 and where.path == "/login"
            assert urlsplit(client.get("/", follow_redirects=False).headers.get("location", "")).path == "/login", "still logged in"
