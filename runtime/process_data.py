"""What a process instance takes and keeps: its input, staff actions and step states.

Plain data, imported by the interpreter workflow through the sandbox's passthrough:
loaded once per worker rather than re-executed for every workflow run. No
`from __future__ import annotations` here on purpose: real annotations spare the
payload converter from evaluating strings each time it builds one of these.
"""
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class ProcessInput:
    spec: dict
    entity: str | None = None
    record_id: int | None = None
    record: dict = field(default_factory=dict)  # the record's data when the process started, for templates
    inputs: dict = field(default_factory=dict)
    started_by: int | None = None
    started_at: str | None = None  # ISO time; defaults to the workflow's start
    announce: bool = False  # send webhook events (only when receivers are configured)


@dataclass
class TaskAction:
    """A staff action on a step: complete (with form data), decide (approve/reject), reassign, comment."""

    step: str
    user_id: int
    data: dict = field(default_factory=dict)
    approve: bool | None = None
    to_user: int | None = None
    comment: str = ""


@dataclass
class StepState:
    status: str = "pending"  # pending, open, awaiting_approval, done, rejected, skipped
    task_id: int | None = None
    assignee_id: int | None = None
    group: str | None = None
    due_at: str | None = None
    outcome: str | None = None
    data: dict = field(default_factory=dict)
    completed_by: int | None = None
    completed_at: str | None = None
    alerts_raised: list[int] = field(default_factory=list)


def walk(steps: list[dict]) -> Iterator[dict]:
    """Every step of a spec, branches' steps included, in order."""
    for s in steps:
        yield s
        for branch in s.get("branches", ()):
            yield from walk(branch["steps"])

