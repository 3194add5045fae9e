"""Recurring processes: an iCalendar RRULE becomes a Temporal Schedule that runs a sweep.

Each run of the sweep workflow lists the `for_each` records, keeps those whose
`when` holds that day, and starts the process for each with an id made of the
process, the occurrence's day and the record, so a retried or overlapping run starts
nothing twice. A rule the schedule calendar cannot express exactly fires on a superset
of its occurrences (engine/recurrence.py); its sweep carries the rule and starts
nothing at an instant dateutil does not name an occurrence.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from engine import expressions
    from engine.recurrence import is_occurrence, local_day, schedule_plan

    from .workflows import ProcessWorkflow, process_input

@dataclass
class SweepInput:
    spec: dict
    for_each: str | None
    when: str | None
    task_queue: str
    announce: list[str] = field(default_factory=list)  # the webhook events someone receives
    # set only for rules the schedule runs as a superset: the sweep keeps the rule's occurrences
    rrule: str | None = None
    starts: str | None = None
    timezone: str = "UTC"


# Temporal stamps each scheduled run with its nominal time, also for catch-up and backfill runs
SCHEDULED_AT = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


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
        at = workflow.info().typed_search_attributes.get(SCHEDULED_AT) or workflow.now()
        with workflow.unsafe.sandbox_unrestricted():
            if inp.rrule and not is_occurrence(inp.rrule, inp.starts, inp.timezone, at):
                return []
            today = local_day(at, inp.timezone)
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
                    ProcessWorkflow.run, process_input(spec=inp.spec, entity=inp.for_each, record_id=rec["id"], record=rec["data"], announce=inp.announce),
                    id=wid, task_queue=inp.task_queue, parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
                started.append(wid)
            except WorkflowAlreadyStartedError:
                pass
        return started


async def sync_schedules(client, compiled, task_queue: str, announce: Sequence[str] = ()) -> list[str]:
    """Create or update one Temporal Schedule per recurring trigger; returns their ids."""
    from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError, ScheduleUpdate

    ids = []
    for name, spec in compiled.process_specs.items():
        for i, t in enumerate(t for t in spec["triggers"] if t["kind"] == "schedule"):
            tz, starts = spec["calendar"]["timezone"], t.get("starts")
            plan = schedule_plan(t["rrule"], starts, tz)
            rule = {} if plan.exact else {"rrule": t["rrule"], "starts": starts}
            schedule = Schedule(
                action=ScheduleActionStartWorkflow(SweepWorkflow.run, SweepInput(spec, t["for_each"], t["when"], task_queue, announce, timezone=tz, **rule),
                                                   id=f"tailor-sweep-{name}-{i}", task_queue=task_queue),
                spec=schedule_spec(plan))
            sid = f"tailor-{name}-{i}"
            try:
                await client.create_schedule(sid, schedule)
            except ScheduleAlreadyRunningError:
                await client.get_schedule_handle(sid).update(lambda _: ScheduleUpdate(schedule=schedule))
            ids.append(sid)
    return ids


def schedule_spec(plan):
    """The Temporal ScheduleSpec of a schedule plan."""
    from temporalio.client import ScheduleCalendarSpec, ScheduleRange, ScheduleSpec

    cal = ScheduleCalendarSpec(**{k: [ScheduleRange(*r) for r in ranges] for k, ranges in plan.calendar.items()})
    return ScheduleSpec(calendars=[cal], start_at=plan.start_at, end_at=plan.end_at, time_zone_name=plan.time_zone)
