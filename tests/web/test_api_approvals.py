"""Approvals over the API, against a process on the time-skipping server: the approver decides, a rejection needs a
reason (422 at the field), nobody decides their own work or someone else's approval (worded 403), a decided approval
answers 409, and an approval is never handed to the requester."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from temporalio.testing import WorkflowEnvironment

from admin.access import new_token
from admin.app import create_app
from runtime.schema import tasks, users
from runtime.worker import make_worker
from runtime.workflows import ProcessWorkflow, process_input
from tests.runtime.conftest import smtp  # noqa: F401 - a fixture
from tests.runtime.test_approvals import PROPOSAL, world  # noqa: F401 - a fixture
from tests.runtime.test_workflows import TEST_SERVER, rows


def _tokens(world) -> dict[str, dict[str, str]]:
    out = {}
    with world["engine"].begin() as conn:
        for name in world["ids"]:
            token, digest = new_token()
            conn.execute(users.update().where(users.c.username == name).values(api_token_hash=digest))
            out[name] = {"Authorization": f"Bearer {token}"}
    return out


def _own_company(world, owner: str) -> int:
    company = world["compiled"].metadata.tables["company"]
    now = dt.datetime.now(dt.timezone.utc)
    with world["engine"].begin() as conn:
        return conn.execute(company.insert().values(title="Globex", data={"name": "Globex", "owner": world["ids"][owner]}, record_fields={},
                                                    created_at=now, updated_at=now)).inserted_primary_key[0]


def test_deciding_an_approval_over_the_api(world):
    ids, auth = world["ids"], _tokens(world)
    globex = _own_company(world, "mia")  # mia both proposes and is a director: she may not approve her own proposal

    async def scenario():
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"q-{uuid.uuid4()}"
            acts = world["acts"]
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(env.client, acts.engine, acts.compiled, queue, acts.mail, pool):
                    app = create_app(world["engine"], world["compiled"], env.client, secret_key="k", task_queue=queue)
                    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tailor") as api:
                        return await _steps(env, queue, api)

    async def _steps(env, queue, api):
        spec = world["compiled"].process_specs["discount"]
        for wid, record, owner in (("d-1", world["record_id"], "bob"), ("d-2", globex, "mia")):
            await env.client.start_workflow(ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=record,
                                                                              record={"name": wid}, started_by=ids[owner]),
                                            id=wid, task_queue=queue)
        await env.sleep(5)
        got = {}
        for wid, owner in (("d-1", "bob"), ("d-2", "mia")):
            [work] = rows(world, tasks, workflow_id=wid, step_id="propose")
            done = await api.post(f"/api/tasks/{work['id']}/complete", headers=auth[owner], json={"data": PROPOSAL})
            assert done.status_code == 200, done.text
        await env.sleep(5)
        asks = {(t["workflow_id"], next(u for u, i in ids.items() if i == t["assignee_id"])): t["id"]
                for t in rows(world, tasks, step_id="approve_discount")}
        assert sorted(asks) == [("d-1", "dana"), ("d-1", "eve"), ("d-1", "mia"), ("d-2", "dana"), ("d-2", "eve")]  # never mia's own
        got["no reason"] = await api.post(f"/api/tasks/{asks['d-1', 'dana']}/approve", headers=auth["dana"], json={"approve": False})
        got["own work"] = await api.post(f"/api/tasks/{asks['d-2', 'dana']}/approve", headers=auth["mia"], json={"approve": True})
        got["not hers"] = await api.post(f"/api/tasks/{asks['d-1', 'dana']}/approve", headers=auth["eve"], json={"approve": True})
        got["to requester"] = await api.post(f"/api/tasks/{asks['d-2', 'dana']}/reassign", headers=auth["max"], json={"to_user": ids["mia"]})
        got["to non-approver"] = await api.post(f"/api/tasks/{asks['d-1', 'dana']}/reassign", headers=auth["max"], json={"to_user": ids["bob"]})
        got["rejected"] = await api.post(f"/api/tasks/{asks['d-1', 'dana']}/approve", headers=auth["dana"],
                                         json={"approve": False, "reason": "Too steep"})
        got["cancelled"] = await api.post(f"/api/tasks/{asks['d-1', 'eve']}/approve", headers=auth["eve"], json={"approve": True})
        got["approved"] = await api.post(f"/api/tasks/{asks['d-2', 'eve']}/approve", headers=auth["eve"],
                                         json={"approve": True, "comment": "Worth it"})
        got["openapi"] = (await api.get("/api/openapi.json")).json()
        return got

    got = asyncio.run(scenario())
    assert got["no reason"].status_code == 422
    assert got["no reason"].json()["errors"] == {"reason": "Say why you are sending it back."}
    assert (got["own work"].status_code, got["own work"].json()["detail"]) == (403, "You submitted this work, so someone else must approve it.")
    assert (got["not hers"].status_code, got["not hers"].json()["detail"]) == (403, "This approval is waiting for someone else's decision.")
    assert (got["to requester"].status_code, got["to requester"].json()["title"]) == (403, "Mia Manager submitted this work, so may not approve it.")
    assert (got["to non-approver"].status_code, got["to non-approver"].json()["title"]) == (422, "Bob Sales may not approve.")
    assert (got["rejected"].status_code, got["rejected"].json()["outcome"]) == (200, "rejected")
    assert got["cancelled"].status_code == 409
    assert got["cancelled"].json()["title"] == "The work was sent back for revision: nothing waits for a decision until it is resubmitted."
    assert (got["approved"].status_code, got["approved"].json()["outcome"]) == (200, "approved")
    [work] = rows(world, tasks, workflow_id="d-1", step_id="propose")
    assert (work["status"], work["reason"], work["assignee_id"]) == ("open", "Too steep", ids["bob"])
    body = got["openapi"]["components"]["schemas"]["ApproveBody"]["properties"]
    assert set(body) == {"approve", "reason", "comment"} and "required with approve: false" in body["reason"]["description"]
    assert {"403", "409", "422"} <= set(got["openapi"]["paths"]["/api/tasks/{task_id}/approve"]["post"]["responses"])


def test_the_api_lists_approval_tasks_with_their_kind(world):
    """An approval waiting for dana is among her tasks, marked as an approval (and never among bob's, who asked)."""
    ids, auth = world["ids"], _tokens(world)

    async def scenario():
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"q-{uuid.uuid4()}"
            acts = world["acts"]
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(env.client, acts.engine, acts.compiled, queue, acts.mail, pool):
                    app = create_app(world["engine"], world["compiled"], env.client, secret_key="k", task_queue=queue)
                    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tailor") as api:
                        await env.client.start_workflow(ProcessWorkflow.run, process_input(
                            spec=world["compiled"].process_specs["discount"], entity="company", record_id=world["record_id"],
                            record={"name": "Acme"}, started_by=ids["bob"]), id="d-3", task_queue=queue)
                        await env.sleep(5)
                        [work] = rows(world, tasks, step_id="propose")
                        await api.post(f"/api/tasks/{work['id']}/complete", headers=auth["bob"], json={"data": PROPOSAL})
                        await env.sleep(5)
                        return (await api.get("/api/tasks", headers=auth["dana"])).json(), (await api.get("/api/tasks", headers=auth["bob"])).json()

    dana, bob = asyncio.run(scenario())
    assert [(t["step_id"], t["kind"], t["round"]) for t in dana] == [("approve_discount", "approval", 1)]
    assert [t["step_id"] for t in bob] == []
