"""The project pages without a browser: the list, a project's page and who may open it, building the team with the
picker, members seeing the project's tasks, and starting a process with its inputs from a record's page."""
from __future__ import annotations

import datetime as dt
import html
import re

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime import tasks as task_service
from runtime.schema import alerts, metadata as platform, process_starts, project_members, projects, tasks, users
from tests.conftest import CRM, PackWriter

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

# A process started by hand on a company, with inputs and a project; a role that may look but start nothing.
SURVEY = {
    "processes/site_survey.yaml": """
        kind: process
        name: site_survey
        label: Site survey
        description: Survey the customer's site before an installation.
        entity: company
        triggers:
          - manual: true
        inputs:
          visit_on: {type: date, required: true, label: Visit on}
          rooms: {type: integer, min: 1, max: 50, label: Rooms to survey}
          surveyor: {type: user, label: Surveyor}
        project:
          title: "Site survey at {{ record.name }}"
          manager: user:pam
        steps:
          - id: survey
            title: "Survey {{ record.name }}"
            assign: project_manager
            due: 3 days
    """,
    "roles.yaml": """
        kind: role
        name: viewer
        description: Looks at records, starts nothing.
        permissions: [access]
    """,
}
PEOPLE = [("pam", "Pam Projects", ["staff", "project_manager"], None), ("ann", "Ann Sales", ["staff"], None),
          ("anna", "Anna Bell", ["staff"], None), ("mia", "Mia Manager", ["staff", "sales_manager"], None),
          ("sue", "Sue Support", ["staff"], None), ("vic", "Vic Viewer", ["viewer"], None), ("gone", "Gone Away", ["staff"], None),
          ("jo", "Jo Acme", ["project_team"], "acme"), ("gil", "Gil Globex", ["project_team"], "globex"),
          ("jane", "Jane Acme", ["portal"], "acme")]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    survey = PackWriter(tmp_path_factory.mktemp("packs")).write("survey", SURVEY, extends="crm: '>=1.0'")
    return compile_model(load([CRM, survey]))


class Site:
    """The app on its own SQLite file: Acme and Globex, the people above, a project on Acme run by Pam with a late,
    an upcoming, a done task and an alert."""

    def __init__(self, compiled, engine: sa.Engine):
        self.compiled, self.engine = compiled, engine
        platform.create_all(engine)
        compiled.metadata.create_all(engine)
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        with engine.begin() as conn:
            self.acme = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer"}, None).id
            self.globex = records.create_record(conn, compiled, "company", {"name": "Globex", "status": "customer"}, None).id
            self.request = records.create_record(conn, compiled, "support_request",
                                                 {"company": self.acme, "summary": "Printer", "description": "It jams."}, None).id
            self.users = {u: conn.execute(users.insert().values(
                username=u, name=name, roles=roles, password_hash=hasher.hash(u), active=u != "gone", created_at=NOW,
                company_id={"acme": self.acme, "globex": self.globex}.get(company))).inserted_primary_key[0] for u, name, roles, company in PEOPLE}
            self.project = conn.execute(projects.insert().values(key="onboarding/acme", title="Onboarding Acme Health", entity="company",
                                                                 record_id=self.acme, manager_id=self.users["pam"], status="open",
                                                                 created_at=NOW - dt.timedelta(days=2))).inserted_primary_key[0]

            def task(step: str, title: str, status: str, due: dt.datetime | None, who: str = "pam") -> int:
                return conn.execute(tasks.insert().values(
                    key=f"onboarding/acme:{step}", workflow_id="onboarding/acme", process="onboarding", step_id=step, title=title,
                    entity="company", record_id=self.acme, project_id=self.project, assignee_id=self.users[who], status=status, due_at=due,
                    created_at=NOW - dt.timedelta(days=1), completed_at=NOW - dt.timedelta(hours=5) if status == "done" else None)
                ).inserted_primary_key[0]

            self.late = task("kickoff", "Hold the kick-off", "open", NOW - dt.timedelta(hours=3))
            self.upcoming = task("deliver", "Deliver the products", "open", NOW + dt.timedelta(days=3), "anna")
            self.done = task("account_setup", "Open an account", "done", NOW - dt.timedelta(days=1))
            conn.execute(alerts.insert().values(key="a1", task_id=self.late, level=1, recipients=[self.users["pam"]], project_id=self.project,
                                                message="Hold the kick-off was due this morning.", raised_at=NOW - dt.timedelta(hours=1)))
            conn.execute(process_starts.delete())  # the support request's SLA: not what these tests start
        self.app = create_app(engine, compiled, None, secret_key="projects-test")
        self.clients: dict[str, TestClient] = {}

    def client(self, who: str) -> TestClient:
        if who not in self.clients:
            client = TestClient(self.app)
            response = client.post("/login", data={"csrf_token": token(client.get("/login").text), "username": who, "password": who},
                                   follow_redirects=False)
            assert response.status_code == 303, who
            self.clients[who] = client
        return self.clients[who]

    def post(self, who: str, path: str, data: dict | None = None, **kw):
        client = self.client(who)
        return client.post(path, data={"csrf_token": token(client.get("/profile").text), **(data or {})}, **kw)

    def members(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(users.c.username).join(project_members, project_members.c.user_id == users.c.id)
                                       .where(project_members.c.project_id == self.project)).scalars())


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'projects.db'}")
    yield Site(compiled, engine)
    engine.dispose()


def token(text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


def visible(text: str) -> str:
    """The text a person reads in <main>, tags removed and spaces collapsed."""
    body = text.split("<main>", 1)[1].split("</main>", 1)[0]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


# -- the list ------------------------------------------------------------------------------------


def test_the_list_shows_my_projects_with_names_counts_and_late_work(site):
    page = site.client("pam").get("/projects")
    assert page.status_code == 200
    text = visible(page.text)
    assert "1 project that you run or are on" in text
    assert "Onboarding Acme Health" in text and "Company: Acme Health" in text and "Pam Projects" in text
    row = re.search(r'<tr class="overdue">(.*?)</tr>', page.text, re.S).group(1)  # a project with late work is marked
    assert "Onboarding Acme Health" in row and "1 late" in row and '<td data-label="Open tasks" class="num">2</td>' in row
    assert not ISO.search(text)
    assert 'name="show" value="all"' in page.text  # her role grants project_access: she may ask for everyone's


def test_staff_without_project_access_see_only_theirs_even_when_asking_for_all(site):
    for ask in ("/projects", "/projects?show=all"):
        text = visible(site.client("sue").get(ask).text)
        assert "You run no projects and are on no project's team." in text and "Onboarding" not in text
    assert 'name="show"' not in site.client("sue").get("/projects").text  # no choice offered
    with site.engine.begin() as conn:
        conn.execute(project_members.insert().values(project_id=site.project, user_id=site.users["sue"]))
    assert "Onboarding Acme Health" in visible(site.client("sue").get("/projects").text)


def test_project_access_shows_everyones_projects_on_request_and_filters_by_status(site):
    mia = site.client("mia")
    assert "Onboarding" not in visible(mia.get("/projects").text)  # hers by default: she runs none
    assert "Onboarding Acme Health" in visible(mia.get("/projects?show=all").text)
    assert "No projects are closed yet." in visible(mia.get("/projects?show=all&status=closed").text)
    assert "1 open project in all" in visible(mia.get("/projects?show=all&status=open").text)
    for odd in ("status=bogus", "page=abc", "page=-3", "page=99999999999999999999", "show=%00"):
        assert mia.get(f"/projects?show=all&{odd}").status_code == 200, odd


def test_the_list_pages_through_many_projects(site):
    with site.engine.begin() as conn:
        conn.execute(projects.insert(), [{"key": f"p{n}", "title": f"Project {n:02d}", "manager_id": site.users["pam"], "status": "open",
                                          "created_at": NOW - dt.timedelta(days=3, minutes=n)} for n in range(30)])
    first = site.client("pam").get("/projects")
    assert "31 projects" in visible(first.text) and "Page 1 of 2" in visible(first.text)
    assert first.text.count('<a href="/projects/') == 25
    second = visible(site.client("pam").get("/projects?show=mine&status=&page=2").text)
    assert "Page 2 of 2" in second and "Project 29" in second and "Project 23" not in second


# -- a project's page --------------------------------------------------------------------------


def test_the_project_page_shows_tasks_by_status_late_first_and_its_alerts(site):
    page = site.client("pam").get(f"/projects/{site.project}")
    assert page.status_code == 200
    text = visible(page.text)
    assert "2 open tasks · 1 late" in text
    assert text.index("Open 2") < text.index("Hold the kick-off") < text.index("Deliver the products") < text.index("Done 1")
    assert re.search(r'<tr class="overdue"><td><a href="/tasks/\d+">Hold the kick-off</a> <span class="kind bad">Late</span>', page.text)
    assert "Anna Bell" in text and "Hold the kick-off was due this morning." in text
    assert "Project manager Pam Projects" in text and "Company: Acme Health" in text
    assert not ISO.search(text)


@pytest.mark.parametrize("path", ["/projects/999999", "/projects/0", "/projects/-4", "/projects/abc", f"/projects/{2**70}"])
def test_a_wrong_project_id_is_not_found(site, path):
    page = site.client("pam").get(path)
    assert page.status_code == 404 and "There is no such project." in page.text


def test_who_may_open_a_project(site):
    refused = site.client("sue").get(f"/projects/{site.project}")  # staff, not on the team
    assert refused.status_code == 403 and "You are not on this project's team. Ask its project manager, Pam Projects, to add you." \
        in html.unescape(refused.text)
    assert site.client("mia").get(f"/projects/{site.project}").status_code == 200  # project_access: every project
    other = site.client("gil").get(f"/projects/{site.project}")  # another customer's project team user
    assert other.status_code == 404 and "Onboarding" not in other.text
    assert site.client("jane").get(f"/projects/{site.project}").status_code == 403  # a portal user (of Acme): no project access
    jo = site.client("jo").get(f"/projects/{site.project}")  # Acme's project team user, not on this one yet
    assert jo.status_code == 403 and "You are not on this project's team." in html.unescape(jo.text)
    with site.engine.begin() as conn:
        conn.execute(project_members.insert(), [{"project_id": site.project, "user_id": site.users[u]} for u in ("sue", "jo")])
    for member in ("sue", "jo"):  # members open it, whatever their roles; a customer's member sees no staff links
        page = site.client(member).get(f"/projects/{site.project}")
        assert page.status_code == 200 and "Hold the kick-off" in page.text
    assert f'href="/records/company/{site.acme}"' not in site.client("jo").get(f"/projects/{site.project}").text
    assert "Add to the team" not in visible(site.client("sue").get(f"/projects/{site.project}").text)  # she may not change it


# -- the team --------------------------------------------------------------------------------------


def test_the_manager_finds_people_by_name_and_adds_them(site):
    people = f"/projects/{site.project}/people"
    pam = site.client("pam")
    assert pam.get(people, params={"q": "Ann Sales"}).json() == [{"id": site.users["ann"], "title": "Ann Sales"}]
    assert [p["title"] for p in pam.get(people, params={"q": "ann"}).json()] == ["Ann Sales", "Anna Bell"]
    assert pam.get(people, params={"q": "gone"}).json() == []  # deactivated
    assert pam.get(people, params={"q": "gil"}).json() == []  # another customer's user
    assert [p["title"] for p in pam.get(people, params={"q": "jo"}).json()] == ["Jo Acme"]
    page = pam.get(f"/projects/{site.project}")
    assert f'<option value="{site.users["ann"]}">Ann Sales</option>' in page.text and "Gone Away" not in page.text
    done = site.post("pam", f"/projects/{site.project}/members", {"user_id": str(site.users["ann"])}, follow_redirects=True)
    assert "Ann Sales is on the team of Onboarding Acme Health." in visible(done.text)
    assert site.members() == ["ann"]
    assert re.search(r'<li><span>Ann Sales</span>\s*<a href="/projects/\d+/members/\d+/remove"', done.text)
    assert pam.get(people, params={"q": "ann"}).json() == [{"id": site.users["anna"], "title": "Anna Bell"}]  # on it already


@pytest.mark.parametrize(("picked", "message"), [
    ("", "Choose someone to add: type their name, then pick them from the list."),
    ("999999", "Choose someone from the list: there is no such user."),
    ("ann", "Choose someone from the list: there is no such user."),
    ("gone", "Gone Away is deactivated. Nobody was added."),
    ("gil", "Gil Globex is another customer's user; only people of this project's customer may join it. Nobody was added."),
    ("jane", "Jane Acme may not work on tasks. Nobody was added."),
    ("pam", "Pam Projects runs this project already."),
])
def test_adding_someone_who_cannot_join_says_why_and_keeps_the_page(site, picked, message):
    value = str(site.users[picked]) if picked in site.users and picked != "ann" else picked
    page = site.post("pam", f"/projects/{site.project}/members", {"user_id": value})
    assert page.status_code == 422
    assert f'<p class="error" role="alert" id="team-error">{message}</p>' in html.unescape(page.text)
    assert 'aria-invalid="true"' in page.text and "Hold the kick-off" in page.text  # the whole page, not an error page
    assert site.members() == []


def test_only_the_manager_or_someone_with_project_access_changes_the_team(site):
    with site.engine.begin() as conn:
        conn.execute(project_members.insert().values(project_id=site.project, user_id=site.users["sue"]))
    expected = "Only the project manager, Pam Projects, or someone who looks after projects adds people to the team or takes them off it."
    for response in (site.post("sue", f"/projects/{site.project}/members", {"user_id": str(site.users["ann"])}),
                     site.client("sue").get(f"/projects/{site.project}/people?q=ann"),
                     site.client("sue").get(f"/projects/{site.project}/members/{site.users['sue']}/remove"),
                     site.post("sue", f"/projects/{site.project}/members/{site.users['sue']}/remove")):
        assert response.status_code == 403 and expected in html.unescape(response.text)
    assert site.members() == ["sue"]
    added = site.post("mia", f"/projects/{site.project}/members", {"user_id": str(site.users["ann"])}, follow_redirects=False)
    assert added.status_code == 303 and site.members() == ["ann", "sue"]  # Mia looks after projects
    forged = site.client("pam").post(f"/projects/{site.project}/members", data={"csrf_token": "forged", "user_id": str(site.users["anna"])})
    assert forged.status_code == 403 and site.members() == ["ann", "sue"]


def test_taking_someone_off_asks_first_and_the_manager_stays(site):
    site.post("pam", f"/projects/{site.project}/members", {"user_id": str(site.users["ann"])})
    ask = site.client("pam").get(f"/projects/{site.project}/members/{site.users['ann']}/remove")
    assert ask.status_code == 200 and "Take Ann Sales off the team?" in visible(ask.text)
    assert re.search(r'<form method="post" action="/projects/\d+/members/\d+/remove">\s*<input type="hidden" name="csrf_token"', ask.text)
    assert site.members() == ["ann"]  # asking changes nothing
    gone = site.post("pam", f"/projects/{site.project}/members/{site.users['ann']}/remove", follow_redirects=True)
    assert "Ann Sales is no longer on the team of Onboarding Acme Health." in visible(gone.text) and site.members() == []
    again = site.post("pam", f"/projects/{site.project}/members/{site.users['ann']}/remove")
    assert again.status_code == 409 and "someone may have taken them off already" in html.unescape(again.text)
    assert site.client("pam").get(f"/projects/{site.project}/members/{site.users['ann']}/remove").status_code == 404
    for response in (site.client("pam").get(f"/projects/{site.project}/members/{site.users['pam']}/remove"),
                     site.post("pam", f"/projects/{site.project}/members/{site.users['pam']}/remove")):
        assert response.status_code == 409 and "Pam Projects is the project manager and stays on the team." in html.unescape(response.text)
    for odd in ("abc", "0", str(2**70)):
        assert site.client("pam").get(f"/projects/{site.project}/members/{odd}/remove").status_code == 404
        assert site.post("pam", f"/projects/{site.project}/members/{odd}/remove").status_code == 409


def test_members_open_the_projects_tasks_and_lose_them_when_taken_off(site):
    ann = site.client("ann")
    assert ann.get(f"/tasks/{site.late}").status_code == 403
    site.post("pam", f"/projects/{site.project}/members", {"user_id": str(site.users["ann"])})
    task = ann.get(f"/tasks/{site.late}")
    assert task.status_code == 200 and "Hold the kick-off" in task.text
    assert ann.get(f"/projects/{site.project}").status_code == 200
    assert "Onboarding Acme Health" in visible(ann.get("/projects").text)
    site.post("pam", f"/projects/{site.project}/members/{site.users['ann']}/remove")
    assert ann.get(f"/tasks/{site.late}").status_code == 403


# -- starting a process from a record's page ----------------------------------------------------


def test_the_record_page_offers_the_processes_started_by_hand(site):
    page = site.client("pam").get(f"/records/company/{site.acme}")
    text = visible(page.text)
    assert "Start Customer onboarding" in text and "Start Site survey…" in text
    assert re.search(rf'<form method="post" action="/records/company/{site.acme}/start/onboarding" class="start">\s*'
                     r'<input type="hidden" name="csrf_token" value="[^"]+">\s*<input type="hidden" name="request_id" value="[0-9a-f-]{36}">',
                     page.text)
    assert f'href="/records/company/{site.acme}/start/site_survey"' in page.text
    assert "Start" not in visible(site.client("pam").get(f"/records/support_request/{site.request}").text).split("Contact history")[0] \
        .replace("Start a process", "")  # the SLA starts by itself, never by hand
    assert "Start a process" not in visible(site.client("vic").get(f"/records/company/{site.acme}").text)  # may not start work


def test_a_start_with_wrong_inputs_says_what_is_wrong_keeps_what_was_typed_and_starts_nothing(site):
    form = site.client("pam").get(f"/records/company/{site.acme}/start/site_survey")
    assert form.status_code == 200
    assert all(label in visible(form.text) for label in ("Visit on", "Rooms to survey", "Surveyor"))
    page = site.post("pam", f"/records/company/{site.acme}/start/site_survey",
                     {"request_id": "r1", "visit_on": "", "rooms": "0", "surveyor": "999999"})
    assert page.status_code == 422
    text = visible(page.text)
    assert "Nothing was started. Please correct 3 things:" in text
    assert "Visit on is required" in text and "Rooms to survey must be at least 1" in text
    assert "Surveyor must be one of the listed people" in text
    assert 'id="f-rooms" name="rooms" type="number"' in page.text and 'value="0"' in page.text
    assert 'name="request_id" value="r1"' in page.text  # the retry keeps its request id
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(process_starts)).scalar() == 0


def test_a_start_goes_through_the_outbox_once_per_request(site):
    values = {"request_id": "r2", "visit_on": "2026-05-04", "rooms": "3", "surveyor": str(site.users["anna"])}
    first = site.post("pam", f"/records/company/{site.acme}/start/site_survey", values, follow_redirects=True)
    assert "Started Site survey for Acme Health. Its project is listed on this page as soon as it is open." in visible(first.text)
    site.post("pam", f"/records/company/{site.acme}/start/site_survey", values)  # a double click, or a retried POST
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(process_starts)).mappings().all()
    assert [(r["process"], r["entity"], r["record_id"], r["started_by"], r["inputs"]) for r in rows] == [
        ("site_survey", "company", site.acme, site.users["pam"], {"visit_on": "2026-05-04", "rooms": 3, "surveyor": site.users["anna"]})]
    site.post("pam", f"/records/company/{site.acme}/start/onboarding", {"request_id": "r3"})  # no inputs: straight from the button
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(process_starts)).scalar() == 2


def test_after_the_start_the_starter_lands_on_the_new_project(site, monkeypatch):
    """The process engine is replaced by what its first step does: it opens the project keyed by the workflow id."""
    async def open_it(services, compiled, workflow_ids):
        with site.engine.begin() as conn:
            for wid in workflow_ids:
                task_service.open_project(conn, wid, "Site survey at Acme Health", "company", site.acme, site.users["pam"])

    monkeypatch.setattr("admin.web.routes.projects.started", open_it)
    site.app.state.services.client = object()  # a process engine is there (open_it stands in for it)
    landed = site.post("pam", f"/records/company/{site.acme}/start/site_survey", {"request_id": "r4", "visit_on": "2026-05-04"},
                       follow_redirects=False)
    with site.engine.connect() as conn:
        project = conn.execute(sa.select(projects.c.id).where(projects.c.title == "Site survey at Acme Health")).scalar_one()
    assert landed.status_code == 303 and landed.headers["location"] == f"/projects/{project}"
    page = site.client("pam").get(landed.headers["location"])
    assert "Started Site survey for Acme Health. This is its project: add the people who work on it." in visible(page.text)


@pytest.mark.parametrize("path", ["/records/company/{acme}/start/nosuch", "/records/company/{acme}/start/contract_renewal",
                                  "/records/support_request/{request}/start/support_sla", "/records/company/999999/start/onboarding",
                                  "/records/nosuch/1/start/onboarding", "/records/company/abc/start/site_survey"])
def test_starting_what_cannot_be_started_here_is_not_found(site, path):
    url = path.format(acme=site.acme, request=site.request)
    assert site.client("pam").get(url).status_code == 404
    assert site.post("pam", url, {"request_id": "x", "visit_on": "2026-05-04"}).status_code == 404
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(process_starts)).scalar() == 0


def test_starting_needs_the_role_to_start_work(site):
    assert site.client("vic").get(f"/records/company/{site.acme}/start/site_survey").status_code == 403
    assert site.post("vic", f"/records/company/{site.acme}/start/onboarding", {"request_id": "v"}).status_code == 403
