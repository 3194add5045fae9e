"""Crash tests on the real Temporal dev server: a killed worker and a restarted server lose nothing and repeat nothing."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from temporalio.client import Client

from admin.run import prepare
from runtime.schema import alerts, contact_history, process_instances, tasks
from runtime.settings import Settings
from runtime.starter import start_process
from runtime.workflows import ProcessWorkflow, TaskAction
from tests.conftest import dev_server, free_port

PACK = {
    "company.yaml": "kind: entity\nname: company\nfields:\n  name: {type: string, required: true}\n",
    "people.yaml": "kind: role\nname: director\npermissions: [access]\n",
    "process.yaml": """
        kind: process
        name: chase
        entity: company
        steps:
          - id: call
            title: "Call {{ record.name }}"
            due: 8 seconds
            escalate:
              - {at: due, alert: role:director}
              - {at: due + 4 seconds, alert: role:director}
          - id: close
            title: Close
        """,
}
N = 4


class Inbox:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    tailor = str(Path(sys.executable).parent / "tailor")
    return subprocess.Popen([tailor, "worker"], env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_and_restarted_server_resume_without_duplicates(packs, tmp_path):
    pack = packs.write("chase", PACK)
    smtp_port = free_port()
    # the server first, on ports it could bind (chosen again if another program took one): the worker is told its address
    server = dev_server(tmp_path / "var" / "temporal")
    temporal_port = server.port
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp_path / "var"), "TAILOR_PACKS": str(pack),
           "TAILOR_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}", "TAILOR_TASK_QUEUE": "crash-test", "TAILOR_SMTP_PORT": str(smtp_port)}
    settings = Settings.from_env(env)
    engine, compiled = prepare(settings, echo=lambda *_: None)
    with engine.begin() as conn:
        from runtime import records
        from runtime.schema import users
        import datetime as dt

        conn.execute(users.insert().values(username="dave", name="Dave", email="dave@example.com", roles=["director"],
                                           created_at=dt.datetime.now(dt.timezone.utc)))
        ids = [records.create_record(conn, compiled, "company", {"name": f"Co {i}"}, None).id for i in range(N)]
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        async def start_all() -> None:
            client = await Client.connect(server.address)
            for i, rid in enumerate(ids):
                await start_process(client, compiled.process_specs["chase"], key=f"co-{rid}", task_queue="crash-test",
                                    entity="company", record_id=rid, record={"name": f"Co {i}"})
                # a retried request with the same key finds the same process
                await start_process(client, compiled.process_specs["chase"], key=f"co-{rid}", task_queue="crash-test",
                                    entity="company", record_id=rid, record={"name": f"Co {i}"})

        asyncio.run(start_all())

        def count(table, **where) -> int:
            with engine.connect() as conn:
                q = sa.select(sa.func.count()).select_from(table)
                for k, v in where.items():
                    q = q.where(table.c[k] == v)
                return conn.execute(q).scalar()

        wait_until(lambda: count(tasks) == N, 60, "the first tasks")
        # kill the worker mid-step (some workflow tasks may have committed their write without completing: a
        # replay runs the write again), and keep it down while every deadline and escalation passes
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        time.sleep(14)
        assert count(alerts) == 0, "nothing can fire while no worker runs"
        worker = start_worker(env, tmp_path / "worker.log")
        wait_until(lambda: count(alerts) == 2 * N, 60, "both escalation levels of every process")

        # restart the (persisted) dev server: running processes survive
        server.stop()
        server.start()

        async def finish_all() -> list:
            client = await Client.connect(server.address)
            results = []
            for rid in ids:
                handle = client.get_workflow_handle(f"chase/co-{rid}")
                await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="call", user_id=1), id=f"done-{rid}")
                await handle.execute_update(ProcessWorkflow.complete, TaskAction(step="close", user_id=1), id=f"close-{rid}")
                results.append(await handle.result())
            return results

        results = asyncio.run(finish_all())
        assert results == [{"steps": {"call": "done", "close": "done"}}] * N
        time.sleep(2)
        assert count(tasks) == 2 * N and count(alerts) == 2 * N
        assert count(process_instances, status="completed") == N
        assert inbox.count == 2 * N  # one email per alert, none repeated after the crash
        with engine.connect() as conn:
            summaries = list(conn.execute(sa.select(contact_history.c.summary)).scalars())
        # every write that was run again after the crash found its history entry instead of adding one
        assert [sum(s.startswith(w) for s in summaries) for w in ("Task created", "Alert (level", "Task completed")] == [2 * N] * 3
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        server.stop()
        smtp.stop()
        engine.dispose()
