"""Recurrences: which iCalendar RRULEs a Temporal schedule can run, as schedule calendar fields."""
from __future__ import annotations

from .errors import TailorError

DAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


class RecurrenceError(TailorError):
    """An RRULE that a Temporal schedule cannot express."""


def rrule_calendar(rrule: str) -> dict:
    """The ScheduleCalendarSpec fields for an RRULE (FREQ DAILY/WEEKLY/MONTHLY/YEARLY, INTERVAL 1, BY* lists)."""
    parts = dict(p.split("=", 1) for p in rrule.upper().removeprefix("RRULE:").split(";") if "=" in p)
    freq = parts.get("FREQ")
    if freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        raise RecurrenceError(f"recurrence '{rrule}': FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY for a schedule")
    if parts.get("INTERVAL", "1") != "1" or "COUNT" in parts or "UNTIL" in parts or "BYSETPOS" in parts:
        raise RecurrenceError(f"recurrence '{rrule}': INTERVAL, COUNT, UNTIL and BYSETPOS are not supported by schedules")

    def ints(key: str, default: list[int]) -> list[int]:
        return [int(x) for x in parts[key].split(",")] if key in parts else default

    spec = {"minute": ints("BYMINUTE", [0]), "hour": ints("BYHOUR", [0]), "day_of_week": list(range(7)),
            "day_of_month": list(range(1, 32)), "month": list(range(1, 13))}
    if "BYDAY" in parts:
        try:
            # Temporal counts days of the week from Sunday = 0
            spec["day_of_week"] = sorted((DAYS[d[-2:]] + 1) % 7 for d in parts["BYDAY"].split(","))
        except KeyError:
            raise RecurrenceError(f"recurrence '{rrule}': BYDAY must list MO..SU") from None
    elif freq == "WEEKLY":
        raise RecurrenceError(f"recurrence '{rrule}': a weekly schedule needs BYDAY")
    if freq in ("MONTHLY", "YEARLY"):
        spec["day_of_month"] = ints("BYMONTHDAY", [1])
    if freq == "YEARLY":
        spec["month"] = ints("BYMONTH", [1])
    return {k: _ranges(v) for k, v in spec.items()}


def _ranges(values: list[int]) -> list[tuple[int, int]]:
    """[1, 2, 3, 5] -> [(1, 3), (5, 5)]: contiguous runs as inclusive ranges."""
    out: list[tuple[int, int]] = []
    for v in sorted(set(values)):
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out
