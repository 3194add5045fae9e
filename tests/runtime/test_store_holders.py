"""Who may hold a task (runtime/holders.py), on SQLite and PostgreSQL, with the CRM pack's roles: the rule every
reassignment follows, from the web, the API and escalation ladders."""
from __future__ import annotations

import datetime as dt

import pytest

from runtime import holders
from runtime.schema import project_members, projects, users

from .conftest import Store

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
PEOPLE = {  # username: (roles, extra columns)
    "sue": (["staff"], {}),
    "ada": (["admin"], {}),
    "jane": (["portal"], {"company_id": 1}),
    "joe": (["project_team"], {"company_id": 1}),
    "kim": (["project_team"], {"company_id": 1}),
    "gus": (["staff"], {"active": False}),
    "ivy": (["staff"], {"password_hash": None}),
    "tom": ([], {}),
    "eve": (["staff"], {"company_id": 2}),  # linked to a customer: a customer's user whatever her roles say
}


@pytest.fixture
def people(store: Store) -> dict[str, int]:
    with store.begin() as conn:
        ids = {name: conn.execute(users.insert().values(**{"username": name, "name": name.title(), "roles": roles, "password_hash": "h",
                                                           "created_at": NOW, **extra}).returning(users.c.id)).scalar_one()
               for name, (roles, extra) in PEOPLE.items()}
        ids["project"] = conn.execute(projects.insert().values(key="p/1", title="Roll-out", created_at=NOW).returning(projects.c.id)).scalar_one()
        conn.execute(project_members.insert().values(project_id=ids["project"], user_id=ids["joe"]))
    return ids


def _verdict(store: Store, user_id, task: dict) -> str:
    with store.connect() as conn:
        try:
            return f"may: {holders.check(conn, store.compiled.model, user_id, task)}"
        except holders.NotAHolder as exc:
            return str(exc)


def test_only_active_staff_who_can_log_in_and_work_on_tasks_may_hold_one(store: Store, people):
    task = {"project_id": None}
    verdicts = {name: _verdict(store, people[name], task) for name in PEOPLE}
    assert verdicts == {
        "sue": "may: Sue",
        "ada": "may: Ada",  # admin implies every permission
        "jane": "Jane is a customer's user and is not on this task's project team.",
        "joe": "Joe is a customer's user and is not on this task's project team.",
        "kim": "Kim is a customer's user and is not on this task's project team.",
        "gus": "Gus is deactivated.",
        "ivy": "Ivy cannot log in (an API-only account), so could never see the task.",
        "tom": "Tom may not work on tasks.",
        "eve": "Eve is a customer's user and is not on this task's project team.",
    }
    assert [_verdict(store, v, task) for v in (10**6, 2**63, 2**70, 0, -1, True, "3", None)] == ["There is no such user."] * 8


def test_a_customers_project_team_member_may_hold_tasks_of_that_project_only(store: Store, people):
    on_project = {"project_id": people["project"]}
    assert _verdict(store, people["joe"], on_project) == "may: Joe"  # on the team: the role's manage_own_tasks counts
    assert _verdict(store, people["kim"], on_project) == "Kim is a customer's user and is not on this task's project team."
    assert _verdict(store, people["jane"], on_project) == "Jane is a customer's user and is not on this task's project team."
    assert _verdict(store, people["joe"], {"project_id": None}).startswith("Joe is a customer's user")


def test_eligible_keeps_the_order_given_and_drops_the_rest(store: Store, people):
    order = [people[n] for n in ("tom", "sue", "jane", "joe", "ada", "gus")] + [10**6, 2**70]
    with store.connect() as conn:
        assert holders.eligible(conn, store.compiled.model, order, {"project_id": people["project"]}) == [people["sue"], people["joe"], people["ada"]]
        assert holders.eligible(conn, store.compiled.model, order, {"project_id": None}) == [people["sue"], people["ada"]]
        assert holders.eligible(conn, store.compiled.model, [], {"project_id": None}) == []
    with store.begin() as conn:  # deactivating someone takes effect at once
        conn.execute(users.update().where(users.c.id == people["sue"]).values(active=False))
    with store.connect() as conn:
        assert holders.eligible(conn, store.compiled.model, order, {"project_id": None}) == [people["ada"]]
