"""Running a report for a viewer: who may see which reports and dashboards, the period and filters they ask for,
and the table that results, as people read it (names, labels, local dates) with where each row leads.

The figures come from `runtime.metrics`; the pages, the CSV export, the REST API and scheduled emails all read
a `Result`, so a report says the same everywhere. A row's drill-down is a `Drill`: the directory of an entity
filtered by (field, operator, value as typed), or a record's page; the web turns it into a link.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import reporting
from engine.build import humanise
from engine.compiler import CompiledModel
from engine.model import Entity, Field, Model
from engine.reports import (
    METRICS,
    PERIODS,
    TASK_METRICS,
    Column,
    Dashboard,
    Report,
    may_see,
    period_dates,
)
from forms import widgets

from . import metrics, records
from . import values as V
from .metrics import Period, Row, TaskScope
from .schema import group_members, users

KIND_TEXT = {"submission": "Form", "task": "Task", "alert": "Alert", "note": "Note", "change": "Change", "project": "Project"}
NONE_TEXT = {"assignee": "Nobody yet", "group": "No team", "customer": "No customer", "user": "Tailor", "process": "—",
             "step": "—", "kind": "—", "month": "No date", "level": "—", "stage": "No stage"}
MAX_REFERENCES = 500  # records a viewer's reference filter may stand for


# -- who is looking --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Whoever a report is run for: their roles (their own and their groups'), groups, zone, and whether they may
    count everyone's tasks (monitor_tasks) or only those they may open."""

    user_id: int
    roles: frozenset[str]
    groups: frozenset[str]
    monitor: bool
    zone: ZoneInfo

    @property
    def scope(self) -> TaskScope:
        return metrics.EVERYONE if self.monitor else TaskScope(self.user_id, self.groups)


def viewer(conn: sa.Connection, model: Model, user: Mapping[str, Any], *, monitor: bool) -> Viewer:
    """The viewer `user` is: `monitor` says whether their permissions let them see everyone's tasks."""
    groups = frozenset(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user["id"])).scalars())
    roles = set(user.get("roles") or [])
    for g in groups:
        if g in model.groups:
            roles |= {r for r, _ in model.groups[g].roles}
    return Viewer(user["id"], frozenset(roles), groups, monitor, widgets.zone_of(model, dict(user)))


def visible_reports(model: Model, v: Viewer) -> list[Report]:
    return [r for r in model.reports.values() if may_see(r.audience, set(v.roles), set(v.groups))]


def visible_dashboards(model: Model, v: Viewer) -> list[Dashboard]:
    return [d for d in model.dashboards.values() if may_see(d.audience, set(v.roles), set(v.groups))]


def report_for(model: Model, v: Viewer, name: str) -> Report | None:
    """The report `name` if the viewer may see it (None: as if it did not exist)."""
    r = model.reports.get(name)
    return r if r is not None and may_see(r.audience, set(v.roles), set(v.groups)) else None


def dashboard_for(model: Model, v: Viewer, name: str) -> Dashboard | None:
    d = model.dashboards.get(name)
    return d if d is not None and may_see(d.audience, set(v.roles), set(v.groups)) else None


def home_dashboard(model: Model, v: Viewer) -> Dashboard | None:
    """The viewer's home dashboard: that of the first of their roles that has one they may see."""
    d = reporting.home_dashboard(model, sorted(v.roles))
    return d if d is not None and may_see(d.audience, set(v.roles), set(v.groups)) else None


# -- what the viewer asks for ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """The period and viewer filters of one request, read from its parameters (what could not be read is a problem)."""

    preset: str | None = None                 # a key of PERIODS; None: the dates given, or no period at all
    start: dt.date | None = None              # first day, local
    end: dt.date | None = None                # last day, local (inclusive)
    filters: tuple[tuple[str, str], ...] = ()  # (viewer filter, value as given)
    problems: tuple[str, ...] = ()

    def pairs(self) -> list[tuple[str, str]]:
        """The query-string parameters that ask for this again."""
        out: list[tuple[str, str]] = []
        if self.preset:
            out.append(("period", self.preset))
        elif self.start or self.end:
            out += [("period", "custom"), ("from", self.start.isoformat() if self.start else ""), ("to", self.end.isoformat() if self.end else "")]
        return out + [(k, v) for k, v in self.filters if v]


def _first(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    return str(value).strip()[:100] if value is not None else ""


def read_ask(report: Report, params: Mapping[str, Any], today: dt.date) -> Ask:
    """The period and filters `params` (a query string) ask for; the report's defaults for what they leave out."""
    problems = []
    default = reporting.default_period(report)
    preset, start, end = None, None, None
    if default is not None:
        given = _first(params, "period")
        if given == "custom" or (not given and (_first(params, "from") or _first(params, "to"))):
            for key in ("from", "to"):
                text = _first(params, key)
                if not text:
                    continue
                try:
                    day = dt.date.fromisoformat(text)
                except ValueError:
                    problems.append(f"“{text[:40]}” is not a date; write it like {today.isoformat()}.")
                    continue
                start, end = (day, end) if key == "from" else (start, day)
            if start and end and start > end:
                problems.append("The period ends before it starts; the dates were swapped.")
                start, end = end, start
            if not (start or end) and not problems:
                preset = default
        elif given and given not in PERIODS:
            problems.append(f"“{given[:40]}” is not a period; showing {PERIODS[default].lower()}.")
            preset = default
        else:
            preset = given or default
        if problems and not (start or end):
            preset = default
    filters = []
    for name, _ in report.viewer_filters:
        filters.append((name, _first(params, name)))
    return Ask(preset, start, end, tuple(filters), tuple(problems))


def period_of(ask: Ask, zone: ZoneInfo, today: dt.date) -> tuple[Period, dt.date | None, dt.date | None]:
    """The UTC period an ask stands for, and its first and last local days (None: open)."""
    if ask.preset:
        first, after = period_dates(ask.preset, today)
    else:
        first, after = ask.start, ask.end + dt.timedelta(days=1) if ask.end else None
    def moment(day: dt.date | None) -> dt.datetime | None:
        return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC) if day else None
    return Period(moment(first), moment(after)), first, after - dt.timedelta(days=1) if after else None


def period_text(first: dt.date | None, last: dt.date | None) -> str:
    """'1 Apr – 30 Apr 2026', 'From 1 Apr 2026', 'All time'."""
    def day(d: dt.date, year: bool = True) -> str:
        return f"{d.day} {d:%b}" + (f" {d.year}" if year else "")
    if first and last:
        return day(first) if first == last else f"{day(first, first.year != last.year)} – {day(last)}"
    if first:
        return f"From {day(first)}"
    if last:
        return f"Until {day(last)}"
    return "All time"


# -- the result --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drill:
    """Where a row leads: the directory of `entity` filtered by (field, op, value) as the directory's filters read
    them, or the page of record `record` of `entity`."""

    entity: str
    filters: tuple[tuple[str, str, str], ...] = ()
    record: int | None = None

    def url(self) -> str:
        """The record's page, or the directory's URL with these filters (its query string: f1, o1, v1 per filter,
        several v's for 'in'; see admin.web.listing)."""
        if self.record is not None:
            return f"/records/{self.entity}/{self.record}"
        pairs: list[tuple[str, str]] = []
        for i, (name, op, value) in enumerate(self.filters, 1):
            pairs += [(f"f{i}", name), (f"o{i}", op)]
            pairs += [(f"v{i}", v) for v in (value.split(",") if op == "in" else [value]) if v]
        return f"/directory/{self.entity}" + (f"?{urlencode(pairs)}" if pairs else "")


@dataclass(frozen=True)
class Cell:
    value: Any   # as computed (a number, an id, a choice value), for CSV and the API
    text: str    # as people read it


@dataclass(frozen=True)
class ResultRow:
    key: tuple
    cells: tuple[Cell, ...]   # one per column of the result
    labels: tuple[str, ...]   # the dimensions as people read them
    drill: Drill | None = None


@dataclass(frozen=True)
class Result:
    report: Report
    columns: tuple[Column, ...]
    rows: tuple[ResultRow, ...]
    ask: Ask
    period: Period
    period_text: str              # '' when the report takes no period
    chart: str                    # bar, line, funnel, table
    measure: str | None           # the column the chart draws
    problems: tuple[str, ...] = ()
    options: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # viewer filter -> (value, label) choices
    value_field: Field | None = None  # what money columns are amounts of (their currency)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def series(self) -> list[tuple[str, str | None, float | None, Drill | None]]:
        """What the chart draws: (label, second dimension's label or None, value, drill) per row."""
        if self.measure is None:
            return []
        index = [c.name for c in self.columns].index(self.measure) if self.measure in [c.name for c in self.columns] else None
        out = []
        for row in self.rows:
            value = row.cells[index].value if index is not None else None
            out.append((row.labels[0] if row.labels else "", row.labels[1] if len(row.labels) > 1 else None,
                        float(value) if isinstance(value, (int, float, Decimal)) else None, row.drill))
        return out


@dataclass(frozen=True)
class BoardFilter:
    """A viewer filter of a dashboard: one per name any of its reports lets the viewer change, applied to each of them
    that has it (a `Result` of another report ignores it), with the choices they offer together."""

    name: str
    label: str
    options: tuple[tuple[str, str], ...]  # (value, label); empty: typed as text
    value: str                            # as given
    reports: tuple[str, ...]              # the labels of the reports it applies to


def board_filters(model: Model, results: Iterable[Result]) -> list[BoardFilter]:
    """The viewer filters of a dashboard's reports, by name in the order the reports declare them."""
    found: dict[str, BoardFilter] = {}
    for result in results:
        given = dict(result.ask.filters)
        for name, _ in result.report.viewer_filters:
            options = tuple(result.options.get(name, ()))
            have = found.get(name)
            if have is None:
                found[name] = BoardFilter(name, reporting.filter_label(model, result.report, name), options, given.get(name, ""),
                                          (result.report.label,))
            else:
                more = tuple(o for o in options if o[0] not in {v for v, _ in have.options})
                found[name] = replace(have, options=have.options + more, reports=have.reports + (result.report.label,))
    return list(found.values())


class ReportError(ValueError):
    """A report that cannot be run as defined against this database (e.g. an entity without a close date field)."""


def run(conn: sa.Connection, compiled: CompiledModel, report: Report, v: Viewer, ask: Ask,
        now: dt.datetime | None = None) -> Result:
    """The report's table for the viewer: rows of cells in the report's columns, sorted as people read them."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(v.zone).date()
    model = compiled.model
    metric = METRICS.get(report.metric) if report.metric else None
    takes_period = reporting.default_period(report) is not None
    period, first, last = period_of(ask, v.zone, today) if takes_period else (Period(), None, None)
    problems = list(ask.problems)
    runner = _Runner(conn, compiled, report, v, ask, period, now, problems)
    raw = runner.rows()
    cols = reporting.columns(model, report)
    names = widgets.Names(conn, compiled, v.zone)
    runner.prefetch(names, raw)
    rows = [runner.row(r, cols, names) for r in raw]
    if metric is None or metric.dimensions != ("stage",):
        rows = runner.ordered(rows, raw)
    kind, measure = reporting.chart_of(model, report)
    return Result(report, cols, tuple(rows), ask, period, period_text(first, last) if takes_period else "", kind,
                  measure if measure in [c.name for c in cols] else None, tuple(problems), runner.options(names),
                  runner.value_field)


class _Runner:
    """One run of one report: the metric's rows, and how each becomes a row people read."""

    def __init__(self, conn, compiled: CompiledModel, report: Report, v: Viewer, ask: Ask, period: Period, now: dt.datetime,
                 problems: list[str]):
        self.conn, self.compiled, self.model, self.r, self.v, self.ask = conn, compiled, compiled.model, report, v, ask
        self.period, self.now, self.problems = period, now, problems
        self.metric = report.metric
        self.entity: Entity | None = self.model.entities.get(report.entity) if report.entity else None
        self.pipe = None
        self.value_field: Field | None = None
        if self.metric is not None and METRICS[self.metric].stages:
            p = report.pipeline
            self.pipe = metrics.pipeline_of(compiled, report.entity, won=p.won, lost=p.lost, value=p.value, probability=p.probability,
                                            close=p.close)
            self.value_field = self.pipe.value
        self.customer = self.entity if self.entity is not None and self.entity.customer else None

    # -- filters -------------------------------------------------------------------------------------------------
    def _field(self, name: str) -> Field | None:
        return next((f for f in self.entity.all_fields() if f.name == name), None) if self.entity else None

    def viewer_values(self) -> list[tuple[str, str]]:
        return [(k, val) for k, val in self.ask.filters if val]

    def record_filters(self) -> list[tuple[str, Any]]:
        """The report's fixed filters and the viewer's, as `records.search_records` filters."""
        out: list[tuple[str, Any]] = [(name, value) for name, value, _ in self.r.filters]
        for name, text in self.viewer_values():
            f = self._field(name)
            if f is None:
                continue
            value = self._typed(f, text)
            if value is not _UNREADABLE:
                out.append((name, value))
        return out

    def _typed(self, f: Field, text: str) -> Any:
        if f.type == "reference" and f.entity:
            if text.isdigit():
                return int(text)
            found = records.search_records(self.conn, self.compiled, f.entity, {"title": {"contains": text}}, page_size=MAX_REFERENCES)
            return {"in": [x.id for x in found.items] or [-1]}
        if f.type == "user":
            ids = [uid for uid, name, username in self.conn.execute(sa.select(users.c.id, users.c.name, users.c.username))
                   if text.casefold() in ((name or "").casefold(), (username or "").casefold()) or text == str(uid)]
            if not ids:
                self.problems.append(f"{f.label}: nobody is called “{text[:40]}”.")
                return _UNREADABLE
            return {"in": ids}
        if f.type in ("choice", "multichoice"):
            for c in f.choices:
                if text.casefold() in (str(c.value).casefold(), c.label.casefold()):
                    return c.value
            self.problems.append(f"{f.label}: “{text[:40]}” is not one of its choices.")
            return _UNREADABLE
        try:
            return widgets.get(f.type).parse(text, f, self.v.zone)
        except (V.NotConvertible, ValueError, TypeError) as exc:
            self.problems.append(f"{f.label}: “{text[:40]}” {exc}.")
            return _UNREADABLE

    def where(self) -> sa.ColumnElement:
        try:
            return records.filter_condition(self.conn, self.compiled, self.r.entity, self.record_filters())
        except records.BadQuery as exc:
            self.problems.append(str(exc))
            return sa.false()

    def task_where(self) -> sa.ColumnElement:
        fixed = {name: value for name, value, _ in self.r.filters}
        processes = _as_list(fixed.get("process"))
        groups = _as_list(fixed.get("group"))
        for name, text in self.viewer_values():
            table = self.model.processes if name == "process" else self.model.groups
            if text not in table:
                self.problems.append(f"There is no {'process' if name == 'process' else 'team'} “{text[:40]}”.")
                continue
            if name == "process":
                processes = [p for p in processes if p == text] if processes else [text]
                processes = processes or ["-"]
            else:
                groups = [g for g in groups if g == text] if groups else [text]
                groups = groups or ["-"]
        return metrics.task_filter(processes, groups)

    def options(self, names) -> dict[str, list[tuple[str, str]]]:
        """The choices each viewer filter offers: (value, label); empty for a filter typed as text."""
        out: dict[str, list[tuple[str, str]]] = {}
        for name, _ in self.r.viewer_filters:
            if name == "process" and self.metric in TASK_METRICS:
                out[name] = [(p.name, p.label) for p in sorted(self.model.processes.values(), key=lambda p: p.label)]
            elif name == "group" and self.metric in TASK_METRICS:
                out[name] = [(g.name, g.label) for g in sorted(self.model.groups.values(), key=lambda g: g.label)]
            elif (f := self._field(name)) is not None and f.type in ("choice", "multichoice"):
                out[name] = [(str(c.value), c.label) for c in f.choices]
            elif f is not None and f.type == "boolean":
                out[name] = [("yes", "Yes"), ("no", "No")]
            elif f is not None and f.type == "group":
                out[name] = [(g.name, g.label) for g in sorted(self.model.groups.values(), key=lambda g: g.label)]
            elif f is not None and f.type == "user":
                staff = self.conn.execute(sa.select(users.c.username, users.c.name).where(users.c.active, users.c.company_id.is_(None))
                                          .order_by(users.c.name)).all()
                out[name] = [(u.username, u.name) for u in staff]
            else:
                out[name] = []
        return out

    # -- the metric's rows ---------------------------------------------------------------------------------------
    def rows(self) -> list[Row]:
        conn, c, r, by = self.conn, self.compiled, self.r, self.r.by
        scope = self.v.scope
        try:
            if self.metric in ("sla", "first_response"):
                fn = metrics.sla if self.metric == "sla" else metrics.first_response
                return fn(conn, c, self.period, by, scope=scope, customer=self.customer, where=self.task_where(), now=self.now)
            if self.metric == "workload":
                today = self.now.astimezone(self.v.zone).date()
                week_end = dt.datetime.combine(today + dt.timedelta(days=7 - today.weekday()), dt.time(), self.v.zone)
                return metrics.workload(conn, c, by, scope=scope, now=self.now, week_end=week_end, customer=self.customer,
                                        where=self.task_where())
            if self.metric == "alerts":
                return metrics.alert_counts(conn, c, self.period, by, scope=scope, customer=self.customer, where=self.task_where())
            if self.metric == "pipeline":
                return metrics.stages(conn, c, self.pipe, self.period, self.where(), r.period_field or "created_at")
            if self.metric == "stage_time":
                return metrics.stage_time(conn, c, self.pipe, self.period, self.where())
            if self.metric == "win_rate":
                return metrics.win_rate(conn, c, self.pipe, self.period, self.where(), by)
            if self.metric == "forecast":
                return metrics.forecast(conn, c, self.pipe, self.period, self.where(), self.v.zone)
            if self.metric == "activity":
                return metrics.activity(conn, c, self.period, by, customer=self.customer)
            if self.metric == "no_contact":
                return metrics.no_contact(conn, c, r.days or 30, customer=self.customer, where=self.where(), now=self.now)
            measures = [(m.aggregate, m.field) for m in r.measures] or [("count", None)]
            zone = self.v.zone
            return metrics.aggregate(conn, c, r.entity, by, measures, self.period, self.where(), r.period_field or "created_at", zone)
        except LookupError as exc:
            raise ReportError(str(exc)) from exc

    # -- a row as people read it --------------------------------------------------------------------------------
    def row(self, raw: Row, cols: tuple[Column, ...], names) -> ResultRow:
        labels = tuple(self.label(d, k, names) for d, k in zip(self.r.by, raw.key))
        cells = []
        for col in cols:
            if col.kind == "dimension":
                i = list(self.r.by).index(col.name)
                cells.append(Cell(raw.key[i], labels[i]))
            else:
                value = raw.values.get(col.name)
                cells.append(Cell(value, self.number_text(col, value)))
        return ResultRow(raw.key, tuple(cells), labels, self.drill(raw))

    def label(self, dim: str, key: Any, names) -> str:
        """A dimension's value as people read it."""
        model = self.model
        base, _, how = dim.partition(":")
        if key is None:
            f = self._field(base) if self.metric in (None, "win_rate") else None
            return "Not set" if f is not None or base in ("created_at", "updated_at") else NONE_TEXT.get(base, "—")
        if how == "month" or (base == "month" and self.metric in ("forecast", "activity")):
            return month_text(str(key))
        if self.metric in (None, "win_rate") and (f := self._field(base)) is not None:
            return widgets.get(f.type).text(key, f, names) or "Not set"
        if base == "stage" and self.pipe is not None:
            return widgets.get("choice").text(key, self.pipe.stage, names)
        if base == "process":
            p = model.processes.get(key)
            return p.label if p else humanise(str(key))
        if base == "step":
            process, _, step = str(key).partition("/")
            p = model.processes.get(process)
            return f"{p.label if p else humanise(process)}: {humanise(step)}"
        if base == "group":
            g = model.groups.get(key)
            return g.label if g else humanise(str(key))
        if base in ("assignee", "user"):
            return names.user(key)
        if base == "customer":
            return names.title(self.customer_name(), key)
        if base == "level":
            return f"Level {key}"
        if base == "kind":
            form = model.forms.get(key)
            return form.label if form else KIND_TEXT.get(key, humanise(str(key)))
        return str(key)

    def prefetch(self, names, raw: list[Row]) -> None:
        """Look up at once the names and titles the rows' keys stand for (one query per kind, not one per row)."""
        fields, values = [], []
        for i, d in enumerate(self.r.by):
            base = d.partition(":")[0]
            f = self._field(base) if self.metric in (None, "win_rate") else None
            if f is None and base in ("assignee", "user"):
                f = Field(f"k{i}", "user", self.r.loc, base)
            elif f is None and base == "customer":
                f = Field(f"k{i}", "reference", self.r.loc, base, entity=self.customer_name())
            if f is not None:
                fields.append(replace(f, name=f"k{i}"))
        if fields:
            values = [{f"k{i}": k for i, k in enumerate(r.key)} for r in raw]
            names.prefetch(fields, values)

    def customer_name(self) -> str:
        return (self.customer or metrics.customer_entity(self.compiled)).name

    def number_text(self, col: Column, value: Any) -> str:
        if value is None:
            return "—"
        if col.kind == "percent":
            return f"{value:.1f} %"
        if col.kind == "hours":
            return f"{value:,.1f} h"
        if col.kind == "days":
            return f"{value:,.1f} days" if value != 1 else "1 day"
        if col.kind == "money":
            f = self.money_field(col)
            return widgets.get("money").text(value, f, None) if f is not None else f"{value:,.2f}"
        if col.kind == "moment":
            return widgets.when_text(value, self.v.zone)
        if isinstance(value, float):
            return f"{value:,.2f}".rstrip("0").rstrip(".")
        return f"{value:,}"

    def money_field(self, col: Column) -> Field | None:
        if self.metric is None and col.name.partition("_")[2]:
            return self._field(col.name.partition("_")[2])
        return self.value_field

    # -- where a row leads ----------------------------------------------------------------------------------------
    def drill(self, raw: Row) -> Drill | None:
        by = self.r.by
        if "customer" in by and self.metric not in (None, "win_rate"):
            key = raw.key[list(by).index("customer")]
            return Drill(self.customer_name(), record=key) if key is not None else None
        if self.entity is None or self.metric in TASK_METRICS or self.metric == "activity":
            return None
        if self.metric == "no_contact":
            return Drill(self.entity.name, record=raw.key[0])
        filters: list[tuple[str, str, str]] = list(self._fixed_drill())
        if self.metric in ("pipeline", "stage_time"):
            filters.append((self.pipe.stage.name, "eq", _choice_text(self.pipe.stage, raw.key[0])))
        elif self.metric == "forecast":
            filters += _month_filters(self.pipe.close.name, str(raw.key[0]))
            open_stages = [_choice_text(self.pipe.stage, c.value) for c in self.pipe.stages if c.value not in self.pipe.won | self.pipe.lost]
            filters.append((self.pipe.stage.name, "in", ",".join(open_stages)))
        else:
            for d, k in zip(by, raw.key):
                base, _, how = d.partition(":")
                if k is None:
                    filters.append((base, "empty", ""))
                elif how == "month":
                    filters += _month_filters(base, str(k))
                else:
                    f = self._field(base)
                    filters.append((base, "eq", self._drill_value(f, k)))
            if self.metric == "win_rate":
                closed = [_choice_text(self.pipe.stage, c.value) for c in self.pipe.stages if c.value in self.pipe.won | self.pipe.lost]
                filters.append((self.pipe.stage.name, "in", ",".join(closed)))
        if self.metric in (None, "pipeline") and (self.period.start or self.period.end):
            filters += self._period_drill()
        return Drill(self.entity.name, tuple(filters))

    def _drill_value(self, f: Field | None, value: Any) -> str:
        if f is not None and f.type == "choice":
            return _choice_text(f, value)
        if f is not None and f.type == "user":
            name = self.conn.execute(sa.select(users.c.username).where(users.c.id == value)).scalar()
            return name or str(value)
        return str(value)

    def _fixed_drill(self) -> Iterable[tuple[str, str, str]]:
        """The report's fixed and viewer filters as the directory writes them (those it cannot say are left out)."""
        for name, value, _ in self.r.filters:
            if isinstance(value, list):
                yield (name, "in", ",".join(str(x) for x in value))
            elif isinstance(value, dict):
                op, v = next(iter(value.items()))
                if op == "empty":
                    yield (name, "empty" if v else "notempty", "")
                elif op in ("eq", "lt", "gt", "contains", "startswith"):
                    yield (name, op, str(v))
                elif op == "in":
                    yield (name, "in", ",".join(str(x) for x in v))
            else:
                yield (name, "eq", str(value))
        for name, text in self.viewer_values():
            yield (name, "eq", text)

    def _period_drill(self) -> list[tuple[str, str, str]]:
        name = self.r.period_field or "created_at"
        f = self._field(name)
        out = []
        if f is not None and f.type == "date":
            if self.period.start:
                out.append((name, "gt", (self.period.start.astimezone(self.v.zone).date() - dt.timedelta(days=1)).isoformat()))
            if self.period.end:
                out.append((name, "lt", self.period.end.astimezone(self.v.zone).date().isoformat()))
            return out
        if self.period.start:
            out.append((name, "gt", (self.period.start - dt.timedelta(seconds=1)).astimezone(self.v.zone).strftime("%Y-%m-%dT%H:%M:%S")))
        if self.period.end:
            out.append((name, "lt", self.period.end.astimezone(self.v.zone).strftime("%Y-%m-%dT%H:%M:%S")))
        return out

    # -- order ----------------------------------------------------------------------------------------------------
    def ordered(self, rows: list[ResultRow], raw: list[Row]) -> list[ResultRow]:
        """Rows as people look for them: months and levels in order, the rest by name; the empty group last."""
        if self.metric == "no_contact":
            return rows
        def key(row: ResultRow) -> tuple:
            parts = []
            for d, k, label in zip(self.r.by, row.key, row.labels):
                base, _, how = d.partition(":")
                if k is None:
                    parts.append((1, ""))
                elif how == "month" or base in ("month", "level"):
                    parts.append((0, str(k).zfill(12)))
                elif self.metric in (None, "win_rate") and (f := self._field(base)) is not None and f.type == "choice":
                    order = [c.value for c in f.choices]
                    parts.append((0, str(order.index(k)).zfill(6) if k in order else label.casefold()))
                else:
                    parts.append((0, label.casefold()))
            return tuple(parts)
        return sorted(rows, key=key)


_UNREADABLE = object()


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _choice_text(f: Field, value: Any) -> str:
    """A choice as a directory filter writes it: its label, as people read it (the value if the label has a comma,
    which a list of choices would split)."""
    label = next((c.label for c in f.choices if c.value == value), None)
    return label if label and "," not in label else str(value)


def month_text(key: str) -> str:
    """'2026-04' -> 'Apr 2026'."""
    try:
        return dt.date.fromisoformat(key[:7] + "-01").strftime("%b %Y")
    except ValueError:
        return key


def _month_filters(field_name: str, key: str) -> list[tuple[str, str, str]]:
    """The directory filters of a month of a date field: after its last day before, before the first day after."""
    try:
        first = dt.date.fromisoformat(key[:7] + "-01")
    except ValueError:
        return []
    after = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return [(field_name, "gt", (first - dt.timedelta(days=1)).isoformat()), (field_name, "lt", after.isoformat())]


def csv_rows(result: Result) -> list[list[str]]:
    """The table as CSV rows: the header, then each row's cells as people read them (numbers without units)."""
    out = [[c.label for c in result.columns]]
    for row in result.rows:
        cells = []
        for col, cell in zip(result.columns, row.cells):
            if col.kind in ("dimension", "moment") or cell.value is None:
                cells.append(cell.text if cell.value is not None or col.kind == "dimension" else "")
            elif isinstance(cell.value, float):
                cells.append(f"{cell.value:.2f}")
            else:
                cells.append(str(cell.value))
        out.append(cells)
    return out
