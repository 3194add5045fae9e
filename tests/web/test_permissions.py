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
from admin.web.routes import notifications as notification_routes
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
    ("POST", "/profile/language"): Rule(ANY_SESSION, "/profile/language", {"locale": "xx"}),
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
    # the team view is for group managers and task monitors: in this site nobody manages a group, so it is monitor_tasks
    ("GET", "/work/team"): Rule("monitor_tasks", "/work/team"),
    ("POST", "/work/team/reassign"): Rule("monitor_tasks", "/work/team/reassign", {"to_user": ""}),
    ("POST", "/alerts/{alert_id}/acknowledge"): Rule("access", "/alerts/{alert}/acknowledge", {}),
    # projects: members (whatever their roles) and staff with project_access; the matrix's project has the project_team user on it
    ("GET", "/projects"): Rule("access", "/projects?show=all"),
    ("GET", "/projects/{project_id}"): Rule("project_access", "/projects/{project}"),
    ("GET", "/projects/{project_id}/people"): Rule("project_access", "/projects/{project}/people?q=a"),
    # nobody with that number is on the team: a permitted caller is told so (404, 409) and the team stays as it is
    ("GET", "/projects/{project_id}/members/{member_id}/remove"): Rule("project_access", "/projects/{project}/members/999999/remove"),
    ("POST", "/projects/{project_id}/members/{member_id}/remove"): Rule("project_access", "/projects/{project}/members/999999/remove", {}),
    ("GET", "/records/{entity}/{record_id}/start/{process}"): Rule("generate_tasks", "/records/company/{company}/start/onboarding"),
    # an unknown record: a permitted start finds nothing to start (404), so no process is enqueued
    ("POST", "/records/{entity}/{record_id}/start/{process}"): Rule("generate_tasks", "/records/company/999999/start/onboarding",
                                                                    {"request_id": "matrix"}),
    ("GET", "/portal"): Rule("portal", "/portal"),
    ("GET", "/portal/forms/{name}"): Rule("portal", "/portal/forms/support_request"),
    ("POST", "/portal/forms/{name}"): Rule("portal", "/portal/forms/support_request", {}),
    # the company's own request: a permitted reply is refused as empty (422) and nothing is written
    ("GET", "/portal/requests/{request_id}"): Rule("portal", "/portal/requests/{request}"),
    ("POST", "/portal/requests/{request_id}/reply"): Rule("portal", "/portal/requests/{request}/reply", {"text": ""}),
    ("POST", "/tasks/{task_id}/reply"): Rule("manage_own_tasks", "/tasks/{task}/reply", {"text": "", "visibility": "public"}),
    ("POST", "/records/{entity}/{record_id}/reply"): Rule("edit_records", "/records/support_request/{request}/reply",
                                                          {"text": "", "visibility": "internal"}),
    ("GET", "/directory/{entity}"): Rule("access", "/directory/company"),
    ("GET", "/lookup/{entity}"): Rule("access", "/lookup/company?q=a"),
    ("GET", "/search"): Rule("access", "/search?q=acme"),
    # views are per user: a permitted caller saves one, and opening or deleting view 1 may be someone else's (404)
    ("POST", "/directory/{entity}/views"): Rule("access", "/directory/company/views", {"name": "Mine", "query": "q=a"}),
    ("GET", "/directory/{entity}/views/{view_id}"): Rule("access", "/directory/company/views/1"),
    ("POST", "/directory/{entity}/views/{view_id}/delete"): Rule("access", "/directory/company/views/1/delete"),
    ("GET", "/alerts"): Rule("access", "/alerts"),
    ("POST", "/projects/{project_id}/members"): Rule("project_access", "/projects/{project}/members", {"user_id": "999999"}),
    ("GET", "/api/projects"): Rule("project_access", "/api/projects"),
    ("GET", "/api/projects/{project_id}"): Rule("project_access", "/api/projects/{project}"),
    # nobody with that number: a permitted caller is refused in words (422, 404) and the team stays as it is
    ("POST", "/api/projects/{project_id}/members"): Rule("project_access", "/api/projects/{project}/members", {"user_id": 999999}),
    ("DELETE", "/api/projects/{project_id}/members/{user_id}"): Rule("project_access", "/api/projects/{project}/members/999999"),
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
    # the console: changes name a user or person that does not exist, so a permitted caller gets 404/422 and nobody changes
    ("GET", "/admin"): Rule("admin", "/admin"),
    ("GET", "/admin/users"): Rule("admin", "/admin/users?status=all"),
    ("GET", "/admin/users/new"): Rule("admin", "/admin/users/new"),
    ("POST", "/admin/users"): Rule("admin", "/admin/users", {"username": ""}),
    ("GET", "/admin/users/{user_id}"): Rule("admin", "/admin/users/99999"),
    ("POST", "/admin/users/{user_id}"): Rule("admin", "/admin/users/99999", {"name": "X", "roles": "staff"}),
    ("POST", "/admin/users/{user_id}/language"): Rule("admin", "/admin/users/99999/language", {"locale": "de"}),
    ("POST", "/admin/users/{user_id}/deactivate"): Rule("admin", "/admin/users/99999/deactivate", {"reason": "matrix"}),
    ("POST", "/admin/users/{user_id}/reactivate"): Rule("admin", "/admin/users/99999/reactivate", {}),
    ("POST", "/admin/users/{user_id}/reset-password"): Rule("admin", "/admin/users/99999/reset-password", {}),
    ("POST", "/admin/users/{user_id}/token"): Rule("admin", "/admin/users/99999/token", {}),
    ("POST", "/admin/users/{user_id}/token/revoke"): Rule("admin", "/admin/users/99999/token/revoke", {}),
    ("GET", "/admin/groups"): Rule("admin", "/admin/groups"),
    ("GET", "/admin/groups/{name}"): Rule("admin", "/admin/groups/sales"),
    ("POST", "/admin/groups/{name}/members"): Rule("admin", "/admin/groups/sales/members", {"user_id": "99999"}),
    ("POST", "/admin/groups/{name}/members/{user_id}/remove"): Rule("admin", "/admin/groups/sales/members/99999/remove", {}),
    ("POST", "/admin/people/{person_id}/access"): Rule("admin", "/admin/people/99999/access", {"kind": "portal"}),
    ("GET", "/admin/log"): Rule("admin", "/admin/log"),
    # configuration: this app follows no releases (no data folder), so a permitted caller gets a worded 503, nothing changes
    ("GET", "/admin/draft"): Rule("admin", "/admin/draft"),
    ("POST", "/admin/draft/files"): Rule("admin", "/admin/draft/files", {"path": "x.yaml", "text": ""}),
    ("POST", "/admin/draft/files/delete"): Rule("admin", "/admin/draft/files/delete", {"path": "x.yaml"}),
    ("POST", "/admin/draft/discard"): Rule("admin", "/admin/draft/discard", {}),
    ("GET", "/admin/draft/impact"): Rule("admin", "/admin/draft/impact"),
    ("POST", "/admin/draft/activate"): Rule("admin", "/admin/draft/activate", {"reason": ""}),
    ("GET", "/admin/releases"): Rule("admin", "/admin/releases"),
    ("GET", "/admin/releases/diff"): Rule("admin", "/admin/releases/diff?a=1&b=2"),
    ("POST", "/admin/releases/{release_id}/activate"): Rule("admin", "/admin/releases/99999/activate", {}),
    ("GET", "/admin/releases/{release_id}/local.zip"): Rule("admin", "/admin/releases/99999/local.zip"),
    ("GET", "/admin/releases/{release_id}/running"): Rule("admin", "/admin/releases/99999/running"),
    ("POST", "/admin/releases/{release_id}/running"): Rule("admin", "/admin/releases/99999/running", {}),
    ("GET", "/notifications"): Rule(ANY_SESSION, "/notifications"),
    ("GET", "/notifications/count"): Rule(ANY_SESSION, "/notifications/count"),
    ("GET", "/notifications/stream"): Rule(ANY_SESSION, "/notifications/stream"),  # ends at once here (short_streams)
    # notification 1 is someone else's for all but one caller: a permitted caller may see 404
    ("GET", "/notifications/{notification_id}/open"): Rule(ANY_SESSION, "/notifications/1/open"),
    ("POST", "/notifications/{notification_id}/read"): Rule(ANY_SESSION, "/notifications/1/read"),
    ("POST", "/notifications/read-all"): Rule(ANY_SESSION, "/notifications/read-all"),
    # the structured editors, the process diagrams and the preview: the same (no data folder here: a worded 503)
    ("GET", "/admin/editors"): Rule("admin", "/admin/editors"),
    ("GET", "/admin/editors/entities/{entity}"): Rule("admin", "/admin/editors/entities/company"),
    ("GET", "/admin/editors/entities/{entity}/fields"): Rule("admin", "/admin/editors/entities/company/fields?group=healthcare"),
    ("POST", "/admin/editors/entities/{entity}/fields"): Rule("admin", "/admin/editors/entities/company/fields",
                                                             {"name": "x", "type": "string", "op": "preview"}),
    ("GET", "/admin/editors/entities/{entity}/record-fields"): Rule("admin", "/admin/editors/entities/company/record-fields"),
    ("POST", "/admin/editors/entities/{entity}/record-fields"): Rule("admin", "/admin/editors/entities/company/record-fields",
                                                                    {"max": "5", "op": "preview"}),
    ("GET", "/admin/editors/entities/{entity}/groups/{group}"): Rule("admin", "/admin/editors/entities/company/groups/healthcare"),
    ("POST", "/admin/editors/entities/{entity}/groups/{group}"): Rule("admin", "/admin/editors/entities/company/groups/healthcare",
                                                                     {"when": "true", "op": "preview"}),
    ("GET", "/admin/editors/forms/new"): Rule("admin", "/admin/editors/forms/new"),
    ("GET", "/admin/editors/forms/{name}"): Rule("admin", "/admin/editors/forms/lead_enquiry"),
    ("POST", "/admin/editors/forms/{name}"): Rule("admin", "/admin/editors/forms/new", {"op": "add-field:0"}),
    ("GET", "/admin/editors/processes/{name}"): Rule("admin", "/admin/editors/processes/lead_follow_up"),
    ("GET", "/admin/editors/processes/{name}/steps/new"): Rule("admin", "/admin/editors/processes/lead_follow_up/steps/new?after=qualify"),
    ("GET", "/admin/editors/processes/{name}/steps/{step_id}"): Rule("admin", "/admin/editors/processes/lead_follow_up/steps/qualify"),
    ("POST", "/admin/editors/processes/{name}/steps"): Rule("admin", "/admin/editors/processes/lead_follow_up/steps", {"op": "preview"}),
    ("GET", "/admin/processes/{name}"): Rule("admin", "/admin/processes/lead_follow_up"),
    ("GET", "/admin/preview"): Rule("admin", "/admin/preview?show=form:call_note&role=staff"),
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
        request = records.create_record(conn, compiled, "support_request", {"company": company, "summary": "Printing", "description": "Hangs",
                                                                             "category": "fault", "severity": "high"}, None).id
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
    return Site(app, {"company": company, "task": task, "alert": alert, "project": project, "request": request}, tokens)


@pytest.fixture(autouse=True)
def short_streams(monkeypatch):
    """The notifications stream stays open for minutes; here it ends at once, so a permitted caller's request returns."""
    monkeypatch.setattr(notification_routes, "KEEP_OPEN", (0.0, 0.0))


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
