"""`tailor pack upgrade` and running processes: the dry run says per process how many running instances stay on their
version or move to the new one (a pack's `migrate:`), and changes nothing; `--apply` switches the release and moves them,
on a real Temporal test server, once however often it is applied."""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from runtime import records
from runtime.mail import MailSettings
from runtime.schema import group_members, process_instances, tasks, users
from runtime.worker import make_worker
from runtime.workflows import ProcessWorkflow, TaskAction, process_input
from tests.admin.packfixtures import crm_1_1
from tests.admin.test_pack_install import (  # noqa: F401 - a fixture
    Installation,
    _records_and_running,
    crm_and_acme,
)
from tests.conftest import free_port
from tests.runtime.test_workflows import TEST_SERVER


def _open_tasks(inst: Installation, steps: dict[str, str]) -> None:
    """An open task at step `steps[workflow id]` for each running instance named."""
    engine = inst.engine()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(tasks.insert(), [{"key": f"{wid}:{step}", "workflow_id": wid, "process": "onboarding", "step_id": step, "title": step,
                                       "status": "open", "created_at": now} for wid, step in steps.items()])
    engine.dispose()


def _state(inst: Installation) -> tuple:
    engine = inst.engine()
    with engine.connect() as conn:
        versions = conn.execute(sa.select(process_instances.c.workflow_id, process_instances.c.version).order_by(process_instances.c.workflow_id)).all()
        steps = conn.execute(sa.select(tasks.c.key, tasks.c.step_id).order_by(tasks.c.id)).all()
    engine.dispose()
    return versions, steps, inst.active()["id"], inst.activations()


def _with_migration(folder: Path, migrate: str) -> Path:
    onboarding = folder / "processes" / "onboarding.yaml"
    onboarding.write_text(onboarding.read_text() + "\nmigrate:\n" + migrate)
    return folder


@pytest.mark.parametrize("migrate, line", [
    ("  from: 1.0.0\n  steps:\n    training: sign_off\n",
     "onboarding (Customer onboarding): 2 running on crm 1.0.0 will move to crm 1.1.0 (steps: training → sign_off)"),
    ("  from: '>=1.0,<1.1'\n",
     ("onboarding (Customer onboarding): 2 running on crm 1.0.0 will move to crm 1.1.0 (steps: each keeps its id); 1 of them will not: "
      "step 'training' is open and the new version has no step 'training': the migration does not map it")),
    ("  from: 0.9.0\n",
     "onboarding (Customer onboarding): 2 running on crm 1.0.0 stay on it; new ones start on crm 1.1.0"),
], ids=["mapped", "unmapped-open-step", "other-version"])
def test_the_dry_run_says_how_many_running_instances_move_or_stay_and_changes_nothing(crm_and_acme, tmp_path, migrate, line):  # noqa: F811
    inst = crm_and_acme
    kept = _records_and_running(inst)
    _open_tasks(inst, {"onboarding/0": "kickoff", "onboarding/1": "training"})
    before = _state(inst)
    dry = inst.tailor("pack", "upgrade", _with_migration(crm_1_1(tmp_path), migrate))
    assert dry.exit_code == 0, dry.output
    assert (f"running processes:\n  lead_follow_up (Lead follow-up): 1 running on crm 1.0.0, which the new release runs too\n"
            f"  {line}\n") in dry.output
    assert dry.output.endswith("this was a dry run: nothing was changed (add --apply to do it)\n")
    assert _state(inst) == before and kept["versions"]["onboarding"] in {v for _, v in before[0]}


def test_a_migration_naming_a_step_the_new_version_lacks_is_a_located_problem_and_nothing_changes(crm_and_acme, tmp_path):  # noqa: F811
    inst = crm_and_acme
    before = _state(inst)
    new_crm = _with_migration(crm_1_1(tmp_path), "  steps:\n    training: sign_of\n")
    dry = inst.tailor("pack", "upgrade", new_crm, "--apply")
    assert dry.exit_code == 1
    line = next(x for x in dry.output.splitlines() if "migrate maps" in x)
    assert line == (f"  {new_crm}/processes/onboarding.yaml:83:15: migrate maps step 'training' to 'sign_of', which is not a step of process "
                    "'onboarding'; did you mean 'sign_off'? [migrate.unknown-step]")
    assert _state(inst) == before


PACK = {
    "model.yaml": """
        kind: entity
        name: company
        fields:
          name: {type: string, required: true}
        ---
        kind: role
        name: staff
        permissions: [access, manage_own_tasks]
        ---
        kind: group
        name: sales
        """,
}
V1 = """\
kind: process
name: callback
entity: company
steps:
  - id: call
    title: "Call {{ record.name }}"
    assign: group:sales
    due: 2 hours
  - id: thanks
    title: Say thanks
    assign: completer:call
"""
V2 = V1.replace("id: call\n", "id: call_customer\n").replace("completer:call\n", "completer:call_customer\n").replace(
    "  - id: thanks", "  - id: confirm\n    title: Confirm by mail\n    assign: completer:call_customer\n  - id: thanks"
) + "migrate:\n  from: 1.0.0\n  steps:\n    call: call_customer\n"


def _versions(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(process_instances.c.version)).scalars())


def test_apply_switches_the_release_then_moves_the_running_instances_once(packs, tmp_path):
    v1 = packs.write("t", {**PACK, "process.yaml": V1})
    v2 = packs.write("t-1.1.0", {**PACK, "pack.yaml": "kind: pack\nname: t\nversion: 1.1.0\n", "process.yaml": V2})
    inst = Installation(tmp_path / "site")
    made = inst.tailor("release", "create", v1, "--activate")
    assert made.exit_code == 0, made.output
    compiled = inst.compiled()
    engine = inst.engine()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        ann = conn.execute(users.insert().values(username="ann", name="Ann", email="ann@example.com", roles=["staff"],
                                                 password_hash="x", created_at=now).returning(users.c.id)).scalar_one()
        conn.execute(group_members.insert().values(group_name="sales", user_id=ann, manager=False))
        acme = records.create_record(conn, compiled, "company", {"name": "Acme"}, None).id
    spec = compiled.process_specs["callback"]

    async def body():
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            inst.env["TAILOR_TEMPORAL_ADDRESS"] = f"127.0.0.1:{free_port()}"  # first nobody answers there
            queue = f"q-{uuid.uuid4()}"
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(env.client, engine, compiled, queue, MailSettings(), pool):
                    handles = [await env.client.start_workflow(
                        ProcessWorkflow.run, process_input(spec=spec, entity="company", record_id=acme, record={"name": "Acme"}, started_by=ann,
                                                          started_at=(await env.get_current_time()).isoformat()),
                        id=f"callback-{i}", task_queue=queue) for i in (1, 2)]
                    await env.sleep(60)
                    dry = await asyncio.to_thread(inst.tailor, "pack", "upgrade", v2)
                    away = await asyncio.to_thread(inst.tailor, "pack", "upgrade", v2, "--apply")
                    assert _versions(engine) == {spec["version"]}  # switched, but nobody moved
                    inst.env["TAILOR_TEMPORAL_ADDRESS"] = env.client.service_client.config.target_host
                    done = await asyncio.to_thread(inst.tailor, "pack", "upgrade", v2, "--apply")
                    again = await asyncio.to_thread(inst.tailor, "pack", "upgrade", v2, "--apply")
                    for h in handles:
                        await h.execute_update(ProcessWorkflow.complete, TaskAction(step="call_customer", user_id=ann))
                    await env.sleep(5)
                    for h in handles:
                        await h.terminate()
                    return dry, away, done, again

    dry, away, done, again = asyncio.run(body())
    plan = "callback (Callback): 2 running on t 1.0.0 will move to t 1.1.0 (steps: call → call_customer)\n"
    assert f"running processes:\n  {plan}" in dry.output and dry.output.endswith("nothing was changed (add --apply to do it)\n")
    assert away.exit_code == 1 and "done: release" in away.output
    assert re.search(r"the running processes were not moved: Temporal at 127\.0\.0\.1:\d+ did not answer \(.*\); once it does, "
                     r"run the same command again to move them\n$", away.output, re.DOTALL)
    # the same command again: the release is in place, so it moves the instances still to move
    assert (done.exit_code, done.output) == (0, (f"t 1.1.0 is installed already; running processes still to move:\n  {plan}"
                                                 "running processes moved:\n  callback (Callback): 2 moved to t 1.1.0\n"))
    assert (again.exit_code, again.output) == (1, "error: t 1.1.0 is installed already, with exactly these files: nothing to upgrade\n")
    new_version = inst.compiled().process_specs["callback"]["version"]
    versions = _versions(engine)
    with engine.connect() as conn:
        steps = conn.execute(sa.select(tasks.c.workflow_id, tasks.c.step_id).order_by(tasks.c.workflow_id, tasks.c.id)).all()
    engine.dispose()
    assert versions == {new_version}
    assert [tuple(s) for s in steps] == [("callback-1", "call_customer"), ("callback-1", "confirm"),
                                         ("callback-2", "call_customer"), ("callback-2", "confirm")]
