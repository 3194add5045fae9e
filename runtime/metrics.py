"""Zero-config metrics: what the processes and records already store, aggregated in the database.

SLA compliance (tasks done on time or late against their due time, time to complete, first response),
workload (open, overdue, due this week), alerts by escalation level, the pipeline of any entity with a
stages field (count and value per stage, conversion and drop-off, time in each stage from the record's
change history, win rate, expected value by close month), activity per customer (contact history by
kind) and customers with no contact for N days. No table of their own: nothing can drift.

Every function takes the connection, the compiled model and what to measure, and returns plain rows
whose keys are stored values (ids, choice values, step ids); `runtime.reports` turns them into what
people read. Counts, sums and averages are SQL aggregates (SQLite and PostgreSQL alike); medians and
percentiles are picked by the database too (`_percentiles`: window functions, exact interpolation; PostgreSQL's
percentile_cont for the SLA), of times to complete stored with each task when it was completed (`WorkTime`: business
time only the calendar can count, `engine.calendars`).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.calendars import BusinessCalendar
from engine.compiler import CompiledModel
from engine.model import Choice, Entity, Field, ParallelStep, Process, TaskStep

from .db import aware
from .records import field_expression
from .schema import OPEN_STATUSES, alerts, audit_log, contact_history, tasks, users

OPEN = OPEN_STATUSES  # tasks someone still has to act on
#: the tasks the SLA counts: the work, and each approver's decision (an approval step's due, reminders and ladder are a
#: task's); an approval no longer needed (cancelled: another approver decided) is neither done nor open, so counts nowhere
SLA_KINDS = ("task", "approval")
HOUR = 3600.0
DAY = 86400.0
#: dimensions a task (and the alert raised on it) can be counted by
TASK_DIMENSIONS = ("process", "step", "group", "assignee", "customer")
#: contact history kinds that are the platform's own bookkeeping, not contact with the customer
BOOKKEEPING = ("change", "task", "alert", "project")
ACTIVITY_DIMENSIONS = ("customer", "kind", "month", "user")
EVERY_RECORD = sa.true()  # no condition on the records


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """A moment as the store keeps it: UTC (SQLite compares the stored text, so the zone must match)."""
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class Period:
    """From `start` (inclusive) to `end` (exclusive), UTC; None at either end: open on that side."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def holds(self, column: sa.ColumnElement) -> sa.ColumnElement:
        """The condition that `column` falls in the period."""
        parts = [column.is_not(None)]
        if self.start is not None:
            parts.append(column >= _utc(self.start))
        if self.end is not None:
            parts.append(column < _utc(self.end))
        return sa.and_(*parts)

    def holds_date(self, column: sa.ColumnElement, zone) -> sa.ColumnElement:
        """The condition that a date stored as ISO text ('2026-03-02') falls in the period, read in `zone`."""
        parts = [column.is_not(None)]
        if self.start is not None:
            parts.append(column >= self.start.astimezone(zone).date().isoformat())
        if self.end is not None:
            parts.append(column < (self.end - dt.timedelta(microseconds=1)).astimezone(zone).date().isoformat() + "~")
        return sa.and_(*parts)


@dataclass(frozen=True)
class TaskScope:
    """Whose tasks a viewer may count: everyone's (who may monitor tasks), else their own and their groups' queues
    (what `admin.access.may_see_task` lets them open)."""

    user_id: int | None = None
    groups: frozenset[str] = frozenset()

    @property
    def everyone(self) -> bool:
        return self.user_id is None

    def condition(self, t: sa.Table = tasks) -> sa.ColumnElement:
        if self.everyone:
            return sa.true()
        return sa.or_(t.c.assignee_id == self.user_id, sa.and_(t.c.assignee_id.is_(None), t.c.group_name.in_(sorted(self.groups))))


EVERYONE = TaskScope()


@dataclass(frozen=True)
class Row:
    """One row of a metric: its key (a value per dimension, as stored) and its measures by name."""

    key: tuple
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


# -- SQL pieces both dialects understand ----------------------------------------------------------------


def seconds_between(conn: sa.Connection, start: sa.ColumnElement, end: sa.ColumnElement) -> sa.ColumnElement:
    """`end - start` in seconds, as a number."""
    if conn.dialect.name == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * DAY


def epoch(conn: sa.Connection, column: sa.ColumnElement) -> sa.ColumnElement:
    """A moment as seconds since 1970-01-01 UTC."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.extract("epoch", column), sa.Float)  # a float, not a numeric: read ~10x faster
    return (sa.func.julianday(column) - 2440587.5) * DAY


def month_of(conn: sa.Connection, column: sa.ColumnElement, *, stored_as_text: bool) -> sa.ColumnElement:
    """'2026-03' of a date or moment (moments in UTC)."""
    if stored_as_text or conn.dialect.name == "sqlite":  # ISO text, or SQLite's text of a UTC moment
        return sa.func.substr(column, 1, 7)
    return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM")


def _fraction(p: float) -> tuple[int, int]:
    """p as a fraction num/den (0.9 -> 9/10), so ranks are integer arithmetic on both dialects."""
    den = 1000
    num = round(p * den)
    from math import gcd

    g = gcd(num, den)
    return num // g, den // g


def _percentiles(conn: sa.Connection, sub: sa.Subquery, keys: Sequence[str], value: str,
                 ps: Sequence[float]) -> dict[tuple, dict[float, float]]:
    """Per key, the p-quantiles of `value` in `sub`, interpolated between neighbours like PostgreSQL's
    percentile_cont: rank r = 1 + (n-1)p, value = v[floor r] + frac(r) (v[floor r + 1] - v[floor r]).

    The database ranks the values (window functions) and returns only the two neighbours of each quantile,
    with integer arithmetic only (SQLite has no floor() everywhere, PostgreSQL rounds when it casts)."""
    key_cols = [sub.c[k] for k in keys]
    v = sub.c[value]
    ranked = sa.select(*key_cols, v.label("v"),
                       sa.func.row_number().over(partition_by=key_cols or None, order_by=v).label("rn"),
                       sa.func.count().over(partition_by=key_cols or None).label("n")).where(v.is_not(None)).subquery()
    rk = [ranked.c[k] for k in keys]
    fractions = {p: _fraction(p) for p in ps}
    wanted = []
    for num, den in fractions.values():
        lo = 1 + ((ranked.c.n - 1) * num) // den  # integer division on both dialects: floor for these non-negative numbers
        wanted += [ranked.c.rn == lo, ranked.c.rn == lo + 1]
    rows = conn.execute(sa.select(*rk, ranked.c.rn, ranked.c.v, ranked.c.n).where(sa.or_(*wanted))).all() if ps else []
    picked: dict[tuple, dict[int, float]] = defaultdict(dict)
    sizes: dict[tuple, int] = {}
    for r in rows:
        k = tuple(r[: len(keys)])
        picked[k][r.rn] = float(r.v)
        sizes[k] = r.n
    out: dict[tuple, dict[float, float]] = defaultdict(dict)
    for k, values in picked.items():
        n = sizes[k]
        for p, (num, den) in fractions.items():
            low = 1 + ((n - 1) * num) // den
            frac = ((n - 1) * num % den) / den
            a = values[low]
            b = values.get(low + 1, a)
            out[k][p] = a + frac * (b - a)
    return out


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-quantile of `values`, interpolated like `_percentiles` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    num, den = _fraction(p)
    n = len(ordered)
    low = ((n - 1) * num) // den
    frac = ((n - 1) * num % den) / den
    a = ordered[low]
    b = ordered[low + 1] if low + 1 < n else a
    return a + frac * (b - a)


# -- customers --------------------------------------------------------------------------------------------


def customer_entity(compiled: CompiledModel, name: str | None = None) -> Entity:
    """The customer entity metrics count 'per customer' by: the one named, else the first customer entity."""
    model = compiled.model
    if name:
        return model.entities[name]
    found = next((e for e in model.entities.values() if e.customer), None)
    if found is None:
        raise LookupError("no entity is marked 'customer: true'")
    return found


def _to_customer(e: Entity, customer: Entity) -> Field | None:
    """The field of `e` that names its customer: the first reference to the customer entity (required ones first)."""
    refs = [f for f in e.fields if f.type == "reference" and f.entity == customer.name]
    return next((f for f in refs if f.required), refs[0] if refs else None)


def customer_map(compiled: CompiledModel, customer: Entity) -> sa.Subquery:
    """(entity, record_id, customer_id) for every record that belongs to a customer of `customer`'s entity:
    the customer's own records, and those of entities with a reference to it (a support request's company)."""
    parts = []
    for e in compiled.model.entities.values():
        table = compiled.metadata.tables[e.name]
        if e.name == customer.name:
            parts.append(sa.select(sa.literal(e.name).label("entity"), table.c.id.label("record_id"), table.c.id.label("customer_id")))
        elif (f := _to_customer(e, customer)) is not None:
            parts.append(sa.select(sa.literal(e.name).label("entity"), table.c.id.label("record_id"),
                                   field_expression(table, f).label("customer_id")))
    return sa.union_all(*parts).subquery("customers")


# -- tasks: SLA, workload, alerts ------------------------------------------------------------------------


def first_steps(process: Process) -> tuple[str, ...]:
    """The steps a process starts with: its first task, or the first task of each branch of a first parallel block."""
    if not process.steps:
        return ()
    first = process.steps[0]
    if isinstance(first, TaskStep):
        return (first.id,)
    assert isinstance(first, ParallelStep)
    return tuple(step.id for _, branch in first.branches for step in branch[:1] if isinstance(step, TaskStep))


def _walk(steps) -> Iterable[TaskStep]:
    for s in steps:
        if isinstance(s, ParallelStep):
            for _, branch in s.branches:
                yield from _walk(branch)
        else:
            yield s


def business_steps(compiled: CompiledModel) -> dict[tuple[str, str], str]:
    """(process, step) -> calendar name, for every step whose due is counted in business time."""
    out = {}
    for p in compiled.model.processes.values():
        for s in _walk(p.steps):
            if s.due and s.due.duration and s.due.duration.unit != "seconds":
                out[(p.name, s.id)] = p.name
    return out


def _worker(t: sa.Table = tasks) -> sa.ColumnElement:
    """Who a task counts for: who completed it once done, else who has it."""
    return sa.case((t.c.status == "done", sa.func.coalesce(t.c.completed_by, t.c.assignee_id)), else_=t.c.assignee_id)


def _task_keys(compiled: CompiledModel, by: Sequence[str], customer: Entity | None,
               t: Any = tasks, start: Any = None) -> tuple[list[sa.ColumnElement], Any]:
    """The key columns of the dimensions `by`, and the FROM clause they need (a join to the customers for 'customer'):
    `t` (the tasks, or a subquery of them) joined from `start` if given."""
    source: Any = t if start is None else start
    cols: list[sa.ColumnElement] = []
    for i, d in enumerate(by):
        if d == "process":
            cols.append(t.c.process.label(f"k{i}"))
        elif d == "step":
            cols.append((t.c.process + sa.literal("/") + t.c.step_id).label(f"k{i}"))
        elif d == "group":
            cols.append(t.c.group_name.label(f"k{i}"))
        elif d == "assignee":
            cols.append(_worker(t).label(f"k{i}"))
        elif d == "customer":
            cmap = customer_map(compiled, customer or customer_entity(compiled))
            source = source.outerjoin(cmap, sa.and_(cmap.c.entity == t.c.entity, cmap.c.record_id == t.c.record_id))
            cols.append(cmap.c.customer_id.label(f"k{i}"))
        else:
            raise ValueError(f"tasks cannot be counted by {d!r} (possible: {', '.join(TASK_DIMENSIONS)})")
    return cols, source


def task_filter(processes: Iterable[str] = (), groups: Iterable[str] = ()) -> sa.ColumnElement:
    """Tasks of these processes and in these groups' queues (either left empty: any)."""
    parts = []
    if processes:
        parts.append(tasks.c.process.in_(sorted(set(processes))))
    if groups:
        parts.append(tasks.c.group_name.in_(sorted(set(groups))))
    return sa.and_(sa.true(), *parts)


def _step_filter(steps: Iterable[tuple[str, str]] | None, t: sa.Table = tasks) -> sa.ColumnElement:
    if steps is None:
        return sa.true()
    pairs = sorted(set(steps))
    if not pairs:
        return sa.false()
    # one IN on 'process/step', not an OR of pairs: an OR of equalities led SQLite to scan tasks by them instead of
    # reading the period's tasks through ix_tasks_done / ix_tasks_due
    return (t.c.process + sa.literal("/") + t.c.step_id).in_([f"{p}/{s}" for p, s in pairs])


def sla(conn: sa.Connection, compiled: CompiledModel, period: Period, by: Sequence[str] = ("process",), *,
        scope: TaskScope = EVERYONE, steps: Iterable[tuple[str, str]] | None = None, customer: Entity | None = None,
        where: sa.ColumnElement = EVERY_RECORD, now: dt.datetime | None = None) -> list[Row]:
    """Tasks with a due time, per key of `by`: done on time, done late (completed in the period), overdue (still open,
    due in the period and past due now), compliance % (on time of all three), median and p90 hours to complete.

    Hours to complete count working hours on the process's calendar for steps whose due is in business time, else
    calendar hours: each task's `work_seconds`, stored when it was completed (`WorkTime`), so the database picks the
    median and p90 (PostgreSQL's percentile_cont, a window function on SQLite). A task completed before that column
    existed has none: while the period holds any, its hours are counted from its two moments here, as they always were.
    `steps` narrows to (process, step) pairs (first response: `first_response`); `where` is a condition on the tasks
    table (`task_filter`)."""
    now = now or utcnow()
    t = tasks
    keys, source = _task_keys(compiled, by, customer)
    done = sa.and_(t.c.status == "done", period.holds(t.c.completed_at))
    overdue_until = Period(period.start, min(period.end, now) if period.end else now)
    overdue = sa.and_(t.c.status.in_(OPEN), overdue_until.holds(t.c.due_at))
    base = sa.and_(t.c.due_at.is_not(None), t.c.kind.in_(SLA_KINDS), scope.condition(t), _step_filter(steps, t), where)
    on_time = sa.func.sum(sa.case((sa.and_(done, t.c.completed_at <= t.c.due_at), 1), else_=0))
    late = sa.func.sum(sa.case((sa.and_(done, t.c.completed_at > t.c.due_at), 1), else_=0))
    still = sa.func.sum(sa.case((overdue, 1), else_=0))
    unstored = sa.func.sum(sa.case((sa.and_(done, t.c.work_seconds.is_(None)), 1), else_=0))
    cols = [on_time.label("on_time"), late.label("late"), still.label("overdue"), unstored.label("unstored")]
    in_sql = conn.dialect.name == "postgresql"
    if in_sql:  # the percentiles in the same pass over the period's tasks
        work = sa.case((done, t.c.work_seconds))  # NULL (left out) for the overdue ones
        cols += [sa.func.percentile_cont(p).within_group(work).label(f"p{i}") for i, p in enumerate(QUANTILES)]
    q = sa.select(*keys, *cols).select_from(source).where(base, sa.or_(done, overdue)).group_by(*keys)
    found = conn.execute(q).all()
    rows = {tuple(r[: len(by)]): {"on_time": int(r.on_time or 0), "late": int(r.late or 0), "overdue": int(r.overdue or 0)}
            for r in found}
    quantiles: dict[tuple, dict[float, float | None]]
    if any(r.unstored for r in found):
        hours = _hours_to_complete(conn, compiled, sa.and_(base, done), keys, source, len(by))
        quantiles = {k: {p: percentile(spans, p) for p in QUANTILES} for k, spans in hours.items()}
    elif in_sql:
        quantiles = {tuple(r[: len(by)]): {p: None if r._mapping[f"p{i}"] is None else float(r._mapping[f"p{i}"]) / HOUR
                                           for i, p in enumerate(QUANTILES)} for r in found}
    else:
        sub = sa.select(*keys, t.c.work_seconds.label("v")).select_from(source).where(base, done).subquery()
        quantiles = {k: {p: v / HOUR for p, v in qs.items()}
                     for k, qs in _percentiles(conn, sub, [k.name for k in keys], "v", QUANTILES).items()}
    out = []
    for k, v in rows.items():
        total = v["on_time"] + v["late"] + v["overdue"]
        qs = quantiles.get(k, {})
        out.append(Row(k, {**v, "total": total, "compliance": 100.0 * v["on_time"] / total if total else None,
                           "median_hours": qs.get(0.5), "p90_hours": qs.get(0.9)}))
    return _sorted(out)


QUANTILES = (0.5, 0.9)  # the SLA's median and p90


class WorkTime:
    """How long a task took, as the SLA counts it: working seconds on its process's calendar (the one its due was computed
    with, `engine.calendars`) where its step's due is in business time, else calendar seconds. One per compiled model;
    the activity that completes a task stores it (`runtime.tasks.set_task_state`), the one that decides an approval `store`."""

    def __init__(self, compiled: CompiledModel):
        self.compiled = compiled
        self.business = business_steps(compiled)
        self._calendars: dict[str, BusinessCalendar] = {}

    def calendar(self, process: str, step: str) -> BusinessCalendar | None:
        """The calendar the step's time is counted on; None: calendar time."""
        name = self.business.get((process, step))
        if name is None:
            return None
        if name not in self._calendars:
            self._calendars[name] = BusinessCalendar(self.compiled.process_specs[name]["calendar"])
        return self._calendars[name]

    def seconds(self, process: str, step: str, start: dt.datetime, end: dt.datetime) -> float:
        """The task's time from `start` to `end`."""
        start, end = aware(start), aware(end)
        assert start is not None and end is not None
        calendar = self.calendar(process, step)
        if calendar is None:
            return max(0.0, end.timestamp() - start.timestamp())
        return calendar.clock(start, end).seconds_between(start, end)

    def of(self, task: Mapping[str, Any], end: dt.datetime) -> float:
        """A task row's time from its creation to `end` (when it is being completed)."""
        return self.seconds(task["process"], task["step_id"], task["created_at"], end)

    def store(self, conn: sa.Connection, task: Mapping[str, Any]) -> None:
        """Store the working seconds of a task row done by other means than `runtime.tasks.set_task_state` (an approval
        decided), unless it has them."""
        if task["status"] == "done" and task["completed_at"] is not None and task["work_seconds"] is None:
            conn.execute(tasks.update().where(tasks.c.id == task["id"], tasks.c.work_seconds.is_(None))
                         .values(work_seconds=self.of(task, task["completed_at"])))


def fill_work_seconds(conn: sa.Connection, compiled: CompiledModel, *, batch: int = 5000) -> int:
    """Store the working seconds of the tasks done before they were stored (platform migration 0012), counted as the SLA
    report counts them meanwhile, so no figure moves; returns how many. Safe to run again, and while tasks complete.
    The decided approvals too (`SLA_KINDS`): the SLA counts each approver's decision as a task."""
    work = WorkTime(compiled)
    t = tasks
    filled = 0
    while True:
        found = conn.execute(sa.select(t.c.id, t.c.process, t.c.step_id, t.c.created_at, t.c.completed_at)
                             .where(t.c.status == "done", t.c.kind.in_(SLA_KINDS), t.c.completed_at.is_not(None), t.c.work_seconds.is_(None))
                             .order_by(t.c.id).limit(batch)).all()
        if not found:
            return filled
        conn.execute(t.update().where(t.c.id == sa.bindparam("task_id")).values(work_seconds=sa.bindparam("seconds")),
                     [{"task_id": r.id, "seconds": work.seconds(r.process, r.step_id, r.created_at, r.completed_at)} for r in found])
        filled += len(found)


def _hours_to_complete(conn: sa.Connection, compiled: CompiledModel, where: sa.ColumnElement, keys, source,
                       n: int) -> dict[tuple, list[float]]:
    """Per key, the hours each task took from created to completed: its stored `work_seconds`, else counted here (a task
    completed before they were stored), working hours where its step's due is in business time.

    The database hands back the two moments as seconds since the epoch: numbers are much cheaper to read than moments,
    and the calendar's working clock counts in them."""
    t = tasks
    q = (sa.select(*keys, t.c.process, t.c.step_id, epoch(conn, t.c.created_at).label("a"), epoch(conn, t.c.completed_at).label("b"),
                   t.c.work_seconds).select_from(source).where(where))
    found = conn.execute(q).all()
    if not found:
        return {}
    work = WorkTime(compiled)
    clocks: dict[BusinessCalendar, Any] = {}
    spans: dict[tuple, list[float]] = defaultdict(list)
    first = dt.datetime.fromtimestamp(min(float(r.a) for r in found), dt.UTC)
    last = dt.datetime.fromtimestamp(max(float(r.b) for r in found), dt.UTC)
    for r in found:
        if r.work_seconds is not None:
            spans[tuple(r[:n])].append(float(r.work_seconds) / HOUR)
            continue
        a, b = float(r.a), float(r.b)
        calendar = work.calendar(r.process, r.step_id)
        if calendar is None:
            seconds = max(0.0, b - a)
        else:
            clock = clocks.get(calendar)
            if clock is None:
                clock = clocks[calendar] = calendar.clock(first, last)
            seconds = clock.seconds_between_epochs(a, b)
        spans[tuple(r[:n])].append(seconds / HOUR)
    return spans


def first_response(conn: sa.Connection, compiled: CompiledModel, period: Period, by: Sequence[str] = ("process",), **kw) -> list[Row]:
    """SLA of the first step of every process: how soon someone first answered."""
    pairs = [(p.name, s) for p in compiled.model.processes.values() for s in first_steps(p)]
    return sla(conn, compiled, period, by, steps=pairs, **kw)


def workload(conn: sa.Connection, compiled: CompiledModel, by: Sequence[str] = ("assignee",), *, scope: TaskScope = EVERYONE,
             now: dt.datetime | None = None, week_end: dt.datetime | None = None, customer: Entity | None = None,
             where: sa.ColumnElement = EVERY_RECORD) -> list[Row]:
    """Open tasks per key of `by`: open, overdue now, due from now to `week_end` (the end of the viewer's week),
    and how many of them wait in a group's queue with nobody on them."""
    now = now or utcnow()
    week_end = week_end or now + dt.timedelta(days=7)
    t = tasks
    keys, source = _task_keys(compiled, by, customer)
    q = (sa.select(*keys, sa.func.count().label("open"),
                   sa.func.sum(sa.case((t.c.due_at < _utc(now), 1), else_=0)).label("overdue"),
                   sa.func.sum(sa.case((sa.and_(t.c.due_at >= _utc(now), t.c.due_at < _utc(week_end)), 1), else_=0)).label("due_this_week"),
                   sa.func.sum(sa.case((t.c.assignee_id.is_(None), 1), else_=0)).label("unassigned"))
         .select_from(source).where(t.c.status.in_(OPEN), scope.condition(t), where).group_by(*keys))
    return _sorted([Row(tuple(r[: len(by)]), {"open": int(r.open), "overdue": int(r.overdue or 0), "due_this_week": int(r.due_this_week or 0),
                                                "unassigned": int(r.unassigned or 0)}) for r in conn.execute(q)])


def alert_counts(conn: sa.Connection, compiled: CompiledModel, period: Period, by: Sequence[str] = ("level",), *,
                 scope: TaskScope = EVERYONE, customer: Entity | None = None, where: sa.ColumnElement = EVERY_RECORD) -> list[Row]:
    """Alerts raised in the period per key of `by` (task dimensions and 'level', the escalation level): raised and acknowledged.

    Breaches by escalation level are this by ('level',): level 1 is the first rung of a step's ladder, usually at its due time."""
    a = alerts
    task_dims = [d for d in by if d != "level"]
    if conn.dialect.name == "postgresql":
        # each alert's task looked up by its key (LATERAL): joined, PostgreSQL hashes the period's alerts against a
        # scan of every task
        t = sa.select(*tasks.c).where(tasks.c.id == a.c.task_id, scope.condition(tasks), where).lateral("t")
        keys, source = _task_keys(compiled, task_dims, customer, t, start=a.join(t, sa.true()))
        conditions = [period.holds(a.c.raised_at)]
    else:
        keys, source = _task_keys(compiled, task_dims, customer)
        source = source.join(a, a.c.task_id == tasks.c.id)
        conditions = [period.holds(a.c.raised_at), scope.condition(tasks), where]
    cols, i = [], 0
    for d in by:
        if d == "level":
            cols.append(a.c.level.label(f"l{len(cols)}"))
        else:
            cols.append(keys[i])
            i += 1
    q = (sa.select(*cols, sa.func.count().label("raised"),
                   sa.func.sum(sa.case((a.c.acknowledged_at.is_not(None), 1), else_=0)).label("acknowledged"))
         .select_from(source).where(*conditions).group_by(*cols))
    return _sorted([Row(tuple(r[: len(by)]), {"raised": int(r.raised), "acknowledged": int(r.acknowledged or 0)}) for r in conn.execute(q)])


# -- the pipeline of an entity with a stages field ---------------------------------------------------------


@dataclass(frozen=True)
class Pipeline:
    """An entity's stages field and what its metrics read: the amount, the chance of winning and the close date."""

    entity: Entity
    stage: Field
    won: frozenset[str | int]
    lost: frozenset[str | int]
    value: Field | None = None
    probability: Field | None = None
    close: Field | None = None

    @property
    def stages(self) -> tuple[Choice, ...]:
        return self.stage.choices

    @property
    def funnel(self) -> tuple[Choice, ...]:
        """The stages a record moves forward through: every stage but the lost ones, in order."""
        return tuple(c for c in self.stages if c.value not in self.lost)


def _named(e: Entity, name: str | None, types: tuple[str, ...], guess) -> Field | None:
    if name:
        f = next((f for f in e.all_fields() if f.name == name), None)
        return f if f is not None and f.type in types else None
    return next((f for f in e.all_fields() if f.type in types and guess(f)), None)


def outcome_stages(stage: Field) -> tuple[frozenset, frozenset]:
    """The won and lost stages of a stages field, by their values ('won', 'closed_won', 'lost', ...)."""
    won = frozenset(c.value for c in stage.choices if "won" in str(c.value).lower())
    lost = frozenset(c.value for c in stage.choices if "lost" in str(c.value).lower())
    return won, lost


def pipeline_of(compiled: CompiledModel, entity: str, *, won: Iterable | None = None, lost: Iterable | None = None,
                value: str | None = None, probability: str | None = None, close: str | None = None) -> Pipeline:
    """The pipeline of `entity` (its `pages.stages` field); the amount, probability and close date fields are the ones
    named, else the first money field, an integer field named like 'probability' and a date field named like 'close'."""
    e = compiled.model.entities[entity]
    stage = e.field(e.pages.stages) if e.pages.stages else None
    if stage is None:
        raise LookupError(f"entity '{entity}' has no stages field (pages.stages)")
    guessed_won, guessed_lost = outcome_stages(stage)
    return Pipeline(e, stage, frozenset(won) if won is not None else guessed_won, frozenset(lost) if lost is not None else guessed_lost,
                    _named(e, value, ("money", "decimal", "integer"), lambda f: f.type == "money"),
                    _named(e, probability, ("integer", "decimal"), lambda f: "probab" in f.name),
                    _named(e, close, ("date", "datetime"), lambda f: "close" in f.name))


def _amount(table: sa.Table, f: Field) -> sa.ColumnElement:
    return sa.cast(field_expression(table, f), sa.Numeric(18, 2))


def _stage_changes(pipe: Pipeline) -> sa.Select:
    """Every moment a record of the pipeline entered a stage, from the audit log: (record_id, at, id, stage)."""
    stage = audit_log.c.after[pipe.stage.name].as_string()
    return (sa.select(audit_log.c.record_id, audit_log.c.at, audit_log.c.id, stage.label("stage"))
            .where(audit_log.c.entity == pipe.entity.name, audit_log.c.action.in_(("create", "update")), stage.is_not(None)))


def _changed_in(pipe: Pipeline, period: Period) -> sa.Select:
    """The records of the pipeline with a stage change in the period (read through ix_audit_log_entity_at): a stay that
    ended in it, or a first close in it, is one of their changes."""
    stage = audit_log.c.after[pipe.stage.name].as_string()
    return (sa.select(audit_log.c.record_id).where(audit_log.c.entity == pipe.entity.name, period.holds(audit_log.c.at),
                                                    stage.is_not(None)).distinct())


def _stage_index(pipe: Pipeline, column: sa.ColumnElement) -> sa.ColumnElement:
    """A stage's position in the funnel (0 = first); lost stages and unknown values are NULL."""
    return sa.case({str(c.value): i for i, c in enumerate(pipe.funnel)}, value=column, else_=sa.null())


def stages(conn: sa.Connection, compiled: CompiledModel, pipe: Pipeline, period: Period, where: sa.ColumnElement = EVERY_RECORD,
           period_field: str = "created_at") -> list[Row]:
    """Per stage of the records created in the period (or whose `period_field` is in it): how many are in it now and
    their value; how many reached it (were ever in it or a later stage, from the change history), the conversion to
    the next stage (% of those that reached this one) and the drop-off (100 - conversion)."""
    table = compiled.metadata.tables[pipe.entity.name]
    cohort = sa.and_(_period_condition(compiled, pipe.entity, table, period, period_field), where)
    stage_col = field_expression(table, pipe.stage)
    value = sa.func.sum(_amount(table, pipe.value)) if pipe.value else sa.literal(None)
    now = {r.stage: (int(r.n), r.value) for r in conn.execute(
        sa.select(stage_col.label("stage"), sa.func.count().label("n"), value.label("value")).where(cohort).group_by(stage_col))}
    changes = _stage_changes(pipe).subquery()
    ids = sa.select(table.c.id).where(cohort)
    furthest = (sa.select(changes.c.record_id, sa.func.max(_stage_index(pipe, changes.c.stage)).label("furthest"))
                .where(changes.c.record_id.in_(ids)).group_by(changes.c.record_id).subquery())
    reached_at = dict(conn.execute(sa.select(furthest.c.furthest, sa.func.count()).group_by(furthest.c.furthest)).all())
    funnel = [c.value for c in pipe.funnel]
    reached = {}
    for i, v in enumerate(funnel):
        reached[v] = sum(n for idx, n in reached_at.items() if idx is not None and idx >= i)
    out = []
    for c in pipe.stages:
        n, amount = now.get(str(c.value), (0, None))
        values: dict[str, Any] = {"count": n, "value": _number(amount) if pipe.value else None}
        if c.value in reached:
            i = funnel.index(c.value)
            values["reached"] = reached[c.value]
            nxt = reached.get(funnel[i + 1]) if i + 1 < len(funnel) else None
            conv = 100.0 * nxt / reached[c.value] if nxt is not None and reached[c.value] else None
            values.update(conversion=conv, drop_off=100.0 - conv if conv is not None else None)
        else:
            values.update(reached=None, conversion=None, drop_off=None)
        out.append(Row((c.value,), values))
    return out


def stage_time(conn: sa.Connection, compiled: CompiledModel, pipe: Pipeline, period: Period, where: sa.ColumnElement = EVERY_RECORD) -> list[Row]:
    """Per stage, the stays that ended in the period (the record moved on to another stage): how many, and the
    average and median days a record spent in the stage, from the change history."""
    table = compiled.metadata.tables[pipe.entity.name]
    changes = (_stage_changes(pipe).where(audit_log.c.record_id.in_(sa.select(table.c.id).where(where)))
               .where(audit_log.c.record_id.in_(_changed_in(pipe, period))).subquery())
    order = (changes.c.at, changes.c.id)
    spans = sa.select(changes.c.stage, changes.c.at.label("entered"),
                      sa.func.lead(changes.c.at).over(partition_by=changes.c.record_id, order_by=order).label("left")).subquery()
    days = (seconds_between(conn, spans.c.entered, spans.c.left) / DAY).label("days")
    stays = sa.select(spans.c.stage, days).where(period.holds(spans.c.left)).subquery()
    summary = {r.stage: (int(r.n), float(r.avg)) for r in conn.execute(
        sa.select(stays.c.stage, sa.func.count().label("n"), sa.func.avg(stays.c.days).label("avg")).group_by(stays.c.stage))}
    medians = _percentiles(conn, stays, ["stage"], "days", [0.5])
    out = []
    for c in pipe.stages:
        n, avg = summary.get(str(c.value), (0, None))
        out.append(Row((c.value,), {"stays": n, "avg_days": avg, "median_days": medians.get((str(c.value),), {}).get(0.5)}))
    return out


def win_rate(conn: sa.Connection, compiled: CompiledModel, pipe: Pipeline, period: Period, where: sa.ColumnElement = EVERY_RECORD,
             by: Sequence[str] = ()) -> list[Row]:
    """Records closed in the period (first entered a won or lost stage then), per key of `by` (fields of the entity):
    won, lost, win rate (% won of those closed) and the value won."""
    table = compiled.metadata.tables[pipe.entity.name]
    changes = _stage_changes(pipe).where(audit_log.c.record_id.in_(_changed_in(pipe, period))).subquery()
    closed = sorted(str(v) for v in pipe.won | pipe.lost)
    first_close = (sa.select(changes.c.record_id, sa.func.min(changes.c.at).label("at"))
                   .where(changes.c.stage.in_(closed)).group_by(changes.c.record_id).subquery())
    stage_col = field_expression(table, pipe.stage)
    keys = [_field_key(conn, table, pipe.entity, d).label(f"k{i}") for i, d in enumerate(by)]
    won = sa.case((stage_col.in_(sorted(str(v) for v in pipe.won)), 1), else_=0)
    lost = sa.case((stage_col.in_(sorted(str(v) for v in pipe.lost)), 1), else_=0)
    won_value = sa.func.sum(sa.case((stage_col.in_(sorted(str(v) for v in pipe.won)), _amount(table, pipe.value)))) if pipe.value else sa.literal(None)
    q = (sa.select(*keys, sa.func.sum(won).label("won"), sa.func.sum(lost).label("lost"), won_value.label("won_value"))
         .select_from(table.join(first_close, first_close.c.record_id == table.c.id))
         .where(period.holds(first_close.c.at), where))
    if keys:
        q = q.group_by(*keys)
    out = []
    for r in conn.execute(q):
        w, lo = int(r.won or 0), int(r.lost or 0)
        if not keys and w + lo == 0:
            continue
        out.append(Row(tuple(r[: len(by)]), {"won": w, "lost": lo, "closed": w + lo, "win_rate": 100.0 * w / (w + lo) if w + lo else None,
                                             "won_value": _number(r.won_value) if pipe.value else None}))
    return _sorted(out)


def forecast(conn: sa.Connection, compiled: CompiledModel, pipe: Pipeline, period: Period, where: sa.ColumnElement = EVERY_RECORD,
             zone=dt.UTC) -> list[Row]:
    """Open records (not won or lost) by the month of their close date in the period: how many, their value, and the
    expected value (value x probability %; the value alone where no probability is given)."""
    if pipe.close is None:
        raise LookupError(f"entity '{pipe.entity.name}' has no close date field for a forecast")
    table = compiled.metadata.tables[pipe.entity.name]
    close = field_expression(table, pipe.close)
    month = sa.func.substr(close, 1, 7)
    stage_col = field_expression(table, pipe.stage)
    open_ = sa.or_(stage_col.is_(None), stage_col.not_in(sorted(str(v) for v in pipe.won | pipe.lost)))
    amount = _amount(table, pipe.value) if pipe.value else sa.literal(None)
    chance = (sa.func.coalesce(sa.cast(field_expression(table, pipe.probability), sa.Numeric(18, 4)), 100) / 100
              if pipe.probability else sa.literal(1))
    q = (sa.select(month.label("month"), sa.func.count().label("n"), sa.func.sum(amount).label("value"),
                   sa.func.sum(amount * chance).label("expected"))
         .where(open_, period.holds_date(close, zone), where).group_by(month).order_by(month))
    return [Row((r.month,), {"count": int(r.n), "value": _number(r.value), "expected": _number(r.expected)}) for r in conn.execute(q)]


def _number(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


# -- any entity: counts and sums by a field ----------------------------------------------------------------

MONTH = ":month"


def _field_key(conn: sa.Connection, table: sa.Table, e: Entity, name: str) -> sa.ColumnElement:
    """The key column of an entity dimension: a field, 'FIELD:month' for a date's month, or created_at/updated_at(:month)."""
    base, _, how = name.partition(":")
    if base in ("created_at", "updated_at"):
        col = table.c[base]
        return month_of(conn, col, stored_as_text=False) if how == "month" else col
    f = next((x for x in e.all_fields() if x.name == base), None)
    if f is None:
        raise ValueError(f"{e.name} has no field {base!r}")
    expr = field_expression(table, f)
    return sa.func.substr(expr, 1, 7) if how == "month" else expr


def _period_condition(compiled: CompiledModel, e: Entity, table: sa.Table, period: Period, period_field: str | None,
                      zone=dt.UTC) -> sa.ColumnElement:
    if period_field is None:
        return sa.true()
    if period_field in ("created_at", "updated_at"):
        return period.holds(table.c[period_field])
    f = next(x for x in e.all_fields() if x.name == period_field)
    expr = field_expression(table, f)
    if f.type == "date":
        return period.holds_date(expr, zone)
    return period.holds_date(expr, dt.UTC)  # a datetime field: ISO text in UTC, compared as text


AGGREGATES = ("count", "sum", "avg", "median", "percent")


def aggregate(conn: sa.Connection, compiled: CompiledModel, entity: str, by: Sequence[str],
              measures: Sequence[tuple[str, str | None]], period: Period, where: sa.ColumnElement = EVERY_RECORD,
              period_field: str | None = "created_at", zone=dt.UTC) -> list[Row]:
    """Records of `entity` in the period, per key of `by`: each measure (aggregate, field) as `aggregate` or
    `aggregate_field` ('count', 'sum_value', 'median_value', 'percent': the key's share of all the records counted)."""
    e = compiled.model.entities[entity]
    table = compiled.metadata.tables[entity]
    keys = [_field_key(conn, table, e, d).label(f"k{i}") for i, d in enumerate(by)]
    cond = sa.and_(_period_condition(compiled, e, table, period, period_field, zone), where)
    cols = [sa.func.count().label("count")]
    medians = []
    for agg, name in measures:
        if agg in ("count", "percent"):
            continue
        f = next(x for x in e.all_fields() if x.name == name)
        expr = _amount(table, f) if f.type == "money" else sa.cast(field_expression(table, f), sa.Float)
        if agg == "sum":
            cols.append(sa.func.sum(expr).label(f"sum_{name}"))
        elif agg == "avg":
            cols.append(sa.func.avg(expr).label(f"avg_{name}"))
        elif agg == "median":
            medians.append((name, expr))
    q = sa.select(*keys, *cols).where(cond)
    if keys:
        q = q.group_by(*keys)
    found = conn.execute(q).all()
    total = sum(int(r.count) for r in found)
    quantiles = {}
    for name, expr in medians:
        sub = sa.select(*keys, expr.label("v")).where(cond).subquery()
        quantiles[name] = _percentiles(conn, sub, [k.name for k in keys], "v", [0.5])
    out = []
    for r in found:
        key = tuple(r[: len(by)])
        values: dict[str, Any] = {"count": int(r.count), "percent": 100.0 * int(r.count) / total if total else None}
        for agg, name in measures:
            if agg in ("sum", "avg"):
                values[f"{agg}_{name}"] = _number(r._mapping[f"{agg}_{name}"])
            elif agg == "median":
                values[f"median_{name}"] = _number(quantiles[name].get(key, {}).get(0.5))
        out.append(Row(key, values))
    if not keys and total == 0:
        return []
    return _sorted(out)


# -- activity per customer ------------------------------------------------------------------------------------


def _contact_kind(h: sa.Table = contact_history) -> sa.ColumnElement:
    """What an entry is, for counting: the form of a submission ('call_note'), else its kind ('note')."""
    return sa.case((h.c.kind == "submission", sa.func.coalesce(h.c.form, h.c.kind)), else_=h.c.kind)


def activity(conn: sa.Connection, compiled: CompiledModel, period: Period, by: Sequence[str] = ("kind",), *,
             customer: Entity | None = None, kinds: Sequence[str] | None = None) -> list[Row]:
    """Contact history entries in the period (the platform's bookkeeping left out: changes, tasks, alerts) per key of
    `by`: 'customer' (entries on a customer's own records count for it), 'kind' (a form's name for a submission),
    'month' or 'user'."""
    h = contact_history
    customer = customer or customer_entity(compiled)
    cmap = customer_map(compiled, customer)
    source = h.join(cmap, sa.and_(cmap.c.entity == h.c.entity, cmap.c.record_id == h.c.record_id))
    cols = []
    for i, d in enumerate(by):
        cols.append({"customer": cmap.c.customer_id, "kind": _contact_kind(h), "user": h.c.user_id,
                     "month": month_of(conn, h.c.occurred_at, stored_as_text=False)}[d].label(f"k{i}"))
    cond = [period.holds(h.c.occurred_at), h.c.kind.not_in(BOOKKEEPING)]
    if kinds:
        cond.append(_contact_kind(h).in_(list(kinds)))
    q = sa.select(*cols, sa.func.count().label("n")).select_from(source).where(*cond)
    if cols:
        q = q.group_by(*cols)
    return _sorted([Row(tuple(r[: len(by)]), {"count": int(r.n)}) for r in conn.execute(q) if r.n])


def no_contact(conn: sa.Connection, compiled: CompiledModel, days: int, *, customer: Entity | None = None,
               where: sa.ColumnElement = EVERY_RECORD, now: dt.datetime | None = None, limit: int = 500) -> list[Row]:
    """Customers nobody has been in contact with for `days` days or more (or ever), longest first: the last contact
    (contact history entries on their records, bookkeeping left out) and the days since."""
    now = now or utcnow()
    h = contact_history
    customer = customer or customer_entity(compiled)
    table = compiled.metadata.tables[customer.name]
    cmap = customer_map(compiled, customer)
    last = (sa.select(cmap.c.customer_id, sa.func.max(h.c.occurred_at).label("at"))
            .select_from(h.join(cmap, sa.and_(cmap.c.entity == h.c.entity, cmap.c.record_id == h.c.record_id)))
            .where(h.c.kind.not_in(BOOKKEEPING)).group_by(cmap.c.customer_id).subquery())
    cutoff = _utc(now - dt.timedelta(days=days))
    q = (sa.select(table.c.id, table.c.title, last.c.at).select_from(table.outerjoin(last, last.c.customer_id == table.c.id))
         .where(sa.or_(last.c.at.is_(None), last.c.at < cutoff), where)
         .order_by(last.c.at.asc().nulls_first(), table.c.title, table.c.id).limit(limit))
    out = []
    for r in conn.execute(q):
        at = aware(r.at)
        out.append(Row((r.id,), {"title": r.title, "last_contact": at, "days": (now - at).days if at else None}))
    return out


# -- helpers -----------------------------------------------------------------------------------------------


def _sort_key(value: Any) -> tuple:
    return (value is None, str(type(value)), value if value is not None else 0)


def _sorted(rows: list[Row]) -> list[Row]:
    """Rows in a stable order (by key, empty keys last): the report layer orders them as people read them."""
    return sorted(rows, key=lambda r: tuple(_sort_key(k) for k in r.key))


def user_names(conn: sa.Connection, ids: Iterable[int]) -> Mapping[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return dict(conn.execute(sa.select(users.c.id, users.c.name).where(users.c.id.in_(wanted))).all())
