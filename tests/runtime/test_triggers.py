"""Processes started by record changes, form submissions and recurrences (Temporal Schedules on the real dev server)."""
from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from temporalio.client import Client

from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.mail import MailSettings
from runtime.devserver import DevServer
from runtime.drainer import drain
from runtime.outbox import GRACE
from runtime.recurrence import sync_schedules
from runtime.schema import metadata as platform, process_instances
from runtime.triggers import form_starts, record_starts
from runtime.worker import make_worker
from tests.conftest import ACME, CRM, free_port


@pytest.fixture(scope="module")
def crm():
    return compile_model(load([CRM, ACME]))


def test_record_changes_start_the_processes_whose_condition_holds(crm):
    assert record_starts(crm, "support_request", "created", {"summary": "x", "severity": "high"}, None) == ["support_sla"]
    assert record_starts(crm, "company", "changed", {"name": "A", "status": "customer"}, {"name": "A", "status": "prospect"}) == ["onboarding"]
    # already a customer: changing the phone number onboards nobody again
    assert record_starts(crm, "company", "changed", {"name": "A", "status": "customer", "phone": "1"}, {"name": "A", "status": "customer"}) == []
    assert form_starts(crm, "meeting_note") == ["meeting_follow_up"]


RENEWAL = {
    "contract.yaml": "kind: entity\nname: contract\nfields:\n  reference: {type: string, required: true}\n  end_date: date\n",
    "renewal.yaml": """
        kind: process
        name: renewal
        entity: contract
        triggers:
          - {schedule: "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9", for_each: contract, when: "record.end_date | days_until <= 30"}
          - {record: contract, on: [created], when: "record.end_date | days_until <= 7"}
        steps:
          - {id: renew, title: "Renew {{ record.reference }}"}
        """,
}



def test_schedules_and_record_triggers_start_each_process_once(packs, tmp_path):
    compiled = compile_model(load([packs.write("r", RENEWAL)]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    today = dt.date.today()
    with engine.begin() as conn:
        soon = records.create_record(conn, compiled, "contract", {"reference": "C-1", "end_date": str(today + dt.timedelta(days=10))}, None)
        later = records.create_record(conn, compiled, "contract", {"reference": "C-2", "end_date": str(today + dt.timedelta(days=100))}, None)
        urgent = records.create_record(conn, compiled, "contract", {"reference": "C-3", "end_date": str(today + dt.timedelta(days=3))}, None)

    async def scenario() -> tuple[list, list, list]:
        with DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()) as server:
            client = await Client.connect(server.address)
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(client, engine, compiled, "triggers", MailSettings(), pool):
                    [sid] = await sync_schedules(client, compiled, "triggers")
                    assert await sync_schedules(client, compiled, "triggers") == [sid]  # updating, not duplicating
                    desc = await client.get_schedule_handle(sid).describe()
                    next_run = desc.info.next_action_times[0]
                    handle = client.get_schedule_handle(sid)
                    await handle.trigger()
                    await asyncio.sleep(4)
                    await handle.trigger()  # a second run the same day starts nothing new
                    await asyncio.sleep(4)
                    # the record trigger's start was enqueued with the record; nobody started it, so the drainer does
                    after_grace = dt.datetime.now(dt.timezone.utc) + GRACE
                    first = await drain(client, engine, compiled, "triggers", now=after_grace)
                    again = await drain(client, engine, compiled, "triggers", now=after_grace)
                    await asyncio.sleep(3)
                    await handle.delete()
                    return [next_run], first, again

    (next_run,), first, again = asyncio.run(scenario())
    assert next_run.weekday() == 0  # Mondays
    assert first == list(urgent.starts) and len(first) == 1 and again == []
    assert soon.starts == later.starts == ()  # their end dates are more than 7 days away
    with engine.connect() as conn:
        started = conn.execute(sa.select(process_instances.c.workflow_id, process_instances.c.record_id)).all()
    by_record = sorted(r.record_id for r in started)
    # the schedule found the two contracts ending within 30 days (once each); the record trigger added one for C-3
    assert by_record == sorted([soon.id, urgent.id, urgent.id])
    assert later.id not in by_record
