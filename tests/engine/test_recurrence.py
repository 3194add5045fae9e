"""Recurrence rules on schedule triggers: what `tailor check` says about bad ones, and how good ones run."""
import datetime as dt
from zoneinfo import ZoneInfo

from engine.compiler import compile_model
from engine.loader import load, load_model
from engine.recurrence import is_occurrence, schedule_plan

BERLIN = ZoneInfo("Europe/Berlin")
CALENDAR = "kind: calendar\nname: default\ntimezone: Europe/Berlin\nworking_hours: {mon-fri: '09:00-17:00'}\n"


def process(*triggers: str) -> str:
    return "kind: process\nname: review\nsteps: [{id: a, title: A}]\ntriggers:\n" + "".join(f"  - {t}\n" for t in triggers)


def problems(packs, *triggers: str) -> list[str]:
    folder = packs.write("p", {"calendar.yaml": CALENDAR, "review.yaml": process(*triggers)})
    return [str(p) for p in load_model([folder])[1]]


def test_bad_rules_are_reported_where_they_are_written_with_what_is_wrong(packs):
    assert problems(
        packs,
        "{schedule: 'FREQ=DAILY;INTERVAL=2'}",
        "{schedule: 'FREQ=WEEKLY;BYDAY=MO,FUNDAY'}",
        "{schedule: 'FREQ=MONTHLY;BYMONTHDAY=32'}",
        "{schedule: 'FREQ=WEEKLY;BYDAY=-1FR'}",
        "{schedule: 'FREQ=HOURLY'}",
        "{schedule: 'BYDAY=MO'}",
        "{schedule: 'FREQ=DAILY;COUNT=3;UNTIL=20261231', starts: 2026-01-05}",
        "{schedule: 'FREQ=DAILY;UNTIL=31.12.2026'}",
        "{schedule: 'FREQ=DAILY;BYHOUR=9,17'}",
        "{schedule: 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30'}",
        "{schedule: 'FREQ=WEEKLY;INTERVAL=2;BYDAY=MO', starts: next monday}",
        "{schedule: 'FREQ=DAILY;EVERY=2'}",
        "{schedule: 'FREQ=WEEKLY'}",
        "{schedule: 'FREQ=DAILY;BYHOUR'}",
    ) == [
        "p/review.yaml:5:16: recurrence 'FREQ=DAILY;INTERVAL=2': INTERVAL=2 counts from the first occurrence: "
        "give its date as 'starts: YYYY-MM-DD' beside the schedule [trigger.rrule]",
        "p/review.yaml:6:16: recurrence 'FREQ=WEEKLY;BYDAY=MO,FUNDAY': BYDAY takes days MO, TU, WE, TH, FR, SA, SU, each perhaps "
        "numbered like 1MO (first Monday) or -1FR (last Friday), found 'FUNDAY' [trigger.rrule]",
        "p/review.yaml:7:16: recurrence 'FREQ=MONTHLY;BYMONTHDAY=32': BYMONTHDAY takes numbers from 1 to 31 "
        "or from -1 to -31 counting from the end, found '32' [trigger.rrule]",
        "p/review.yaml:8:16: recurrence 'FREQ=WEEKLY;BYDAY=-1FR': a numbered day like '-1FR' only means something "
        "in a MONTHLY or YEARLY rule [trigger.rrule]",
        "p/review.yaml:9:16: recurrence 'FREQ=HOURLY': FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY, found 'HOURLY' "
        "(a schedule starts each record's process at most once a day) [trigger.rrule]",
        "p/review.yaml:10:16: recurrence 'BYDAY=MO' has no FREQ: start it with FREQ=DAILY, WEEKLY, MONTHLY or YEARLY "
        "(e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9') [trigger.rrule]",
        "p/review.yaml:11:16: recurrence 'FREQ=DAILY;COUNT=3;UNTIL=20261231' gives both COUNT and UNTIL: keep one [trigger.rrule]",
        "p/review.yaml:12:16: recurrence 'FREQ=DAILY;UNTIL=31.12.2026': UNTIL must be a date like 20261231 or a time like "
        "20261231T170000 (local) or 20261231T160000Z (UTC), found '31.12.2026' [trigger.rrule]",
        "p/review.yaml:13:16: recurrence 'FREQ=DAILY;BYHOUR=9,17' gives several times a day, but a schedule starts each "
        "record's process at most once a day: give one BYHOUR and one BYMINUTE [trigger.rrule]",
        "p/review.yaml:14:16: recurrence 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30' has no occurrence in the ten years from "
        "2026-01-01: check its BY* parts [trigger.rrule]",
        "p/review.yaml:15:59: 'starts' must be a date like 2026-01-05 or a local time like 2026-01-05T09:00, "
        "found 'next monday' [trigger.starts]",
        "p/review.yaml:16:16: recurrence 'FREQ=DAILY;EVERY=2': unknown part 'EVERY' (known: FREQ, INTERVAL, COUNT, UNTIL, "
        "BYDAY, WKST, BYMONTH, BYMONTHDAY, BYHOUR, BYMINUTE, BYSECOND, BYSETPOS, BYWEEKNO, BYYEARDAY) [trigger.rrule]",
        "p/review.yaml:17:16: recurrence 'FREQ=WEEKLY': a weekly rule needs BYDAY (e.g. BYDAY=MO) or a 'starts:' date "
        "whose weekday it repeats [trigger.rrule]",
        "p/review.yaml:18:16: recurrence 'FREQ=DAILY;BYHOUR': 'BYHOUR' is not NAME=VALUE (e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9') "
        "[trigger.rrule]",
    ]


def test_rules_with_a_start_interval_count_until_and_ordinals_load_and_compile(packs):
    folder = packs.write("p", {"calendar.yaml": CALENDAR, "review.yaml": process(
        "{schedule: 'RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;BYHOUR=9', starts: 2026-01-05}",
        "{schedule: 'FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=16;UNTIL=20271231'}",
        "{schedule: 'freq=monthly;count=4;bymonthday=15', starts: '2026-02-15T08:30'}",
        "{schedule: 'FREQ=WEEKLY', starts: 2026-01-07}",
    )})
    spec = compile_model(load([folder])).process_specs["review"]
    assert [(t["rrule"], t.get("starts")) for t in spec["triggers"]] == [
        ("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;BYHOUR=9", "2026-01-05"),
        ("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=16;UNTIL=20271231", None),
        ("freq=monthly;count=4;bymonthday=15", "2026-02-15T08:30"),
        ("FREQ=WEEKLY", "2026-01-07"),
    ]


def berlin(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


def test_exact_rules_map_to_calendars_with_steps_and_bounds():
    every_other_march = schedule_plan("FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYMONTHDAY=15;BYHOUR=9", "2026-01-01", "Europe/Berlin")
    assert every_other_march.exact and every_other_march.calendar["year"] == [(2026, 2100, 2)]
    quarterly = schedule_plan("FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1;BYHOUR=7", "2026-02-01", "Europe/Berlin")
    assert quarterly.exact and quarterly.calendar["month"] == [(2, 12, 3)] and quarterly.start_at == berlin(2026, 2, 1)
    # COUNT becomes the instant of the last occurrence, so re-creating the schedule never resets it
    four = schedule_plan("FREQ=DAILY;COUNT=4;BYHOUR=8", "2027-03-26", "Europe/Berlin")
    assert four.exact and four.end_at == berlin(2027, 3, 29, 8)
    # a date-only UNTIL includes that whole day, in the calendar's zone
    assert schedule_plan("FREQ=DAILY;UNTIL=20270330", None, "Europe/Berlin").end_at == berlin(2027, 3, 30, 23, 59, 59)
    assert schedule_plan("FREQ=DAILY;UNTIL=20270330T070000Z", None, "Europe/Berlin").end_at == dt.datetime(2027, 3, 30, 7, tzinfo=dt.timezone.utc)
    # the n-th weekday of a month is that weekday in days 7n-6..7n
    first_monday = schedule_plan("FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9", None, "Europe/Berlin")
    assert first_monday.exact and first_monday.calendar["day_of_month"] == [(1, 7, 1)]
    weekly = schedule_plan("FREQ=WEEKLY;BYDAY=MO,TU,WE,SU;BYHOUR=9;BYMINUTE=30", None, "UTC")
    assert weekly.exact and weekly.calendar["day_of_week"] == [(0, 3, 1)]  # Temporal counts from Sunday = 0
    assert (weekly.calendar["hour"], weekly.calendar["minute"]) == ([(9, 9, 1)], [(30, 30, 1)])


def test_rules_a_calendar_cannot_express_run_on_a_superset_filtered_by_the_rule():
    for rule, starts in [("FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=9", None), ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH", "2026-01-05"),
                         ("FREQ=DAILY;INTERVAL=3", "2026-01-05"), ("FREQ=MONTHLY;BYMONTHDAY=-1", None),
                         ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", None), ("FREQ=MONTHLY;INTERVAL=5", "2026-01-05"),
                         ("FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO", None)]:
        assert not schedule_plan(rule, starts, "Europe/Berlin").exact, rule
    last_friday = "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=9"
    superset = schedule_plan(last_friday, None, "Europe/Berlin").calendar
    assert (superset["day_of_week"], superset["day_of_month"]) == ([(5, 5, 1)], [(22, 31, 1)])  # Fridays from the 22nd
    assert is_occurrence(last_friday, None, "Europe/Berlin", berlin(2026, 11, 27, 9))
    assert not is_occurrence(last_friday, None, "Europe/Berlin", berlin(2026, 11, 20, 9))
    assert not is_occurrence(last_friday, None, "Europe/Berlin", berlin(2026, 11, 27, 10))
    # the same instant seen from UTC is the same occurrence
    assert is_occurrence(last_friday, None, "Europe/Berlin", dt.datetime(2026, 11, 27, 8, tzinfo=dt.timezone.utc))
