"""Projects over the API: one project with its team, and bringing people on or taking them off (runtime.projects)."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.schema import metadata as platform, project_members, projects, users
from tests.conftest import CRM

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def api(compiled, tmp_path):
    """Pam runs a project on Acme; Ann (staff), Mia (sales manager), Gil (Globex's project team) and a deactivated user."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'api.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    tokens, ids = {}, {}
    with engine.begin() as conn:
        acme = records.create_record(conn, compiled, "company", {"name": "Acme", "status": "customer"}, None).id
        globex = records.create_record(conn, compiled, "company", {"name": "Globex", "status": "customer"}, None).id
        for name, roles, company, active in [("pam", ["staff", "project_manager"], None, True), ("ann", ["staff"], None, True),
                                             ("mia", ["staff", "sales_manager"], None, True), ("gil", ["project_team"], globex, True),
                                             ("gone", ["staff"], None, False)]:
            token, digest = new_token()
            tokens[name] = token
            ids[name] = conn.execute(users.insert().values(username=name, name=name.title(), roles=roles, company_id=company, active=active,
                                                           password_hash="x", api_token_hash=digest, created_at=NOW)).inserted_primary_key[0]
        ids["project"] = conn.execute(projects.insert().values(key="p", title="Roll-out", entity="company", record_id=acme,
                                                               manager_id=ids["pam"], status="open", created_at=NOW)).inserted_primary_key[0]
    return TestClient(create_app(engine, compiled, None, secret_key="k")), engine, tokens, ids


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_the_manager_builds_the_team_over_the_api(api):
    client, engine, tokens, ids = api
    url = f"/api/projects/{ids['project']}"
    assert client.get(url, headers=auth(tokens["pam"])).json()["members"] == []
    added = client.post(f"{url}/members", json={"user_id": ids["ann"]}, headers=auth(tokens["pam"]))
    assert added.status_code == 200 and added.json()["members"] == [ids["ann"]]
    again = client.post(f"{url}/members", json={"user_id": ids["ann"]}, headers=auth(tokens["pam"]))
    assert again.status_code == 422 and again.json()["errors"] == {"user_id": "Ann is on the team already."}
    gone = client.post(f"{url}/members", json={"user_id": ids["gone"]}, headers=auth(tokens["pam"]))
    assert gone.status_code == 422 and gone.json()["detail"] == "Gone is deactivated. Nobody was added."
    other = client.post(f"{url}/members", json={"user_id": ids["gil"]}, headers=auth(tokens["pam"]))
    assert other.status_code == 422 and "another customer's user" in other.json()["detail"]
    assert client.delete(f"{url}/members/{ids['pam']}", headers=auth(tokens["pam"])).status_code == 409  # the manager stays
    assert client.delete(f"{url}/members/{ids['mia']}", headers=auth(tokens["pam"])).status_code == 404  # not on it
    removed = client.delete(f"{url}/members/{ids['ann']}", headers=auth(tokens["pam"]))
    assert removed.status_code == 200 and removed.json()["members"] == []


def test_who_may_see_a_project_or_change_its_team_over_the_api(api):
    client, engine, tokens, ids = api
    url = f"/api/projects/{ids['project']}"
    assert client.get(url, headers=auth(tokens["ann"])).status_code == 403  # staff without project access
    assert client.get(url, headers=auth(tokens["mia"])).status_code == 200  # project access: every project
    assert client.get(url, headers=auth(tokens["gil"])).status_code == 404  # another customer's: not even that it exists
    assert client.get("/api/projects/999999", headers=auth(tokens["mia"])).status_code == 404
    assert client.get(f"/api/projects/{2**70}", headers=auth(tokens["mia"])).status_code == 404
    with engine.begin() as conn:
        conn.execute(project_members.insert().values(project_id=ids["project"], user_id=ids["gil"]))  # as if added earlier
    assert client.get(url, headers=auth(tokens["gil"])).json()["members"] == [ids["gil"]]
    assert client.post(f"{url}/members", json={"user_id": ids["mia"]}, headers=auth(tokens["mia"])).status_code == 200
    for bad in ({"user_id": "1"}, {"user_id": 0}, {"user_id": 2**70}, {}):
        assert client.post(f"{url}/members", json=bad, headers=auth(tokens["pam"])).status_code == 422, bad
