"""The zero-config metrics on a known set of tasks, alerts, stage changes and contacts, on SQLite and PostgreSQL.

Every figure is worked out by hand in the comments: a test fails if one number moves.
"""
from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
import sqlalchemy as sa

from engine.calendars import BusinessCalendar
from runtime import metrics, records
from runtime.activities import Activities
from runtime.history import add_history
from runtime.metrics import Period, TaskScope
from runtime.schema import alerts, tasks

from .conftest import Store

UTC = dt.UTC
APRIL = Period(dt.datetime(2026, 4, 1, tzinfo=UTC), dt.datetime(2026, 5, 1, tzinfo=UTC))
NOW = dt.datetime(2026, 4, 25, 12, 0, tzinfo=UTC)  # a Saturday
_keys = itertools.count(1)


def at(day: str, hour: int = 9, minute: int = 0) -> dt.datetime:
    """A UTC moment of April 2026 ('04-07') or of another month ('03-15')."""
    month, d = (int(x) for x in day.split("-"))
    return dt.datetime(2026, month, d, hour, minute, tzinfo=UTC)


def add_task(conn, *, process="support_sla", step="triage", status="done", assignee=None, group=None, created, due,
             completed=None, entity=None, record_id=None, work=None) -> int:
    """A task row; `work` (a `metrics.WorkTime`): with the working seconds its completion stores, else without (a task
    completed before migration 0012)."""
    n = next(_keys)
    return conn.execute(tasks.insert().values(
        key=f"t{n}", workflow_id=f"{process}/w{n}", process=process, step_id=step, title=f"Task {n}", status=status,
        assignee_id=assignee, group_name=group, created_at=created, due_at=due, entity=entity, record_id=record_id,
        completed_at=completed, completed_by=assignee if completed else None,
        work_seconds=work.seconds(process, step, created, completed) if work and completed else None).returning(tasks.c.id)).scalar_one()


def add_alert(conn, task_id: int, level: int, raised: dt.datetime, acknowledged: dt.datetime | None = None) -> None:
    conn.execute(alerts.insert().values(key=f"a{next(_keys)}", task_id=task_id, level=level, recipients=[], message="late",
                                        raised_at=raised, acknowledged_at=acknowledged))


@pytest.fixture(params=("stored", "not stored", "some stored"))
def sla_data(store: Store, request):
    """Tasks of April 2026 on the office calendar (London, Mon-Fri 09:00-17:30, English holidays).

    T1 triage (alice): created Thu 2 Apr 15:00 BST, due in 4 business hours: 2.5 h on Thursday, Good Friday and
       Easter Monday are holidays, 1.5 h on Tuesday: due Tue 7 Apr 10:30 BST. Done Tue 10:00 BST: on time, 3.5 working
       hours (counted in calendar time it would be 115 hours, with the holidays as working days 18.5).
    T2 triage (bob): created Tue 7 Apr 09:00 BST, due 13:00 BST; done 14:00 BST: late, 5 working hours.
    T3 resolve (alice): created Tue 7 Apr 10:00 BST, due in 2 business days (Thu 9 Apr 10:00 BST); done Wed 16:00 BST:
       on time, 7.5 + 7 = 14.5 working hours.
    T4 an ad-hoc step (bob) the definitions do not know, so calendar time: 2 hours, on time.
    T5 triage (bob, support), still open, due 20 Apr: overdue. T6 done in March: outside the period.
    T7 triage (bob), open, due 28 Apr (after now): not overdue. T8 triage in the support queue, nobody on it, due 21 Apr: overdue.

    Each figure is the same whether the tasks carry the working seconds their completion stored (the database picks the
    percentiles), were completed before those were stored (counted from their two moments), or some of each.
    """
    office = BusinessCalendar(store.compiled.process_specs["support_sla"]["calendar"])
    work_time = metrics.WorkTime(store.compiled)
    stored = {"stored": itertools.repeat(work_time), "not stored": itertools.repeat(None),
              "some stored": itertools.cycle((work_time, None))}[request.param]
    four_hours = {"amount": 4, "unit": "business_hours"}
    with store.begin() as conn:
        acme = records.create_record(conn, store.compiled, "company", {"name": "Acme"}, store.alice)
        request = records.create_record(conn, store.compiled, "support_request",
                                        {"company": acme.id, "summary": "Printer", "description": "It jams"}, store.alice)
        on = {"entity": "support_request", "record_id": request.id}
        t1_created = at("04-02", 14)
        t1_due = office.add(t1_created, four_hours)
        assert t1_due == at("04-07", 9, 30)  # the calendar skips Good Friday, the weekend and Easter Monday
        ids = {
            "t1": add_task(conn, work=next(stored), assignee=store.alice, group="support", created=t1_created, due=t1_due, completed=at("04-07", 9), **on),
            "t2": add_task(conn, work=next(stored), assignee=store.bob, group="support", created=at("04-07", 8), due=office.add(at("04-07", 8), four_hours),
                           completed=at("04-07", 13), **on),
            "t3": add_task(conn, work=next(stored), step="resolve", assignee=store.alice, created=at("04-07", 9),
                           due=office.add(at("04-07", 9), {"amount": 2, "unit": "business_days"}), completed=at("04-08", 15), **on),
            "t4": add_task(conn, work=next(stored), process="adhoc", step="call", assignee=store.bob, created=at("04-10", 9), due=at("04-10", 12),
                           completed=at("04-10", 11), entity="company", record_id=acme.id),
            "t5": add_task(conn, work=next(stored), status="open", assignee=store.bob, group="support", created=at("04-20", 8), due=at("04-20", 12), **on),
            "t6": add_task(conn, work=next(stored), assignee=store.alice, created=at("03-15", 9), due=at("03-15", 10), completed=at("03-15", 11), **on),
            "t7": add_task(conn, work=next(stored), status="open", assignee=store.bob, created=at("04-24", 9), due=at("04-28", 12), **on),
            "t8": add_task(conn, work=next(stored), status="open", group="support", created=at("04-21", 8), due=at("04-21", 12), **on),
        }
        assert conn.execute(sa.select(tasks.c.due_at).where(tasks.c.id == ids["t3"])).scalar() is not None
        add_alert(conn, ids["t2"], 1, at("04-07", 12), acknowledged=at("04-07", 12, 30))
        add_alert(conn, ids["t5"], 1, at("04-20", 12))
        add_alert(conn, ids["t5"], 2, at("04-20", 14))
        add_alert(conn, ids["t6"], 1, at("03-15", 10))
    return store, acme, ids


def table(rows, *names):
    """{key: (measure, ...)} with floats rounded to 2 places."""
    def r(v):
        return round(v, 2) if isinstance(v, float) else v
    return {row.key if len(row.key) != 1 else row.key[0]: tuple(r(row[n]) for n in names) for row in rows}


SLA = ("on_time", "late", "overdue", "compliance", "median_hours", "p90_hours")


def test_sla_per_process_counts_business_hours_on_the_process_calendar_across_a_holiday(sla_data):
    store, _, _ = sla_data
    with store.connect() as conn:
        rows = metrics.sla(conn, store.compiled, APRIL, ("process",), now=NOW)
    # support_sla: T1, T3 on time, T2 late, T5 and T8 overdue: 2 of 5 = 40 %; hours 3.5, 5, 14.5: median 5,
    # p90 at rank 1 + 2 x 0.9 = 2.8: 5 + 0.8 x 9.5 = 12.6. adhoc: T4, 2 calendar hours.
    assert table(rows, *SLA) == {"support_sla": (2, 1, 2, 40.0, 5.0, 12.6), "adhoc": (1, 0, 0, 100.0, 2.0, 2.0)}


def test_sla_per_step_assignee_and_customer(sla_data):
    store, acme, _ = sla_data
    with store.connect() as conn:
        by_step = metrics.sla(conn, store.compiled, APRIL, ("step",), now=NOW)
        by_assignee = metrics.sla(conn, store.compiled, APRIL, ("assignee",), now=NOW)
        by_customer = metrics.sla(conn, store.compiled, APRIL, ("customer",), now=NOW)
        by_group_and_assignee = metrics.sla(conn, store.compiled, APRIL, ("group", "assignee"), now=NOW)
    # triage: T1 on time (3.5 h), T2 late (5 h), T5 and T8 overdue: median 4.25, p90 3.5 + 0.9 x 1.5 = 4.85
    assert table(by_step, *SLA) == {"support_sla/triage": (1, 1, 2, 25.0, 4.25, 4.85), "support_sla/resolve": (1, 0, 0, 100.0, 14.5, 14.5),
                                    "adhoc/call": (1, 0, 0, 100.0, 2.0, 2.0)}
    alice, bob = store.alice, store.bob
    assert table(by_assignee, "on_time", "late", "overdue", "compliance") == {
        alice: (2, 0, 0, 100.0), bob: (1, 1, 1, 33.33), None: (0, 0, 1, 0.0)}
    assert table(by_customer, "on_time", "late", "overdue") == {acme.id: (3, 1, 2)}  # a support request counts for its company
    assert table(by_group_and_assignee, "on_time", "late", "overdue") == {
        ("support", alice): (1, 0, 0), ("support", bob): (0, 1, 1), ("support", None): (0, 0, 1), (None, alice): (1, 0, 0),
        (None, bob): (1, 0, 0)}


def test_a_viewer_who_may_not_monitor_tasks_counts_only_their_own_and_their_groups_queue(sla_data):
    store, _, _ = sla_data
    with store.connect() as conn:
        rows = metrics.sla(conn, store.compiled, APRIL, ("process",), scope=TaskScope(store.alice, frozenset({"support"})), now=NOW)
        nobody = metrics.sla(conn, store.compiled, APRIL, ("process",), scope=TaskScope(store.alice, frozenset()), now=NOW)
    assert table(rows, "on_time", "late", "overdue") == {"support_sla": (2, 0, 1)}  # T1, T3 and the queued T8; not bob's
    assert table(nobody, "on_time", "late", "overdue") == {"support_sla": (2, 0, 0)}


def test_first_response_is_the_first_step_of_each_process(sla_data):
    store, _, _ = sla_data
    with store.connect() as conn:
        rows = metrics.first_response(conn, store.compiled, APRIL, ("process",), now=NOW)
    assert table(rows, *SLA) == {"support_sla": (1, 1, 2, 25.0, 4.25, 4.85)}  # triage only; adhoc is no process of the pack


def test_workload_now(sla_data):
    store, _, _ = sla_data
    week_end = dt.datetime(2026, 4, 29, tzinfo=UTC)
    with store.connect() as conn:
        by_person = metrics.workload(conn, store.compiled, ("assignee",), now=NOW, week_end=week_end)
        by_group = metrics.workload(conn, store.compiled, ("group",), now=NOW, week_end=week_end)
    names = ("open", "overdue", "due_this_week", "unassigned")
    assert table(by_person, *names) == {store.bob: (2, 1, 1, 0), None: (1, 1, 0, 1)}  # T5, T7; T8 in the queue
    assert table(by_group, *names) == {"support": (2, 2, 0, 1), None: (1, 0, 1, 0)}


def test_alerts_raised_and_acknowledged_by_escalation_level(sla_data):
    store, _, _ = sla_data
    with store.connect() as conn:
        by_level = metrics.alert_counts(conn, store.compiled, APRIL, ("level",))
        by_person_level = metrics.alert_counts(conn, store.compiled, APRIL, ("assignee", "level"))
    assert table(by_level, "raised", "acknowledged") == {1: (2, 1), 2: (1, 0)}  # March's alert is outside the period
    assert table(by_person_level, "raised", "acknowledged") == {(store.bob, 1): (2, 1), (store.bob, 2): (1, 0)}
    _, acme, _ = sla_data
    with store.connect() as conn:
        by_customer = metrics.alert_counts(conn, store.compiled, APRIL, ("customer", "level"))
        alices = metrics.alert_counts(conn, store.compiled, APRIL, ("level",), scope=TaskScope(store.alice, frozenset()))
        queue = metrics.alert_counts(conn, store.compiled, APRIL, ("level",), scope=TaskScope(store.alice, frozenset({"support"})))
        adhoc = metrics.alert_counts(conn, store.compiled, APRIL, ("level",), where=metrics.task_filter(processes=["adhoc"]))
    assert table(by_customer, "raised") == {(acme.id, 1): (2,), (acme.id, 2): (1,)}  # T2 and T5: a support request of Acme's
    assert alices == [] and adhoc == []  # Alice's own tasks raised none in April, nor did the ad-hoc step
    assert table(queue, "raised") == {}  # T2 and T5 are Bob's, not waiting in the support queue


def test_completing_a_task_stores_its_working_seconds_counted_across_the_easter_holidays(store: Store, monkeypatch):
    """T1 of the April tasks completed by its activity: Thursday 15:00-17:30 BST, Good Friday to Easter Monday nothing,
    Tuesday 09:00-10:00: 3.5 working hours stored, the figure the SLA report shows; reopened, it has none until done again."""
    task_id = None
    with store.begin() as conn:
        task_id = add_task(conn, status="open", assignee=store.alice, created=at("04-02", 14), due=at("04-07", 9, 30))
    monkeypatch.setattr("runtime.tasks.utcnow", lambda: at("04-07", 9))
    acts = Activities(store.engine, store.compiled)
    acts.set_task_state({"task_id": task_id, "status": "done", "user_id": store.alice, "outcome": "done", "key": "k1"})
    with store.connect() as conn:
        assert conn.execute(sa.select(tasks.c.work_seconds).where(tasks.c.id == task_id)).scalar() == 3.5 * 3600
        rows = metrics.sla(conn, store.compiled, APRIL, ("process",), now=NOW)
    assert table(rows, *SLA) == {"support_sla": (1, 0, 0, 100.0, 3.5, 3.5)}
    acts.set_task_state({"task_id": task_id, "status": "open", "user_id": store.alice, "key": "k2"})
    with store.connect() as conn:
        assert conn.execute(sa.select(tasks.c.work_seconds).where(tasks.c.id == task_id)).scalar() is None


def test_an_approvers_decision_counts_in_the_sla_with_its_working_hours_and_an_approval_no_longer_needed_nowhere(store: Store,
                                                                                                               monkeypatch):
    """A discount approval asked of Bob and Alice on Tuesday 7 April at 09:00 BST, due a business day later: Bob approves
    at 13:00 BST, 4 working hours, on time, which the decision's activity stores; Alice's task, no longer needed, is
    cancelled and counts in no figure. The step's SLA row is Bob's decision alone; Bob is the approver in the per-person row."""
    with store.begin() as conn:
        asked = [add_task(conn, process="lead_follow_up", step="discount_approval", status="open", assignee=who,
                          created=at("04-07", 8), due=at("04-08", 8)) for who in (store.bob, store.alice)]
        conn.execute(tasks.update().where(tasks.c.id.in_(asked)).values(kind="approval"))
    monkeypatch.setattr("runtime.tasks.utcnow", lambda: at("04-07", 12))
    Activities(store.engine, store.compiled).decide_approval({"key": "d1", "task_id": asked[0], "user_id": store.bob, "approve": True,
                                                              "cancel": [asked[1]]})
    with store.connect() as conn:
        stored = dict(conn.execute(sa.select(tasks.c.id, tasks.c.work_seconds).where(tasks.c.id.in_(asked))).all())
        by_step = metrics.sla(conn, store.compiled, APRIL, ("step",), now=NOW)
        by_person = metrics.sla(conn, store.compiled, APRIL, ("assignee",), now=NOW)
    assert stored == {asked[0]: 4 * 3600, asked[1]: None}
    assert table(by_step, *SLA) == {"lead_follow_up/discount_approval": (1, 0, 0, 100.0, 4.0, 4.0)}
    assert table(by_person, *SLA) == {store.bob: (1, 0, 0, 100.0, 4.0, 4.0)}


def test_filling_in_the_working_seconds_of_older_tasks_moves_no_figure(sla_data):
    store, _, _ = sla_data
    unstored = sa.select(sa.func.count()).where(tasks.c.status == "done", tasks.c.work_seconds.is_(None))
    with store.connect() as conn:
        before = metrics.sla(conn, store.compiled, APRIL, ("step",), now=NOW)
        missing = conn.execute(unstored).scalar()
    with store.begin() as conn:
        filled = metrics.fill_work_seconds(conn, store.compiled, batch=2)
        assert metrics.fill_work_seconds(conn, store.compiled) == 0  # nothing left the second time
    with store.connect() as conn:
        assert conn.execute(unstored).scalar() == 0
        after = metrics.sla(conn, store.compiled, APRIL, ("step",), now=NOW)
    assert filled == missing  # 5 done tasks (T6 in March too) when none was stored, 3 when every other one was
    assert table(after, *SLA) == table(before, *SLA)


def test_tailor_migrate_stores_the_working_time_of_tasks_completed_before_it_was_kept(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from admin.cli import main
    from runtime.db import make_engine
    from tests.conftest import CRM

    monkeypatch.setenv("TAILOR_DATA_DIR", str(tmp_path / "var"))
    url = f"sqlite:///{tmp_path / 'tailor.db'}"
    assert CliRunner().invoke(main, ["migrate", str(CRM), "--database-url", url], catch_exceptions=False).exit_code == 0
    engine = make_engine(url)
    with engine.begin() as conn:  # T1 of the April tasks, completed by a version that did not keep its working time
        add_task(conn, assignee=None, created=at("04-02", 14), due=at("04-07", 9, 30), completed=at("04-07", 9))
    again = CliRunner().invoke(main, ["migrate", str(CRM), "--database-url", url], catch_exceptions=False)
    assert again.stdout.splitlines()[-1] == "stored the working time of 1 task(s) completed before it was kept, for the SLA reports"
    with engine.connect() as conn:
        assert conn.execute(sa.select(tasks.c.work_seconds)).scalar() == 3.5 * 3600
    engine.dispose()


def test_the_databases_median_and_p90_are_those_of_percentile(store: Store):
    """Teams of 1, 2, 3, 7 and 50 tasks with random working times: the database's median and p90 (percentile_cont on
    PostgreSQL, ranks on SQLite) are `metrics.percentile` of the same hours."""
    rnd = random.Random(7)
    hours: dict[str, list[float]] = {}
    with store.begin() as conn:
        for size, team in zip((1, 2, 3, 7, 50), ("a", "b", "c", "d", "e")):
            for _ in range(size):
                seconds = rnd.uniform(0, 200_000)
                hours.setdefault(team, []).append(seconds / 3600)
                task_id = add_task(conn, process="adhoc", step="call", group=team, created=at("04-10", 9), due=at("04-11", 9),
                                   completed=at("04-10", 9) + dt.timedelta(seconds=seconds))
                conn.execute(tasks.update().where(tasks.c.id == task_id).values(work_seconds=seconds))
    with store.connect() as conn:
        rows = metrics.sla(conn, store.compiled, APRIL, ("group",), now=NOW)
    assert {r.key[0]: (r["median_hours"], r["p90_hours"]) for r in rows} == {
        team: (pytest.approx(metrics.percentile(v, 0.5), rel=1e-12), pytest.approx(metrics.percentile(v, 0.9), rel=1e-12))
        for team, v in hours.items()}


# -- the pipeline ---------------------------------------------------------------------------------------------


@pytest.fixture
def pipeline_data(store: Store):
    """Opportunities and their stage changes (every change at 09:00 UTC, so stays are whole days).

    O1 created 1 Apr (lead), qualified 3 Apr, proposal 8 Apr, won 15 Apr; 1,000.
    O2 created 2 Apr (lead), qualified 6 Apr, lost 10 Apr; 500.
    O3 created 5 Apr (lead) and still there; 200 at 50 %, closing 10 Jun.
    O4 created 6 Apr straight into qualified, proposal 16 Apr; 300 at 20 %, closing 20 Jun.
    O5 created 1 Mar (lead), won 2 Apr; 50.
    """
    c = store.compiled
    with store.begin() as conn:
        acme = records.create_record(conn, c, "company", {"name": "Acme"}, store.alice)

        def opportunity(name, created, moves, **values):
            rec = records.create_record(conn, c, "opportunity", {"name": name, "company": acme.id, **values}, store.alice, at=created,
                                        today=created.date())
            for stage, when in moves:
                records.update_record(conn, c, "opportunity", rec.id, {"stage": stage}, store.alice, at=when, today=when.date())
            return rec.id

        ids = {
            "o1": opportunity("O1", at("04-01"), [("qualified", at("04-03")), ("proposal", at("04-08")), ("won", at("04-15"))], value="1000.00"),
            "o2": opportunity("O2", at("04-02"), [("qualified", at("04-06")), ("lost", at("04-10"))], value="500.00"),
            "o3": opportunity("O3", at("04-05"), [], value="200.00", probability=50, expected_close="2026-06-10"),
            "o4": opportunity("O4", at("04-06"), [("proposal", at("04-16"))], stage="qualified", value="300.00", probability=20,
                              expected_close="2026-06-20"),
            "o5": opportunity("O5", at("03-01"), [("won", at("04-02"))], value="50.00"),
        }
    return store, metrics.pipeline_of(c, "opportunity"), ids


def test_pipeline_stages_count_value_conversion_and_drop_off(pipeline_data):
    store, pipe, _ = pipeline_data
    assert (pipe.won, pipe.lost, pipe.value.name, pipe.probability.name, pipe.close.name) == (
        {"won"}, {"lost"}, "value", "probability", "expected_close")
    with store.connect() as conn:
        rows = metrics.stages(conn, store.compiled, pipe, APRIL)
    # the April cohort O1-O4; the furthest stage each reached: won, qualified (then lost), lead, proposal. Reaching a
    # stage counts for every stage before it (O1 went from proposal to won: it passed negotiation).
    assert table(rows, "count", "value", "reached", "conversion", "drop_off") == {
        "lead": (1, 200.0, 4, 75.0, 25.0), "qualified": (0, None, 3, 66.67, 33.33), "proposal": (1, 300.0, 2, 50.0, 50.0),
        "negotiation": (0, None, 1, 100.0, 0.0), "won": (1, 1000.0, 1, None, None), "lost": (1, 500.0, None, None, None)}


def test_time_in_each_stage_comes_from_the_change_history(pipeline_data):
    store, pipe, _ = pipeline_data
    with store.connect() as conn:
        rows = metrics.stage_time(conn, store.compiled, pipe, APRIL)
    # stays that ended in April: lead 2 (O1), 4 (O2), 32 days (O5, from 1 Mar); qualified 5 (O1), 4 (O2), 10 (O4); proposal 7 (O1)
    assert table(rows, "stays", "avg_days", "median_days") == {
        "lead": (3, 12.67, 4.0), "qualified": (3, 6.33, 5.0), "proposal": (1, 7.0, 7.0), "negotiation": (0, None, None),
        "won": (0, None, None), "lost": (0, None, None)}


def test_win_rate_counts_what_closed_in_the_period(pipeline_data):
    store, pipe, ids = pipeline_data
    with store.connect() as conn:
        rows = metrics.win_rate(conn, store.compiled, pipe, APRIL)
        march = metrics.win_rate(conn, store.compiled, pipe, Period(at("03-01", 0), at("04-01", 0)))
        narrowed = metrics.win_rate(conn, store.compiled, pipe, APRIL,
                                    records.filter_condition(conn, store.compiled, "opportunity", {"id": {"in": [ids["o1"], ids["o2"]]}}))
    assert table(rows, "won", "lost", "win_rate", "won_value") == {(): (2, 1, 66.67, 1050.0)}  # O1, O5 won, O2 lost
    assert march == []
    assert table(narrowed, "won", "lost", "win_rate") == {(): (1, 1, 50.0)}


def test_expected_value_by_close_month(pipeline_data):
    store, pipe, _ = pipeline_data
    with store.connect() as conn:
        rows = metrics.forecast(conn, store.compiled, pipe, Period(at("05-01", 0), at("08-01", 0)))
    assert table(rows, "count", "value", "expected") == {"2026-06": (2, 500.0, 160.0)}  # 200 x 50 % + 300 x 20 %


def test_aggregate_any_entity_by_a_field(pipeline_data):
    store, _, _ = pipeline_data
    with store.connect() as conn:
        rows = metrics.aggregate(conn, store.compiled, "opportunity", ("stage",), [("sum", "value"), ("median", "value"), ("percent", None)],
                                 Period(None, None))
    assert table(rows, "count", "sum_value", "median_value", "percent") == {
        "lead": (1, 200.0, 200.0, 20.0), "proposal": (1, 300.0, 300.0, 20.0), "won": (2, 1050.0, 525.0, 40.0), "lost": (1, 500.0, 500.0, 20.0)}


# -- activity per customer ------------------------------------------------------------------------------------


def test_activity_per_customer_and_the_forgotten_customers(store: Store):
    c = store.compiled
    with store.begin() as conn:
        acme = records.create_record(conn, c, "company", {"name": "Acme"}, store.alice)
        globex = records.create_record(conn, c, "company", {"name": "Globex"}, store.alice)
        initech = records.create_record(conn, c, "company", {"name": "Initech"}, store.alice)
        request = records.create_record(conn, c, "support_request", {"company": acme.id, "summary": "Jam", "description": "x"}, store.alice)
        add_history(conn, "company", acme.id, "submission", "Phone call", {}, store.alice, form="call_note", at=at("04-03"))
        add_history(conn, "company", acme.id, "submission", "Phone call", {}, store.bob, form="call_note", at=at("04-20"))
        add_history(conn, "support_request", request.id, "note", "Called back", {}, store.bob, at=at("04-21"))
        add_history(conn, "company", acme.id, "change", "Changed", {}, store.bob, at=at("04-22"))  # bookkeeping: not contact
        add_history(conn, "company", globex.id, "submission", "Meeting", {}, store.alice, form="meeting_note", at=at("01-10"))
    with store.connect() as conn:
        by_kind = metrics.activity(conn, c, APRIL, ("kind",))
        by_customer = metrics.activity(conn, c, APRIL, ("customer", "user"))
        forgotten = metrics.no_contact(conn, c, 30, now=NOW)
    assert table(by_kind, "count") == {"call_note": (2,), "note": (1,)}
    assert table(by_customer, "count") == {(acme.id, store.alice): (1,), (acme.id, store.bob): (2,)}
    # Initech: never; Globex: 10 Jan, 105 days before 25 Apr; Acme was called on 20 Apr
    assert [(r.key[0], r["days"]) for r in forgotten] == [(initech.id, None), (globex.id, 105)]
