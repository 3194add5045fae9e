"""Recurrences: iCalendar RRULEs read by dateutil, and the Temporal schedule calendar that runs each one.

A rule is read in the process calendar's time zone, from its `starts:` (DTSTART) or, without
one, from local midnight on 1 January 2026. Where a Temporal schedule calendar can say exactly
what the rule says, the schedule fires on the occurrences themselves (`SchedulePlan.exact`).
Where it cannot (BYSETPOS, BYWEEKNO, BYYEARDAY, negative BYMONTHDAY, BYDAY counted from the end
such as -1FR, INTERVAL on DAILY or WEEKLY rules, and the INTERVALs that do not divide a year), the
calendar fires on every candidate day at the rule's time, a superset of the occurrences, and the
sweep starts processes only at the instants dateutil names occurrences (`is_occurrence`).
Calendars rather than fixed-length interval specs, because an interval of 14 x 24 hours drifts an
hour off the wall clock at every daylight-saving change.
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

from dateutil import rrule as du

from .errors import TailorError

FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DEFAULT_START = dt.datetime(2026, 1, 1)  # local midnight: without 'starts', a rule runs at 00:00 unless BYHOUR says otherwise
LAST_YEAR = 2100  # Temporal's calendar years end here
EXAMPLE = "e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'"

# part -> (lowest, highest, zero allowed) for the numeric lists; negative values count from the end
_LISTS = {"BYMONTH": (1, 12, False), "BYMONTHDAY": (-31, 31, False), "BYHOUR": (0, 23, True), "BYMINUTE": (0, 59, True),
          "BYSECOND": (0, 59, True), "BYSETPOS": (-366, 366, False), "BYWEEKNO": (-53, 53, False), "BYYEARDAY": (-366, 366, False)}
_PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST", *_LISTS)
_UNTIL = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")
_BYDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")


class RecurrenceError(TailorError):
    """A recurrence rule or start that cannot run; `field` is 'rule' or 'starts'."""

    def __init__(self, message: str, field: str = "rule"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SchedulePlan:
    """What a Temporal schedule needs for one rule: calendar ranges (start, end, step), bounds, zone."""

    calendar: dict[str, list[tuple[int, int, int]]]
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    time_zone: str
    exact: bool  # False: the calendar fires on a superset and the sweep keeps only occurrences


@lru_cache(maxsize=256)  # the sweep asks again at every run; rules are immutable
def parse(rule: str, starts: str | None, timezone: str) -> du.rrule:
    """The dateutil rule, DTSTART in the time zone; RecurrenceError says plainly what is wrong."""
    zone = zoneinfo.ZoneInfo(timezone)
    start = _start(starts)
    parts = _parts(rule)
    _check(rule, parts, starts)
    until = _until(rule, parts.pop("UNTIL", None), zone)
    text = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        parsed = du.rrulestr(text, dtstart=start.replace(tzinfo=zone))
        if until is not None:
            parsed = parsed.replace(until=until)
    except (ValueError, TypeError) as exc:  # what the checks above do not foresee
        raise RecurrenceError(f"recurrence '{rule}' is not a valid iCalendar RRULE: {exc} ({EXAMPLE})") from None
    assert isinstance(parsed, du.rrule)
    # a rule like FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30 never occurs; dateutil would search until the year 9999
    horizon = (start + dt.timedelta(days=3653)).replace(tzinfo=zone)
    probe = parsed.replace(count=None, until=min(until, horizon) if until else horizon)
    if next(iter(probe), None) is None:
        raise RecurrenceError(f"recurrence '{rule}' has no occurrence in the ten years from {start:%Y-%m-%d}"
                              f"{' before its UNTIL' if until else ''}: check its BY* parts")
    return parsed


def _check(rule: str, parts: dict[str, str], starts: str | None) -> None:
    """Each part's values, said plainly; dateutil's own messages name little more than the part."""
    freq = parts.get("FREQ")
    if freq is None:
        raise RecurrenceError(f"recurrence '{rule}' has no FREQ: start it with FREQ=DAILY, WEEKLY, MONTHLY or YEARLY ({EXAMPLE})")
    if freq not in FREQS:
        why = " (a schedule starts each record's process at most once a day)" if freq in ("HOURLY", "MINUTELY", "SECONDLY") else ""
        raise RecurrenceError(f"recurrence '{rule}': FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY, found '{freq}'{why}")
    for key in ("INTERVAL", "COUNT"):
        if key in parts and not (parts[key].isdigit() and int(parts[key]) >= 1):
            raise RecurrenceError(f"recurrence '{rule}': {key} must be a whole number from 1, found '{parts[key]}'")
    for key, (low, high, zero) in _LISTS.items():
        for v in parts[key].split(",") if key in parts else ():
            if not re.fullmatch(r"[+-]?\d+", v) or not low <= int(v) <= high or (int(v) == 0 and not zero):
                raise RecurrenceError(f"recurrence '{rule}': {key} takes numbers from {low if low >= 0 else 1} to {high}"
                                      f"{' or from -1 to ' + str(low) + ' counting from the end' if low < 0 else ''}, found '{v}'")
    for v in parts["BYDAY"].split(",") if "BYDAY" in parts else ():
        m = _BYDAY.fullmatch(v)
        if not m or (m.group(1) and not 1 <= abs(int(m.group(1))) <= 53):
            raise RecurrenceError(f"recurrence '{rule}': BYDAY takes days MO, TU, WE, TH, FR, SA, SU, each perhaps "
                                  f"numbered like 1MO (first Monday) or -1FR (last Friday), found '{v}'")
        if m.group(1) and freq not in ("MONTHLY", "YEARLY"):
            raise RecurrenceError(f"recurrence '{rule}': a numbered day like '{v}' only means something in a MONTHLY or YEARLY rule")
    if parts.get("WKST", "MO") not in DAYS:
        raise RecurrenceError(f"recurrence '{rule}': WKST must be one of {', '.join(DAYS)}, found '{parts['WKST']}'")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError(f"recurrence '{rule}' gives both COUNT and UNTIL: keep one")
    if starts is None:
        if int(parts.get("INTERVAL", "1")) > 1 or "COUNT" in parts:
            what = f"INTERVAL={parts['INTERVAL']}" if int(parts.get("INTERVAL", "1")) > 1 else f"COUNT={parts['COUNT']}"
            raise RecurrenceError(f"recurrence '{rule}': {what} counts from the first occurrence: give its date as 'starts: YYYY-MM-DD' beside the schedule")
        if freq == "WEEKLY" and "BYDAY" not in parts:
            raise RecurrenceError(f"recurrence '{rule}': a weekly rule needs BYDAY (e.g. BYDAY=MO) or a 'starts:' date whose weekday it repeats")
    times = [len(parts[k].split(",")) for k in ("BYHOUR", "BYMINUTE", "BYSECOND") if k in parts]
    if any(n > 1 for n in times):
        raise RecurrenceError(f"recurrence '{rule}' gives several times a day, but a schedule starts each record's process "
                              f"at most once a day: give one BYHOUR and one BYMINUTE")


def _parts(rule: str) -> dict[str, str]:
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if "DTSTART" in text.upper() or "\n" in text:
        raise RecurrenceError(f"recurrence '{rule}': write the rule alone, and its first occurrence as 'starts: YYYY-MM-DD'")
    parts: dict[str, str] = {}
    for part in filter(None, text.split(";")):
        key, eq, value = part.partition("=")
        key, value = key.strip().upper(), value.strip().upper()
        if not eq or not value:
            raise RecurrenceError(f"recurrence '{rule}': '{part}' is not NAME=VALUE ({EXAMPLE})")
        if key not in _PARTS:
            raise RecurrenceError(f"recurrence '{rule}': unknown part '{key}' (known: {', '.join(_PARTS)})")
        if key in parts:
            raise RecurrenceError(f"recurrence '{rule}' gives {key} twice")
        parts[key] = value
    return parts


def _start(starts: str | None) -> dt.datetime:
    if starts is None:
        return DEFAULT_START
    try:
        start = dt.datetime.fromisoformat(str(starts))
    except ValueError:
        raise RecurrenceError(f"'starts' must be a date like 2026-01-05 or a local time like 2026-01-05T09:00, found '{starts}'",
                              "starts") from None
    if start.tzinfo is not None:
        raise RecurrenceError(f"'starts: {starts}' is read in the process calendar's time zone: leave out the offset", "starts")
    return start


def _until(rule: str, value: str | None, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """UNTIL as an aware instant: a date means the end of that day and a time without Z is local."""
    if value is None:
        return None
    m = _UNTIL.fullmatch(value)
    try:
        day = dt.datetime.strptime(m.group(1), "%Y%m%d") if m else None
        at = dt.datetime.strptime(m.group(2), "%H%M%S").time() if m and m.group(2) else dt.time(23, 59, 59)
    except ValueError:
        day = None
    if day is None:
        raise RecurrenceError(f"recurrence '{rule}': UNTIL must be a date like 20261231 or a time like 20261231T170000 "
                              f"(local) or 20261231T160000Z (UTC), found '{value}'")
    return dt.datetime.combine(day, at, dt.timezone.utc if m and m.group(3) else zone)


def is_occurrence(rule: str, starts: str | None, timezone: str, at: dt.datetime) -> bool:
    """Whether the instant `at` (aware) is an occurrence of the rule."""
    r = parse(rule, starts, timezone)
    local = at.replace(microsecond=0).astimezone(zoneinfo.ZoneInfo(timezone))
    return r.after(local, inc=True) == local


def local_day(at: dt.datetime, timezone: str) -> dt.date:
    """The day the instant `at` falls on in the time zone: an occurrence's day where its rule runs."""
    return at.astimezone(zoneinfo.ZoneInfo(timezone)).date()


def schedule_plan(rule: str, starts: str | None, timezone: str) -> SchedulePlan:
    """The schedule calendar for a rule: its occurrences exactly, or a superset the sweep filters."""
    r = parse(rule, starts, timezone)
    # dateutil keeps the rule with its defaults filled in (DTSTART's time, weekday, day) in these attributes
    freq, interval, start = r._freq, r._interval, r._dtstart
    ordinals = r._bynweekday or ()  # ((weekday, n), ...) for BYDAY=1MO, -1FR
    filtered = bool(r._bysetpos or r._byweekno or r._byyearday or r._bynmonthday or ordinals)
    weekdays = set(r._byweekday or ()) | {d for d, _ in ordinals}
    cal = {"second": _runs(r._bysecond), "minute": _runs(r._byminute), "hour": _runs(r._byhour),
           "day_of_week": _runs((d + 1) % 7 for d in weekdays) if weekdays else [(0, 6, 1)],  # Temporal: Sunday = 0
           "day_of_month": _runs(r._bymonthday) if r._bymonthday and not r._bynmonthday else [(1, 31, 1)],
           "month": _runs(r._bymonth) if r._bymonth else [(1, 12, 1)], "year": []}
    if ordinals and not (r._byweekday or r._bymonthday or r._bynmonthday) and (freq == du.MONTHLY or r._bymonth):
        # the n-th weekday of a month falls in days 7n-6..7n: 1MO is a Monday in days 1-7, exactly; the n-th
        # from the end depends on the month's length, so -1FR is a Friday in days 22-31, filtered
        ns = {n for _, n in ordinals}
        cal["day_of_month"] = sorted((max(1, 7 * n - 6 if n > 0 else 29 + 7 * n), min(31, 7 * n if n > 0 else 38 + 7 * n), 1) for n in ns)
        filtered = bool(r._bysetpos or r._byweekno or r._byyearday) or min(ns) < 0 or (len(ns) > 1 and len(weekdays) > 1)
    if interval > 1:
        if freq == du.MONTHLY and 12 % interval == 0 and not r._bymonth:
            cal["month"] = [((start.month - 1) % interval + 1, 12, interval)]
        elif freq == du.YEARLY:
            cal["year"] = [(start.year, LAST_YEAR, interval)]
        else:
            filtered = True
    end = r._until
    if r._count:
        end = list(r)[-1]  # the COUNT-th occurrence: exact, and the same however often the schedule is re-synced
    return SchedulePlan(cal, start if starts is not None else None, end, timezone, not filtered)


def _runs(values) -> list[tuple[int, int, int]]:
    """[1, 2, 3, 5] -> [(1, 3, 1), (5, 5, 1)]: contiguous runs as inclusive ranges."""
    out: list[tuple[int, int, int]] = []
    for v in sorted(set(values)):
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v, 1)
        else:
            out.append((v, v, 1))
    return out
