"""Project teams (runtime.projects): whom the member picker finds, who may join, leaving, and the projects list."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from runtime import projects as teams
from runtime import records
from runtime.schema import project_members, projects, tasks, users

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


def person(conn, username: str, name: str, roles=("staff",), *, active=True, password="x", company=None) -> int:
    return conn.execute(users.insert().values(username=username, name=name, roles=list(roles), active=active, password_hash=password,
                                              company_id=company, created_at=NOW).returning(users.c.id)).scalar_one()


@pytest.fixture
def world(store):
    """Acme (with a contract) and Globex; a project on Acme run by Pam; staff, customers' users and people who may not join."""
    with store.begin() as conn:
        acme = records.create_record(conn, store.compiled, "company", {"name": "Acme", "status": "customer"}, None).id
        globex = records.create_record(conn, store.compiled, "company", {"name": "Globex", "status": "customer"}, None).id
        contract = records.create_record(conn, store.compiled, "contract", {"reference": "SLA-1", "company": acme, "status": "active",
                                                                            "start_date": "2026-01-01", "end_date": "2027-01-01"}, None).id
        ids = {
            "pam": person(conn, "pam", "Pam Projects", ["staff", "project_manager"]),
            "ann": person(conn, "ann", "Ann Sales"),
            "anna": person(conn, "anna", "Anna Bell"),
            "gone": person(conn, "gone", "Gone Away", active=False),
            "robot": person(conn, "robot", "Robot Feed", password=None),  # an API-only account
            "admin": person(conn, "root", "Ada Admin", ["admin"]),  # admin grants every permission: may hold tasks
            "jo": person(conn, "jo", "Jo Acme", ["project_team"], company=acme),
            "jane": person(conn, "jane", "Jane Acme", ["portal"], company=acme),  # may report requests, not work on tasks
            "gil": person(conn, "gil", "Gil Globex", ["project_team"], company=globex),
        }
        project = conn.execute(projects.insert().values(key="onboarding/acme", title="Onboarding Acme", entity="company", record_id=acme,
                                                        manager_id=ids["pam"], status="open", created_at=NOW)).inserted_primary_key[0]
    with store.connect() as conn:
        found = teams.get(conn, project)
    return store, ids, found, {"acme": acme, "globex": globex, "contract": contract}


def names(found: list[dict]) -> list[str]:
    return [p["name"] for p in found]


def test_the_picker_finds_people_by_full_name_or_user_name_whatever_the_case(world):
    store, ids, project, _ = world
    with store.connect() as conn:
        assert names(teams.candidates(conn, store.compiled, project, "Ann Sales")) == ["Ann Sales"]
        assert names(teams.candidates(conn, store.compiled, project, "ann")) == ["Ann Sales", "Anna Bell"]
        assert names(teams.candidates(conn, store.compiled, project, "SALES ann")) == ["Ann Sales"]  # each word, in any order
        assert names(teams.candidates(conn, store.compiled, project, "bell")) == ["Anna Bell"]
        assert teams.candidates(conn, store.compiled, project, "nobody like this") == []
        assert teams.candidates(conn, store.compiled, project, "n%s") == []  # LIKE wildcards are matched as typed ("Ann Sales" has no "n%s")
        assert teams.candidates(conn, store.compiled, project, "a_n") == []


def test_the_picker_offers_only_those_who_may_hold_the_projects_tasks(world):
    store, ids, project, _ = world
    with store.connect() as conn:
        offered = names(teams.candidates(conn, store.compiled, project))
    # the manager is on the team already; deactivated, API-only and portal-only users may not hold tasks;
    # a customer's project team user only for their own company's project
    assert offered == ["Ada Admin", "Ann Sales", "Anna Bell", "Jo Acme"]


def test_members_join_once_and_leave_the_picker(world):
    store, ids, project, _ = world
    with store.begin() as conn:
        assert teams.add_member(conn, store.compiled, project, ids["ann"], ids["pam"]) == "Ann Sales"
        assert teams.add_member(conn, store.compiled, project, ids["jo"], ids["pam"]) == "Jo Acme"
        with pytest.raises(teams.TeamRefused, match="^Ann Sales is on the team already.$"):
            teams.add_member(conn, store.compiled, project, ids["ann"], ids["pam"])
    with store.connect() as conn:
        assert teams.member_ids(conn, project["id"]) == sorted([ids["ann"], ids["jo"]])
        assert teams.is_member(conn, project["id"], ids["ann"]) and not teams.is_member(conn, project["id"], ids["pam"])
        assert "Ann Sales" not in names(teams.candidates(conn, store.compiled, project, "ann"))
        history = conn.execute(sa.text("SELECT summary, user_id FROM contact_history WHERE kind = 'project' ORDER BY id")).all()
    assert [tuple(h) for h in history] == [("Ann Sales joined the project team of Onboarding Acme", ids["pam"]),
                                           ("Jo Acme joined the project team of Onboarding Acme", ids["pam"])]


@pytest.mark.parametrize(("who", "message"), [
    ("nobody", "Choose someone from the list: there is no such user."),
    ("gone", "Gone Away is deactivated. Nobody was added."),
    ("robot", "Robot Feed cannot log in (an API-only account), so could never see the task. Nobody was added."),
    ("jane", "Jane Acme may not work on tasks. Nobody was added."),
    ("gil", "Gil Globex is another customer's user; only people of this project's customer may join it. Nobody was added."),
    ("pam", "Pam Projects runs this project already."),
])
def test_who_may_not_join_is_told_why(world, who, message):
    store, ids, project, _ = world
    with store.begin() as conn:
        with pytest.raises(teams.TeamRefused) as refused:
            teams.add_member(conn, store.compiled, project, ids.get(who, 10**9), ids["pam"])
        assert str(refused.value) == message
        assert teams.member_ids(conn, project["id"]) == []


@pytest.mark.parametrize("bad", [0, -1, 2**63, "3", True, None])
def test_a_user_id_no_user_can_have_is_refused_in_words(world, bad):
    store, ids, project, _ = world
    with store.begin() as conn:
        with pytest.raises(teams.TeamRefused, match="there is no such user"):
            teams.add_member(conn, store.compiled, project, bad, ids["pam"])
        with pytest.raises(teams.TeamRefused, match="not on this project's team"):
            teams.remove_member(conn, project, bad, ids["pam"])


def test_the_manager_stays_and_only_members_can_leave(world):
    store, ids, project, _ = world
    with store.begin() as conn:
        teams.add_member(conn, store.compiled, project, ids["ann"], ids["pam"])
        with pytest.raises(teams.TeamRefused, match="^Pam Projects is the project manager and stays on the team.$"):
            teams.remove_member(conn, project, ids["pam"], ids["pam"])
        with pytest.raises(teams.TeamRefused, match="not on this project's team"):
            teams.remove_member(conn, project, ids["anna"], ids["pam"])
        assert teams.remove_member(conn, project, ids["ann"], ids["pam"]) == "Ann Sales"
        with pytest.raises(teams.TeamRefused, match="someone may have taken them off already"):
            teams.remove_member(conn, project, ids["ann"], ids["pam"])
        assert teams.member_ids(conn, project["id"]) == []
        assert "Ann Sales left the project team of Onboarding Acme" in conn.execute(sa.text("SELECT summary FROM contact_history")).scalars().all()


def test_a_project_on_a_contract_takes_the_contracts_company_people(world):
    store, ids, _, where = world
    with store.begin() as conn:
        pid = conn.execute(projects.insert().values(key="renewal/sla-1", title="Renewal SLA-1", entity="contract", record_id=where["contract"],
                                                    manager_id=ids["pam"], status="open", created_at=NOW)).inserted_primary_key[0]
        project = teams.get(conn, pid)
        assert teams.company_of(conn, store.compiled, project) == where["acme"]
        assert "Jo Acme" in names(teams.candidates(conn, store.compiled, project))
        assert "Gil Globex" not in names(teams.candidates(conn, store.compiled, project))
        # a project on no record: no customer, so no customer's user joins
        loose = teams.get(conn, conn.execute(projects.insert().values(key="internal/1", title="Internal", manager_id=ids["pam"], status="open",
                                                                      created_at=NOW)).inserted_primary_key[0])
        assert teams.company_of(conn, store.compiled, loose) is None
        assert names(teams.candidates(conn, store.compiled, loose)) == ["Ada Admin", "Ann Sales", "Anna Bell"]


def test_the_project_a_process_opened_is_found_by_its_workflow_id(world):
    store, _, project, _ = world
    with store.connect() as conn:
        assert teams.opened_by(conn, "onboarding/acme") == project["id"]
        assert teams.opened_by(conn, "onboarding/not-yet") is None
        assert teams.get(conn, 10**9) is None and teams.get(conn, 2**64) is None and teams.get(conn, "1") is None


def test_the_list_shows_mine_or_all_with_open_and_late_tasks_and_pages(world):
    store, ids, project, where = world
    with store.begin() as conn:
        other = conn.execute(projects.insert().values(key="survey/globex", title="Survey Globex", entity="company", record_id=where["globex"],
                                                      manager_id=ids["anna"], status="closed", created_at=NOW + dt.timedelta(hours=1))
                             ).inserted_primary_key[0]
        conn.execute(project_members.insert().values(project_id=other, user_id=ids["ann"]))
        for n, (status, due) in enumerate([("open", NOW - dt.timedelta(hours=1)), ("open", NOW + dt.timedelta(days=1)),
                                           ("awaiting_approval", NOW - dt.timedelta(days=2)), ("open", None), ("done", NOW - dt.timedelta(days=9))]):
            conn.execute(tasks.insert().values(key=f"t{n}", workflow_id="onboarding/acme", process="onboarding", step_id=f"s{n}", title=f"Step {n}",
                                               project_id=project["id"], status=status, due_at=due, created_at=NOW))
    with store.connect() as conn:
        everything = teams.listing(conn, user_id=None, now=NOW)
        pams = teams.listing(conn, user_id=ids["pam"], now=NOW)
        anns = teams.listing(conn, user_id=ids["ann"], now=NOW)
        closed = teams.listing(conn, user_id=None, status="closed", now=NOW)
        paged = [teams.listing(conn, user_id=None, page=p, per=1, now=NOW) for p in (1, 2, 3)]
    assert [(r["title"], r["open_tasks"], r["late_tasks"]) for r in everything.rows] == [("Survey Globex", 0, 0), ("Onboarding Acme", 4, 2)]
    assert [r["title"] for r in pams.rows] == ["Onboarding Acme"] and pams.total == 1  # she runs it
    assert [r["title"] for r in anns.rows] == ["Survey Globex"]  # she is on its team
    assert [r["title"] for r in closed.rows] == ["Survey Globex"]
    assert [(p.page, p.pages, [r["title"] for r in p.rows]) for p in paged] == [
        (1, 2, ["Survey Globex"]), (2, 2, ["Onboarding Acme"]), (2, 2, ["Onboarding Acme"])]  # past the last page: the last
