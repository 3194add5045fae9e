"""Business time: working hours, time zones and public holidays.

Pure and deterministic, so Temporal workflows can compute absolute due times
from a compiled calendar spec (see `compiler.calendar_spec`).
"""
from __future__ import annotations

import bisect
import datetime as dt
from functools import lru_cache
from typing import Mapping
from zoneinfo import ZoneInfo

import holidays as holidays_lib

MAX_DAYS_SEARCHED = 3660  # a calendar with no working time in ten years is broken


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[dt.date]:
    return frozenset(holidays_lib.country_holidays(country, subdiv=subdivision, years=year).keys())


class BusinessCalendar:
    """Working periods per weekday in a time zone, minus public and explicit holidays."""

    def __init__(self, spec: Mapping):
        self.name = spec["name"]
        self.tz = ZoneInfo(spec["timezone"])
        self.periods: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
        for p in spec["working_hours"]:
            self.periods[p["weekday"]].append((p["start"], p["end"]))
        for day in self.periods.values():
            day.sort()
        hol = spec.get("holidays") or {}
        self.country, self.subdivision = hol.get("country"), hol.get("subdivision")
        self.dates = frozenset(dt.date.fromisoformat(d) for d in hol.get("dates", ()))

    def is_holiday(self, day: dt.date) -> bool:
        if day in self.dates:
            return True
        return bool(self.country) and day in _public_holidays(self.country, self.subdivision, day.year)

    def periods_on(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """Working periods of a local date as UTC datetimes (empty on holidays); UTC keeps DST days exact."""
        if self.is_holiday(day):
            return []
        return [(self._utc(day, start), self._utc(day, end)) for start, end in self.periods[day.weekday()]]

    def _utc(self, day: dt.date, minute: int) -> dt.datetime:
        """The instant of a local wall-clock minute of `day`; minutes inside a DST gap move forward."""
        day, minute = day + dt.timedelta(days=minute // 1440), minute % 1440
        naive = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
        return naive.replace(tzinfo=self.tz).astimezone(dt.timezone.utc)

    def next_working_instant(self, when: dt.datetime) -> dt.datetime:
        """`when` itself if it is working time, else the start of the next working period (UTC)."""
        now = when.astimezone(dt.timezone.utc)
        day = now.astimezone(self.tz).date() - dt.timedelta(days=1)  # a period may start the evening before
        for _ in range(MAX_DAYS_SEARCHED):
            for start, end in self.periods_on(day):
                if now < end:
                    return max(now, start)
            day += dt.timedelta(days=1)
        raise ValueError(f"calendar '{self.name}' has no working time")

    def add_business_hours(self, when: dt.datetime, hours: float) -> dt.datetime:
        remaining = dt.timedelta(hours=hours)
        now = self.next_working_instant(when)
        day = now.astimezone(self.tz).date() - dt.timedelta(days=1)
        for _ in range(MAX_DAYS_SEARCHED):
            for start, end in self.periods_on(day):
                if end <= now:
                    continue
                begin = max(start, now)
                available = end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += dt.timedelta(days=1)
        raise ValueError(f"calendar '{self.name}' has no working time")

    def add_business_days(self, when: dt.datetime, days: int) -> dt.datetime:
        """The same local time of day `days` working days later, kept within that day's working hours."""
        start = self.next_working_instant(when)
        local = start.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        day = local.date()
        counted = 0
        for _ in range(MAX_DAYS_SEARCHED):
            if counted == days:
                break
            day += dt.timedelta(days=1)
            if self.periods_on(day):
                counted += 1
        else:
            raise ValueError(f"calendar '{self.name}' has no working time")
        periods = self.periods_on(day)
        target = self._utc(day, minute) + dt.timedelta(seconds=local.second)
        return min(max(target, periods[0][0]), periods[-1][1])

    def add(self, when: dt.datetime, duration: Mapping) -> dt.datetime:
        """Add a compiled duration ({amount, unit}) to an aware datetime; returns UTC."""
        unit, amount = duration["unit"], duration["amount"]
        if unit == "seconds":
            return (when + dt.timedelta(seconds=amount)).astimezone(dt.timezone.utc)
        if unit == "business_hours":
            return self.add_business_hours(when, amount)
        if unit == "business_days":
            return self.add_business_days(when, amount)
        raise ValueError(f"unknown duration unit {unit!r}")

    def subtract(self, when: dt.datetime, duration: Mapping) -> dt.datetime:
        """Reminders: a time before `when` (calendar time only for business units, approximated in hours)."""
        unit, amount = duration["unit"], duration["amount"]
        seconds = amount * {"seconds": 1, "business_hours": 3600, "business_days": 86400}[unit]
        return (when - dt.timedelta(seconds=seconds)).astimezone(dt.timezone.utc)

    def clock(self, start: dt.datetime, end: dt.datetime) -> "WorkingClock":
        """Working time between instants in [start, end], answered in O(log n) each (see `WorkingClock`)."""
        first = start.astimezone(self.tz).date() - dt.timedelta(days=1)  # a period may start the evening before
        last = end.astimezone(self.tz).date() + dt.timedelta(days=1)
        periods = []
        day = first
        while day <= last:
            periods.extend(self.periods_on(day))
            day += dt.timedelta(days=1)
        return WorkingClock(periods)


class WorkingClock:
    """Working seconds between two instants, for many pairs at once (reports measure thousands of tasks).

    The working periods of a range of days with the working seconds before each, so the working time up
    to an instant is a binary search and a subtraction, not a walk over the days in between.
    """

    def __init__(self, periods: list[tuple[dt.datetime, dt.datetime]]):
        self.starts = [s.timestamp() for s, _ in periods]
        self.ends = [e.timestamp() for _, e in periods]
        self.before: list[float] = []
        total = 0.0
        for s, e in zip(self.starts, self.ends):
            self.before.append(total)
            total += e - s
        self.total = total

    def _upto(self, t: float) -> float:
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.before[i] + min(t, self.ends[i]) - self.starts[i]

    def seconds_between(self, a: dt.datetime, b: dt.datetime) -> float:
        """Working seconds from `a` to `b` (0 when b is not after a)."""
        return self.seconds_between_epochs(a.timestamp(), b.timestamp())

    def seconds_between_epochs(self, a: float, b: float) -> float:
        """The same for moments given as seconds since the epoch."""
        return max(0.0, self._upto(b) - self._upto(a))
