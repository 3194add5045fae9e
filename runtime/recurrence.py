"""Recurring processes: an iCalendar RRULE becomes a Temporal Schedule that runs a sweep.

Each run of the sweep workflow lists the `for_each` records, keeps those whose
`when` holds that day, and starts the process for each with an id made of the
process, the day and the record, so a retried or overlapping run starts nothing twice.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from temporalio import activity, workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from engine import expressions
    from engine.recurrence import rrule_calendar

    from .workflows import ProcessInput, ProcessWorkflow

@dataclass
class SweepInput:
    spec: dict
    for_each: str | None
    when: str | None
    task_queue: str
    announce: bool = False


class SweepActivities:
    def __init__(self, engine, compiled):
        self.engine, self.compiled = engine, compiled

    @activity.defn(name="tailor.list_records")
    def list_records(self, entity: str) -> list[dict]:
        import sqlalchemy as sa

        table = self.compiled.metadata.tables[entity]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.id, table.c.data).order_by(table.c.id)).all()
        return [{"id": r.id, "data": r.data or {}} for r in rows]


@workflow.defn(name="TailorSweep")
class SweepWorkflow:
    @workflow.run
    async def run(self, inp: SweepInput) -> list[str]:
        today = workflow.now().date()
        started: list[str] = []
        if inp.for_each is None:
            targets = [{"id": None, "data": {}}]
        else:
            targets = await workflow.execute_activity("tailor.list_records", inp.for_each, start_to_close_timeout=dt.timedelta(minutes=5))
        for rec in targets:
            if inp.when:
                with workflow.unsafe.sandbox_unrestricted():
                    try:
                        holds = bool(expressions.evaluate(inp.when, {"record": rec["data"], "today": today, "now": workflow.now()}))
                    except Exception:
                        holds = False
                if not holds:
                    continue
            wid = f"{inp.spec['name']}/schedule-{today.isoformat()}-{inp.for_each or 'run'}-{rec['id'] or 0}"
            try:
                await workflow.start_child_workflow(
                    ProcessWorkflow.run, ProcessInput(spec=inp.spec, entity=inp.for_each, record_id=rec["id"], record=rec["data"], announce=inp.announce),
                    id=wid, task_queue=inp.task_queue, parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
                started.append(wid)
            except WorkflowAlreadyStartedError:
                pass
        return started


async def sync_schedules(client, compiled, task_queue: str, announce: bool = False) -> list[str]:
    """Create or update one Temporal Schedule per recurring trigger; returns their ids."""
    from temporalio.client import (Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError, ScheduleCalendarSpec,
                                   ScheduleRange, ScheduleSpec, ScheduleUpdate)

    ids = []
    for name, spec in compiled.process_specs.items():
        for i, t in enumerate(t for t in spec["triggers"] if t["kind"] == "schedule"):
            fields = rrule_calendar(t["rrule"])
            cal = ScheduleCalendarSpec(second=[ScheduleRange(0)], **{k: [ScheduleRange(a, b) for a, b in vals] for k, vals in fields.items()})
            schedule = Schedule(
                action=ScheduleActionStartWorkflow(SweepWorkflow.run, SweepInput(spec, t["for_each"], t["when"], task_queue, announce),
                                                   id=f"tailor-sweep-{name}-{i}", task_queue=task_queue),
                spec=ScheduleSpec(calendars=[cal], time_zone_name=spec["calendar"]["timezone"]))
            sid = f"tailor-{name}-{i}"
            try:
                await client.create_schedule(sid, schedule)
            except ScheduleAlreadyRunningError:
                await client.get_schedule_handle(sid).update(lambda _: ScheduleUpdate(schedule=schedule))
            ids.append(sid)
    return ids
