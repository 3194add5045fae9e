"""The interpreter's data and pure logic: what a process instance takes and keeps, and what it
computes without side effects (templates, conditions, form checks, deadlines).

`runtime/workflows.py` (the workflow: control flow, timers, writes, staff actions) imports this
module through the sandbox's passthrough, so it is loaded once per worker, even where the tests'
guarded sandbox re-imports the workflow's own module for every run (`runtime.worker.workflow_runner`):
its code runs outside the sandbox's restrictions either way. Hence the rule here: no I/O, no clock,
no randomness; the time comes in as an argument. No
`from __future__ import annotations` on purpose: real annotations spare the payload converter
from evaluating strings each time it builds one of these classes.
"""
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from temporalio import workflow

from engine import expressions, validation
from engine.calendars import BusinessCalendar


@dataclass
class ProcessInput:
    spec: dict
    entity: str | None = None
    record_id: int | None = None
    record: dict = field(default_factory=dict)  # the record's data when the process started, for templates
    inputs: dict = field(default_factory=dict)
    started_by: int | None = None
    started_at: str | None = None  # ISO time; defaults to the workflow's start
    announce: list[str] = field(default_factory=list)  # the webhook events someone receives (none: send nothing)
    # a run that continues an instance moved to this spec (runtime/instancemigration.py): {states: {step: StepState
    # fields}, steps: published results, project, project_id, at: when it moved}
    resume: dict | None = None
    # the behaviours added since runs first ran that this run has from its start (workflows.FEATURES, listed by the code
    # that started it): it takes them without a workflow.patched marker each. Empty in a run started before they were
    # listed, which asks workflow.patched, as it did when it was recorded.
    features: list[str] = field(default_factory=list)


@dataclass
class TaskAction:
    """A staff action on a step: complete (with form data), decide (approve/reject), reassign, comment."""

    step: str
    user_id: int
    data: dict = field(default_factory=dict)
    approve: bool | None = None
    to_user: int | None = None
    to_name: str = ""  # the new assignee's name: set once `runtime.taskactions` has checked they may hold the task
    comment: str = ""  # a comment; on a decision, the approver's note or (rejecting) their reason
    task_id: int | None = None  # the task acted on: which approver's task of an approval step (the others' steps have one)


@dataclass
class StepState:
    status: str = "pending"  # pending, open, awaiting_approval, done, rejected (sent back, until resubmitted), skipped
    task_id: int | None = None
    assignee_id: int | None = None
    group: str | None = None
    due_at: str | None = None
    outcome: str | None = None
    data: dict = field(default_factory=dict)
    completed_by: int | None = None
    completed_at: str | None = None
    alerts_raised: list[int] = field(default_factory=list)
    routed: str | None = None  # why the task went to a fallback holder (runtime.routing), if it did
    round: int = 1  # a task step: 2, 3, ... once sent back; an approval step: the round of decisions under way
    approvals: list[dict] = field(default_factory=list)  # an approval step's round: {task_id, assignee_id, decision}


def walk(steps: list[dict]) -> Iterator[dict]:
    """Every step of a spec, branches' steps included, in order."""
    for s in steps:
        yield s
        for branch in s.get("branches", ()):
            yield from walk(branch["steps"])



class Calendar:
    """Business-time arithmetic outside the sandbox's restrictions.

    The `holidays` package reads its translation catalogues through gettext/locale
    when a country is first used; the result is pure data, so this is deterministic.
    """

    def __init__(self, spec: Mapping):
        self.calendar = BusinessCalendar(spec)

    def add(self, when: dt.datetime, duration: dict) -> dt.datetime:
        with workflow.unsafe.sandbox_unrestricted():
            return self.calendar.add(when, duration)

    def subtract(self, when: dt.datetime, duration: dict) -> dt.datetime:
        with workflow.unsafe.sandbox_unrestricted():
            return self.calendar.subtract(when, duration)


def deadlines(step: dict, due_at: dt.datetime | None, calendar: Calendar) -> list[tuple[dt.datetime, str, dict]]:
    """A step's reminders and escalation levels as (when, "reminder" | "escalate", detail), in time order."""
    events: list[tuple[dt.datetime, str, dict]] = []
    if due_at:
        for i, r in enumerate(step.get("reminders") or ()):
            events.append((calendar.subtract(due_at, r), "reminder", {"index": i}))
        for level in step.get("escalate") or ():
            at = calendar.add(due_at, level["after_due"]) if level.get("after_due") else due_at
            events.append((at, "escalate", level))
    events.sort(key=lambda e: e[0])
    return events


def template_context(ctx: dict, step_ids: Iterator[str], now: dt.datetime) -> dict:
    """What templates and conditions see: the process context, every step (pending ones too), now and today."""
    steps = {sid: ctx["steps"].get(sid, {"outcome": "pending", "data": {}, "completed_by": None, "completed_at": None})
             for sid in step_ids}
    return {**ctx, "steps": steps, "now": now, "today": now.date()}


def render(source: str, context: dict, fallback: str) -> str:
    """A template rendered, or `fallback` (else the source) if it fails at run time: a bad template must not wedge a process."""
    try:
        # Jinja2's template cache takes a lock, which the sandbox refuses; rendering itself is deterministic
        with workflow.unsafe.sandbox_unrestricted():
            return expressions.render(source, context)
    except Exception as exc:
        workflow.logger.warning("template %r failed: %s", source, exc)
        return fallback or source


def condition(source: str, context: dict) -> bool:
    """A step's `when`, evaluated; one that fails at run time counts as false."""
    try:
        with workflow.unsafe.sandbox_unrestricted():
            return bool(expressions.evaluate(source, context))
    except Exception as exc:
        workflow.logger.warning("condition %r failed: %s; treated as false", source, exc)
        return False


def form_errors(schema: dict, data: Any) -> dict[str, str]:
    """Form data checked against the step form's JSON Schema: {field path (or "_"): message}, empty when valid."""
    with workflow.unsafe.sandbox_unrestricted():
        validator = validation.validator(schema)
        errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    return {".".join(str(p) for p in e.absolute_path) or "_": e.message for e in errors}
