"""Business time on real calendars: weekends, public holidays, time zones, DST."""
import datetime as dt

import pytest

from engine.calendars import BusinessCalendar

UTC = dt.timezone.utc
OFFICE = {"name": "office", "timezone": "Europe/London",
          "working_hours": [{"weekday": d, "start": 9 * 60, "end": 17 * 60 + 30} for d in range(5)],
          "holidays": {"country": "GB", "subdivision": "ENG", "dates": ["2026-12-24"]}}
ALWAYS = {"name": "always", "timezone": "Europe/London", "working_hours": [{"weekday": d, "start": 0, "end": 1440} for d in range(7)]}
NEW_YORK = {**OFFICE, "name": "ny", "timezone": "America/New_York", "holidays": {"country": "US", "dates": []}}


def at(*args, tz=UTC):
    return dt.datetime(*args, tzinfo=tz)


@pytest.mark.parametrize("start, duration, due", [
    # Friday 16:00 + 2 business days = Tuesday 16:00 (the weekend does not count)
    (at(2026, 11, 20, 16), {"unit": "business_days", "amount": 2}, at(2026, 11, 24, 16)),
    # Friday 16:00 + 4 business hours: 1.5 h on Friday, 2.5 h on Monday from 09:00
    (at(2026, 11, 20, 16), {"unit": "business_hours", "amount": 4}, at(2026, 11, 23, 11, 30)),
    # Saturday night counts from Monday 09:00
    (at(2026, 11, 21, 23), {"unit": "business_hours", "amount": 1}, at(2026, 11, 23, 10)),
    # 24 Dec (explicit), 25-26 Dec (public + weekend), 28 Dec (Boxing Day substitute) are not working days
    (at(2026, 12, 23, 10), {"unit": "business_days", "amount": 1}, at(2026, 12, 29, 10)),
    # across the spring DST change the local time of day is kept: 12:00 GMT Friday -> 12:00 BST Monday
    (at(2026, 3, 27, 12), {"unit": "business_days", "amount": 1}, at(2026, 3, 30, 11)),
    # calendar time ignores the calendar
    (at(2026, 11, 21, 23), {"unit": "seconds", "amount": 3600}, at(2026, 11, 22, 0)),
])
def test_office_calendar(start, duration, due):
    assert BusinessCalendar(OFFICE).add(start, duration) == due


def test_round_the_clock_calendar_counts_real_hours_across_dst():
    # 29 March 2026 has 23 hours in London: 24 business hours from midnight end at 01:00 local next day
    start = at(2026, 3, 29, 0)  # 00:00 GMT = 00:00 local
    assert BusinessCalendar(ALWAYS).add(start, {"unit": "business_hours", "amount": 24}) == at(2026, 3, 30, 0)


def test_time_zone_of_the_calendar_decides_the_working_day():
    # 14:00 UTC on Friday is 09:00 in New York (EST): 8.5 working hours remain that day
    due = BusinessCalendar(NEW_YORK).add(at(2026, 11, 20, 14), {"unit": "business_hours", "amount": 8.5})
    assert due == at(2026, 11, 20, 22, 30)
    # Thanksgiving (26 Nov 2026) is skipped
    assert BusinessCalendar(NEW_YORK).add(at(2026, 11, 25, 15), {"unit": "business_days", "amount": 1}) == at(2026, 11, 27, 15)
