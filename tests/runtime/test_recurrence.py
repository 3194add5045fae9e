"""Recurrence rules against the real Temporal dev server: the schedule fires when dateutil says the rule occurs."""
from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from temporalio.client import (Client, Schedule, ScheduleActionStartWorkflow, ScheduleBackfill, ScheduleOverlapPolicy,
                               ScheduleState)

from engine.compiler import compile_model
from engine.loader import load
from engine.recurrence import is_occurrence, parse, schedule_plan
from runtime import records
from runtime.devserver import DevServer
from runtime.mail import MailSettings
from runtime.recurrence import schedule_spec, sync_schedules
from runtime.schema import metadata as platform, process_instances
from runtime.worker import make_worker
from tests.conftest import free_port

BERLIN = "Europe/Berlin"

# (rule, starts, exact): starts in 2027 cross the daylight-saving changes of 28 March and 31 October
RULES = [
    ("FREQ=DAILY;BYHOUR=8;BYMINUTE=30", "2027-03-24", True),
    ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9", "2027-10-25", True),
    ("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", None, True),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;BYHOUR=9", "2027-03-15", False),
    ("FREQ=DAILY;INTERVAL=3;BYHOUR=6", "2027-03-25", False),
    ("FREQ=MONTHLY;BYMONTHDAY=15;BYHOUR=10", None, True),
    ("FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;BYHOUR=7", "2027-02-01", True),
    ("FREQ=MONTHLY", "2027-01-31T09:15", True),
    ("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=16", "2027-01-01", False),
    ("FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=18", "2027-02-22", False),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=17", "2027-03-22", False),
    ("FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;COUNT=3", "2027-01-01", True),
    ("FREQ=MONTHLY;BYDAY=2TU,4TU;BYHOUR=14", None, True),
    ("FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO,1TU;BYHOUR=9", "2027-01-01", True),
    ("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;BYHOUR=12", None, True),
    ("FREQ=MONTHLY;BYDAY=1MO,3FR;BYHOUR=9", "2027-01-01", False),
    ("FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=31;BYHOUR=12", None, True),
    ("FREQ=YEARLY;INTERVAL=2;BYMONTH=6;BYMONTHDAY=30", "2027-01-01", True),
    ("FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO;BYHOUR=9", "2026-12-28", False),
    ("FREQ=DAILY;BYHOUR=9;UNTIL=20270403", "2027-03-26", True),
    ("FREQ=WEEKLY;BYDAY=SU;BYHOUR=9;COUNT=4", "2027-03-14", True),
]


def test_schedules_fire_exactly_when_the_rule_occurs(tmp_path):
    """Each rule's schedule, as created: its next action times are dateutil's occurrences, or a superset the sweep
    narrows to exactly them."""

    async def next_times() -> tuple[dt.datetime, list[list[dt.datetime]]]:
        with DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()) as server:
            client = await Client.connect(server.address)
            now = dt.datetime.now(dt.timezone.utc)
            out = []
            for i, (rule, starts, _) in enumerate(RULES):
                action = ScheduleActionStartWorkflow("TailorSweep", {}, id=f"sweep-{i}", task_queue="nowhere")
                handle = await client.create_schedule(f"rule-{i}", Schedule(action=action, spec=schedule_spec(schedule_plan(rule, starts, BERLIN)),
                                                                            state=ScheduleState(paused=True)))
                out.append((await handle.describe()).info.next_action_times)
            return now, out

    now, fired = asyncio.run(next_times())
    assert [schedule_plan(rule, starts, BERLIN).exact for rule, starts, _ in RULES] == [exact for _, _, exact in RULES]
    for (rule, starts, exact), times in zip(RULES, fired):
        occurrences = parse(rule, starts, BERLIN)
        assert times, rule
        if exact:
            expected = list(occurrences.xafter(now, count=10))
            assert times == expected, f"{rule}: Temporal {[str(t) for t in times]} != dateutil {[str(t) for t in expected]}"
        else:
            kept = [t for t in times if is_occurrence(rule, starts, BERLIN, t)]
            expected = occurrences.between(now, times[-1], inc=True)
            assert kept and kept == expected, f"{rule}: kept {[str(t) for t in kept]} != dateutil {[str(t) for t in expected]}"
            assert len(kept) < len(times)  # the superset really is filtered


REVIEW = {
    "calendar.yaml": "kind: calendar\nname: default\ntimezone: Europe/Berlin\nworking_hours: {mon-fri: '09:00-17:00'}\n",
    "contract.yaml": "kind: entity\nname: contract\nfields:\n  reference: {type: string, required: true}\n",
    "review.yaml": """
        kind: process
        name: review
        entity: contract
        triggers:
          # every other Monday: the schedule fires every Monday and the sweep keeps every second one
          - {schedule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=9", starts: 2026-09-07, for_each: contract}
          # the last Friday of the month: the schedule fires on Fridays from the 22nd and the sweep keeps the last
          - {schedule: "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=9", for_each: contract}
        steps:
          - {id: review, title: "Review {{ record.reference }}"}
        """,
}
# the schedules' candidate days in September and October 2026, and the occurrences among them
MONDAYS = ["2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28", "2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26"]
FRIDAYS = ["2026-09-25", "2026-10-23", "2026-10-30"]
OCCURRENCES = ["2026-09-07", "2026-09-21", "2026-10-05", "2026-10-19", "2026-09-25", "2026-10-30"]


def test_filtered_rules_start_processes_only_on_their_occurrence_days(packs, tmp_path):
    compiled = compile_model(load([packs.write("r", REVIEW)]))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    with engine.begin() as conn:
        contract = records.create_record(conn, compiled, "contract", {"reference": "C-1"}, None)
    berlin = ZoneInfo(BERLIN)

    async def scenario() -> dict[str, list[str]]:
        with DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()) as server:
            client = await Client.connect(server.address)
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(client, engine, compiled, "recurrence", MailSettings(), pool):
                    sids = await sync_schedules(client, compiled, "recurrence")
                    for sid in sids:
                        handle = client.get_schedule_handle(sid)
                        await handle.pause()  # only the backfill below runs
                        # September and October 2026 as if the worker had run then
                        await handle.backfill(ScheduleBackfill(dt.datetime(2026, 9, 1, tzinfo=berlin), dt.datetime(2026, 11, 1, tzinfo=berlin),
                                                               overlap=ScheduleOverlapPolicy.ALLOW_ALL))
                    sweeps: dict[str, list[str]] = {}
                    for _ in range(120):
                        async for w in client.list_workflows("WorkflowType = 'TailorSweep'"):
                            if w.id not in sweeps:
                                sweeps[w.id] = await client.get_workflow_handle(w.id, run_id=w.run_id).result()
                        if len(sweeps) >= len(MONDAYS) + len(FRIDAYS):
                            break
                        await asyncio.sleep(0.5)
                    for _ in range(120):  # the started processes write their rows
                        with engine.connect() as conn:
                            if conn.execute(sa.select(sa.func.count()).select_from(process_instances)).scalar() >= len(OCCURRENCES):
                                break
                        await asyncio.sleep(0.5)
                    for sid in sids:
                        await client.get_schedule_handle(sid).delete()
                    return sweeps

    sweeps = asyncio.run(scenario())
    # a sweep's id is tailor-sweep-PROCESS-TRIGGER-SCHEDULEDTIME (UTC); it returns the processes it started
    at = {wid: dt.datetime.fromisoformat(wid[-20:].replace("Z", "+00:00")).astimezone(ZoneInfo(BERLIN)) for wid in sweeps}
    assert {t.strftime("%H:%M") for t in at.values()} == {"09:00"}  # on both sides of the 25 October change
    ran = {(wid.split("-")[3], at[wid].date().isoformat()): started for wid, started in sweeps.items()}
    assert sorted(ran) == sorted([("0", d) for d in MONDAYS] + [("1", d) for d in FRIDAYS])
    wid = f"review/schedule-{{}}-contract-{contract.id}"
    assert {day: started for (_, day), started in ran.items() if started} == {d: [wid.format(d)] for d in OCCURRENCES}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(process_instances.c.workflow_id, process_instances.c.record_id)).all()
    assert sorted(rows) == sorted((wid.format(d), contract.id) for d in OCCURRENCES)
