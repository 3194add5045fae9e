"""What starts processes: form submissions, record changes, recurrences and people (by hand, from a record's page).

Deciding which processes an event starts is pure (`*_starts`). The record service and
form submissions enqueue them in the outbox (`runtime.outbox`) with a key derived from
the event (`record_key`, the submission id), so a retried request or a replayed change
never starts a process twice.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from engine import expressions
from engine.compiler import CompiledModel


def record_starts(compiled: CompiledModel, entity: str, event: str, record: Mapping[str, Any], before: Mapping[str, Any] | None,
                  today: dt.date | None = None) -> list[str]:
    """Processes whose record trigger matches a record being created or changed (their `when` holds)."""
    before = dict(before or {})
    changed = sorted(k for k in set(record) | set(before) if record.get(k) != before.get(k)) if event == "changed" else sorted(record)
    context = {"record": dict(record), "before": before, "changed": changed, "today": today or dt.date.today(),
               "now": dt.datetime.now(dt.timezone.utc)}
    out = []
    for name, spec in compiled.process_specs.items():
        for t in spec["triggers"]:
            if t["kind"] == "record" and t["entity"] == entity and event in t["on"]:
                if t["when"] is None or holds(t["when"], context):
                    out.append(name)
                    break
    return out


def record_key(entity: str, record_id: int, row_version: int, event: str) -> str:
    """The start key of a record event: one per record version, so a replayed change finds its start."""
    return f"{entity}-{record_id}-v{row_version}-{event}"


def form_starts(compiled: CompiledModel, form: str) -> list[str]:
    """Processes a submission of `form` starts through their form trigger."""
    return list(compiled.form_triggers.get(form, ()))


def manual_starts(compiled: CompiledModel, entity: str) -> list[str]:
    """Processes someone may start by hand on a record of `entity` (a manual trigger; a process without triggers has one)."""
    return [name for name, spec in compiled.process_specs.items()
            if spec.get("entity") == entity and any(t["kind"] == "manual" for t in spec["triggers"])]


def holds(condition: str, context: Mapping[str, Any]) -> bool:
    """A condition (a record trigger's or a form action's `when`); one that cannot be evaluated on what it is given (a
    comparison with an empty field) counts as false, as a step's does."""
    try:
        return bool(expressions.evaluate(condition, context))
    except Exception:  # a condition that cannot be evaluated on this record does not start anything
        return False
