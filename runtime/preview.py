"""What the engine will compute, worked out without running anything: a due time in business time, the next
runs of a recurring process. `tailor calendar due` and `tailor schedule preview` print these.

Both go through the code the running system uses, not a copy: a due time is the interpreter's `Calendar.add`
on the compiled calendar spec (what a step's `due:` runs in the workflow), and the runs of a schedule are the
occurrences of `engine.recurrence.parse` in the compiled spec's time zone (what the sweep keeps, see
`runtime.recurrence`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from engine import durations, recurrence
from engine.compiler import CompiledModel, calendar_spec
from engine.errors import TailorError
from engine.model import Model

from .interpreter import Calendar


class PreviewError(TailorError):
    """An unknown calendar or process, or a date or duration that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Due:
    start: dt.datetime  # aware, in the calendar's zone
    at: dt.datetime  # aware, in the calendar's zone
    duration: str
    calendar: str
    label: str


@dataclass(frozen=True)
class Schedule:
    """One schedule trigger of a process, and its next runs (aware, in the process calendar's zone)."""

    rule: str
    starts: str | None
    timezone: str
    for_each: str | None
    when: str | None
    runs: tuple[dt.datetime, ...]


def moment(text: str, zone: ZoneInfo) -> dt.datetime:
    """'2026-12-01 18:00' (local to `zone`) or an ISO time with its offset, as an aware datetime."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise PreviewError(f"'{text}' is not a date and time: expected e.g. '2026-12-01 18:00' (in {zone.key}) "
                           f"or '2026-12-01T18:00:00+01:00'") from None
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)


def due(model: Model, calendar: str, start: str, duration: str) -> Due:
    """When something that starts at `start` and takes `duration` is due on the calendar, as a step's `due:` is."""
    cal = model.calendars.get(calendar)
    if cal is None:
        raise PreviewError(f"unknown calendar '{calendar}' (known: {', '.join(sorted(model.calendars)) or 'none defined'})")
    zone = ZoneInfo(cal.timezone)
    try:
        length = durations.parse_duration(duration)
    except durations.DurationError as exc:
        raise PreviewError(str(exc)) from None
    begin = moment(start, zone)
    try:
        at = Calendar(calendar_spec(cal)).add(begin, length.to_json())
    except ValueError as exc:  # a calendar with no working time in ten years
        raise PreviewError(str(exc)) from None
    return Due(begin, at.astimezone(zone), duration, cal.name, cal.label)


def schedules(compiled: CompiledModel, process: str, count: int, after: str | None = None,
              now: dt.datetime | None = None) -> list[Schedule]:
    """The next `count` runs of each schedule trigger of the process, after `after` (local to its calendar) or now."""
    spec = compiled.process_specs.get(process)
    if spec is None:
        raise PreviewError(f"unknown process '{process}' (known: {', '.join(sorted(compiled.process_specs)) or 'none defined'})")
    triggers = [t for t in spec["triggers"] if t["kind"] == "schedule"]
    if not triggers:
        kinds = ", ".join(t["kind"] for t in spec["triggers"])
        raise PreviewError(f"process '{process}' has no schedule trigger (its triggers: {kinds})")
    timezone = spec["calendar"]["timezone"]  # the zone its schedules run in (runtime.recurrence.sync_schedules)
    zone = ZoneInfo(timezone)
    since = moment(after, zone) if after else (now or dt.datetime.now(dt.timezone.utc)).astimezone(zone)
    out = []
    for t in triggers:
        rule = recurrence.parse(t["rrule"], t.get("starts"), timezone)
        runs: list[dt.datetime] = []
        at = rule.after(since, inc=True)
        while at is not None and len(runs) < count:
            runs.append(at)
            at = rule.after(at)
        out.append(Schedule(t["rrule"], t.get("starts"), timezone, t["for_each"], t["when"], tuple(runs)))
    return out
