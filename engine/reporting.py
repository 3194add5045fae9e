"""What a report shows in a model (its columns, chart and compiled spec), and the checks of reports and dashboards.

The kinds themselves, the metric registry and periods are in `engine.reports`.
"""
from __future__ import annotations

import zoneinfo
from collections.abc import Iterator

from . import recurrence
from .errors import Loc, Problem
from .model import Entity, Field, Model
from .recurrence import RecurrenceError
from .reports import (
    AGGREGATE_WORDS,
    DIMENSION_LABELS,
    FILTERABLE,
    GROUPABLE,
    MAX_GROUP_BY,
    METRICS,
    NUMERIC,
    SYSTEM_PERIOD_FIELDS,
    TASK_FILTERS,
    TASK_METRICS,
    Column,
    Dashboard,
    Measure,
    Metric,
    Report,
)

# -- what a report shows -------------------------------------------------------------------------------------------


def entity_of(model: Model, r: Report) -> Entity | None:
    return model.entities.get(r.entity) if r.entity else None


def _field(e: Entity, name: str) -> Field | None:
    return next((f for f in e.all_fields() if f.name == name), None)


def dimension_label(model: Model, r: Report, name: str) -> str:
    """What a dimension column is called: a field's label ('Stage'), 'Created (month)', or the metric dimension's name."""
    base, _, how = name.partition(":")
    e = entity_of(model, r)
    label = None
    if base in ("created_at", "updated_at"):
        label = {"created_at": "Created", "updated_at": "Last changed"}[base]
    elif e is not None and r.metric in (None, "win_rate") and (f := _field(e, base)) is not None:
        label = f.label
    elif e is not None and base == "stage" and e.pages.stages and (stage := _field(e, e.pages.stages)) is not None:
        label = stage.label
    if label is None:
        label = DIMENSION_LABELS.get(base, base.replace("_", " ").capitalize())
    return f"{label} (month)" if how == "month" else label


def filter_label(model: Model, r: Report, name: str) -> str:
    """What a viewer filter is called: the field's label, or 'Process' / 'Team' for the task metrics."""
    e = entity_of(model, r)
    f = _field(e, name) if e is not None else None
    return f.label if f is not None else DIMENSION_LABELS.get(name, name.replace("_", " ").capitalize())


def measure_columns(model: Model, r: Report) -> tuple[Column, ...]:
    """The measure columns a report can show, in order."""
    if r.metric is not None:
        return METRICS[r.metric].columns if r.metric in METRICS else ()
    e = entity_of(model, r)
    out = []
    for m in r.measures or (Measure("count", None, r.loc),):
        if m.aggregate == "count":
            out.append(Column("count", "Count"))
        elif m.aggregate == "percent":
            out.append(Column("percent", "Share (%)", "percent"))
        else:
            f = _field(e, m.field) if e is not None and m.field else None
            label = f"{AGGREGATE_WORDS[m.aggregate]} {(f.label if f else m.field or '').lower()}"
            out.append(Column(m.name, label[:1].upper() + label[1:], "money" if f is not None and f.type == "money" else "number"))
    return tuple(out)


def columns(model: Model, r: Report) -> tuple[Column, ...]:
    """The table's columns: the dimensions, then the measures; as the report's `columns:` lists them where given."""
    dims = tuple(Column(name, dimension_label(model, r, name), "dimension") for name in r.by)
    every = dims + measure_columns(model, r)
    if not r.columns:
        return every
    by_name = {c.name: c for c in every}
    return tuple(by_name[n] for n, _ in r.columns if n in by_name)


def chart_of(model: Model, r: Report) -> tuple[str, str | None]:
    """(chart type, the measure it draws); 'table' draws nothing."""
    metric = METRICS.get(r.metric) if r.metric else None
    kind = r.chart.type if r.chart else (metric.chart if metric else "bar")
    if not r.by and kind != "table" and r.metric != "no_contact":
        kind = "table"  # one figure: nothing to draw it against
    measures = [c.name for c in measure_columns(model, r)]
    measure = (r.chart.measure if r.chart and r.chart.measure else None) or (metric.chart_measure if metric else None) or \
        (measures[0] if measures else None)
    return kind, measure


def default_period(r: Report) -> str | None:
    """The period a report opens with; None when it takes no period."""
    metric = METRICS.get(r.metric) if r.metric else None
    if metric is not None and not metric.period:
        return None
    return r.period_default or (metric.default_period if metric else "last_90_days")


def report_spec(model: Model, r: Report) -> dict:
    """The compiled report: what it counts, its columns as they read, its chart and period (golden files)."""
    kind, measure = chart_of(model, r)
    return {
        "name": r.name, "label": r.label, "description": r.description, "pack": r.pack, "metric": r.metric, "entity": r.entity,
        "group_by": list(r.by), "measures": [m.name for m in r.measures], "filters": {k: v for k, v, _ in r.filters},
        "viewer_filters": [n for n, _ in r.viewer_filters], "period": {"field": r.period_field, "default": default_period(r)},
        "chart": {"type": kind, "measure": measure}, "days": r.days,
        "columns": [{"name": c.name, "label": c.label, "kind": c.kind} for c in columns(model, r)],
        "for": [f"{k}:{n}" for k, n, _ in r.audience],
        **({"deliver": [{"schedule": d.rrule, "starts": d.starts, "to": [f"{k}:{n}" for k, n, _ in d.to]} for d in r.deliveries]}
           if r.deliveries else {}),
    }


def delivery_zone(model: Model) -> str:
    """The time zone deliveries' rules run in: the organisation's, its first calendar's (UTC without one)."""
    for c in model.calendars.values():
        try:
            return zoneinfo.ZoneInfo(c.timezone).key
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


def dashboard_spec(d: Dashboard) -> dict:
    return {"name": d.name, "label": d.label, "description": d.description, "pack": d.pack,
            "rows": [[n for n, _ in row] for row in d.rows], "for": [f"{k}:{n}" for k, n, _ in d.audience],
            "home_for": [r for r, _ in d.home_for]}


# -- checks ---------------------------------------------------------------------------------------------------------


class _Checks:
    def __init__(self, model: Model, broken: set[tuple[str, str]]):
        self.m = model
        self.broken = broken

    def known(self, kind: str, name: str, table) -> bool:
        return name in table or (kind, name) in self.broken

    def unknown(self, loc: Loc, kind: str, name: str, table, context: str) -> Problem:
        known = ", ".join(sorted(set(table) | {n for k, n in self.broken if k == kind})) or "none defined"
        return Problem(loc, f"reference.{kind}", f"unknown {kind} '{name}'{context} (known: {known})")

    def audience(self, audience, where: str) -> Iterator[Problem]:
        for kind, name, loc in audience:
            table = self.m.roles if kind == "role" else self.m.groups
            if not self.known(kind, name, table):
                yield self.unknown(loc, kind, name, table, f" in {where}")

    def report(self, r: Report) -> Iterator[Problem]:
        where = f"report '{r.name}'"
        metric = METRICS.get(r.metric) if r.metric else None
        yield from self.audience(r.audience, where)
        e = entity_of(self.m, r)
        if r.entity and e is None:
            if not self.known("entity", r.entity, self.m.entities):
                yield self.unknown(r.entity_loc or r.loc, "entity", r.entity, self.m.entities, f" in {where}")
            return
        if metric is None and e is None:
            yield Problem(r.loc, "report.what", f"{where} needs 'entity:' (records to count) or 'metric:' (one of: {', '.join(METRICS)})")
            return
        if metric is not None and metric.stages:
            if e is None:
                staged = ", ".join(sorted(n for n, x in self.m.entities.items() if x.pages.stages)) or "none"
                yield Problem(r.loc, "report.entity", f"{where}: metric '{metric.name}' needs 'entity:', an entity with a stages field "
                                                      f"(pages.stages; these have one: {staged})")
                return
            if not e.pages.stages:
                yield Problem(r.entity_loc or r.loc, "report.entity", f"{where}: metric '{metric.name}' needs an entity with a stages field "
                                                                      f"(pages.stages); '{e.name}' has none")
                return
        if metric is not None and e is not None and metric.name in ("activity", "no_contact") and not e.customer:
            yield Problem(r.entity_loc or r.loc, "report.entity", f"{where}: metric '{metric.name}' counts per customer; '{e.name}' is not "
                                                                  f"a customer entity (customer: true)")
        if metric is not None and e is not None and metric.name in TASK_METRICS and not e.customer:
            yield Problem(r.entity_loc or r.loc, "report.entity", f"{where}: for metric '{metric.name}', 'entity:' names the customer "
                                                                  f"entity tasks are counted per; '{e.name}' is not a customer entity")
        yield from self.group_by(r, metric, e, where)
        yield from self.measures(r, metric, e, where)
        yield from self.filters(r, metric, e, where)
        yield from self.period(r, metric, e, where)
        yield from self.shown(r, metric, where)
        if metric is not None and metric.name == "no_contact" and r.days is None:
            yield Problem(r.loc, "report.days", f"{where}: metric 'no_contact' needs 'days:' (no contact for how many days)")
        elif r.days is not None and (metric is None or metric.name != "no_contact"):
            yield Problem(r.loc, "report.days", f"{where}: 'days:' applies to metric 'no_contact' only")
        if r.pipeline.loc is not None:
            yield from self.pipeline(r, metric, e, where)
        for d in r.deliveries:
            yield from self.audience(d.to, f"{where} deliver")
            try:
                recurrence.parse(d.rrule, d.starts, delivery_zone(self.m))
            except RecurrenceError as exc:
                loc = d.starts_loc if exc.field == "starts" and d.starts_loc else d.loc
                yield Problem(loc, f"report.{'starts' if exc.field == 'starts' else 'schedule'}", f"{where}: {exc}")

    def group_by(self, r: Report, metric, e, where: str) -> Iterator[Problem]:
        if len(r.group_by) > MAX_GROUP_BY:
            yield Problem(r.group_by[MAX_GROUP_BY][1], "report.group-by", f"{where} groups by at most {MAX_GROUP_BY} things")
        if metric is not None and metric.fixed_by and r.group_by_given:
            if tuple(n for n, _ in r.group_by) != metric.default_by:
                loc = r.group_by[0][1] if r.group_by else r.loc
                yield Problem(loc, "report.group-by", f"{where}: metric '{metric.name}' is always grouped by "
                                                      f"{', '.join(metric.default_by)}; leave out 'group_by:'")
            return
        for name, loc in r.group_by:
            if metric is not None and metric.dimensions != ("fields",):
                if name not in metric.dimensions:
                    yield Problem(loc, "report.group-by", f"{where}: metric '{metric.name}' can be grouped by {', '.join(metric.dimensions)}; "
                                                          f"found '{name}'")
                continue
            base, _, how = name.partition(":")
            if how and how != "month":
                yield Problem(loc, "report.group-by", f"{where}: '{name}': after ':' only 'month' is possible (e.g. 'created_at:month')")
                continue
            if base in SYSTEM_PERIOD_FIELDS:
                if not how:
                    yield Problem(loc, "report.group-by", f"{where}: group by '{base}:month' (each moment is its own group otherwise)")
                continue
            f = _field(e, base)
            if f is None:
                yield Problem(loc, "report.group-by", f"{where} groups by '{base}', which is not a field of {e.name} "
                                                      f"(fields: {', '.join(x.name for x in e.all_fields())})")
            elif f.type not in GROUPABLE:
                yield Problem(loc, "report.group-by", f"{where}: a {f.type} field ('{base}') cannot be grouped by "
                                                      f"(possible: {', '.join(sorted(GROUPABLE))} fields)")
            elif how and f.type not in ("date", "datetime"):
                yield Problem(loc, "report.group-by", f"{where}: '{name}': only dates are grouped by month; '{base}' is a {f.type} field")

    def measures(self, r: Report, metric, e, where: str) -> Iterator[Problem]:
        if metric is not None:
            if r.measures:
                yield Problem(r.measures[0].loc, "report.measures", f"{where}: metric '{metric.name}' has its own measures "
                                                                    f"({', '.join(c.name for c in metric.columns)}); choose among them with 'columns:'")
            return
        seen = set()
        for m in r.measures:
            if m.name in seen:
                yield Problem(m.loc, "report.measures", f"{where} measures '{m.name}' twice")
            seen.add(m.name)
            if m.field is None:
                continue
            f = _field(e, m.field)
            if f is None:
                yield Problem(m.loc, "report.measures", f"{where}: {m.aggregate} of '{m.field}', which is not a field of {e.name}")
            elif f.type not in NUMERIC:
                yield Problem(m.loc, "report.measures", f"{where}: {m.aggregate} needs a number field (integer, decimal or money); "
                                                        f"'{m.field}' is a {f.type} field")

    def task_filters(self, r: Report, metric: Metric, where: str) -> Iterator[Problem]:
        tables = {"process": ("process", self.m.processes), "group": ("group", self.m.groups)}
        for name, value, loc in r.filters:
            if name not in tables:
                yield Problem(loc, "report.filters", f"{where}: the tasks of metric '{metric.name}' can be filtered by "
                                                     f"{' or '.join(TASK_FILTERS)}; found '{name}'")
                continue
            kind, table = tables[name]
            for v in value if isinstance(value, list) else [value]:
                if not isinstance(v, str) or not self.known(kind, v, table):
                    yield self.unknown(loc, kind, str(v), table, f" in {where} filters")
        for name, loc in r.viewer_filters:
            if name not in tables:
                yield Problem(loc, "report.filters", f"{where}: viewers may filter the tasks of metric '{metric.name}' by "
                                                     f"{' or '.join(TASK_FILTERS)}; found '{name}'")

    def filters(self, r: Report, metric, e, where: str) -> Iterator[Problem]:
        if metric is not None and metric.name in TASK_METRICS:
            yield from self.task_filters(r, metric, where)
            return
        if (r.filters or r.viewer_filters) and (e is None or (metric is not None and not metric.stages and metric.name != "no_contact")):
            loc = (r.filters[0][2] if r.filters else r.viewer_filters[0][1])
            yield Problem(loc, "report.filters", f"{where}: filters apply to the records of an entity report or a pipeline metric")
            return
        system = {"title", "created_at", "updated_at", "id"}
        for name, value, loc in r.filters:
            f = _field(e, name)
            if f is None and name not in system:
                yield Problem(loc, "report.filters", f"{where} filters on '{name}', which is not a field of {e.name}")
            elif f is not None and f.type in ("choice", "multichoice"):
                given = next(iter(value.values())) if isinstance(value, dict) else value  # {op: value} or the value
                values = given if isinstance(given, list) else [given]
                known = {str(c.value) for c in f.choices}
                for v in values:
                    if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v) not in known:
                        yield Problem(loc, "report.filters", f"{where}: '{v}' is not a choice of '{name}' (choices: {', '.join(sorted(known))})")
        for name, loc in r.viewer_filters:
            f = _field(e, name)
            if f is None:
                yield Problem(loc, "report.filters", f"{where}: viewers may filter on fields of {e.name}; '{name}' is not one")
            elif f.type not in FILTERABLE:
                yield Problem(loc, "report.filters", f"{where}: a {f.type} field ('{name}') cannot be a viewer's filter")

    def period(self, r: Report, metric, e, where: str) -> Iterator[Problem]:
        if r.period_loc is None:
            return
        if metric is not None and not metric.period:
            yield Problem(r.period_loc, "report.period", f"{where}: metric '{metric.name}' takes no period")
            return
        if r.period_field is not None:
            if metric is not None and metric.name != "pipeline":
                yield Problem(r.period_loc, "report.period", f"{where}: the period of metric '{metric.name}' always applies to "
                                                             f"{metric.period}; leave out 'field:'")
            elif r.period_field not in SYSTEM_PERIOD_FIELDS:
                f = _field(e, r.period_field)
                if f is None or f.type not in ("date", "datetime"):
                    yield Problem(r.period_loc, "report.period", f"{where}: the period applies to a date or a moment (created_at, updated_at "
                                                                 f"or a date field of {e.name}); '{r.period_field}' is not one")

    def shown(self, r: Report, metric, where: str) -> Iterator[Problem]:
        known = {c.name: c for c in (Column(n, n, "dimension") for n in r.by)} | {c.name: c for c in measure_columns(self.m, r)}
        for name, loc in r.columns:
            if name not in known:
                yield Problem(loc, "report.columns", f"{where} shows '{name}', which is none of its columns (possible: {', '.join(known)})")
        if r.chart and r.chart.measure:
            measures = [c.name for c in measure_columns(self.m, r)]
            if r.chart.measure not in measures:
                yield Problem(r.chart.loc, "report.chart", f"{where} draws '{r.chart.measure}', which is not one of its measures "
                                                           f"(possible: {', '.join(measures)})")
        if r.chart and r.chart.type == "funnel" and (metric is None or metric.name != "pipeline") and len(r.by) != 1:
            yield Problem(r.chart.loc, "report.chart", f"{where}: a funnel draws one bar per group; group by one thing")

    def pipeline(self, r: Report, metric, e, where: str) -> Iterator[Problem]:
        loc = r.pipeline.loc
        if metric is None or not metric.stages:
            yield Problem(loc, "report.pipeline", f"{where}: 'pipeline:' applies to the pipeline metrics "
                                                  f"({', '.join(n for n, m in METRICS.items() if m.stages)})")
            return
        stage = _field(e, e.pages.stages)
        values = {str(c.value) for c in stage.choices}
        for v in (r.pipeline.won or ()) + (r.pipeline.lost or ()):
            if str(v) not in values:
                yield Problem(loc, "report.pipeline", f"{where}: '{v}' is not a stage of {e.name} (stages: {', '.join(sorted(values))})")
        for option, types in (("value", NUMERIC), ("probability", {"integer", "decimal"}), ("close", {"date", "datetime"})):
            name = getattr(r.pipeline, option)
            if name is None:
                continue
            f = _field(e, name)
            if f is None or f.type not in types:
                yield Problem(loc, "report.pipeline", f"{where}: pipeline.{option} names '{name}', which is not a "
                                                      f"{' or '.join(sorted(types))} field of {e.name}")

    def dashboard(self, d: Dashboard) -> Iterator[Problem]:
        where = f"dashboard '{d.name}'"
        yield from self.audience(d.audience, where)
        seen: dict[str, Loc] = {}
        for name, loc in (x for row in d.rows for x in row):
            if not self.known("report", name, self.m.reports):
                yield self.unknown(loc, "report", name, self.m.reports, f" in {where}")
            elif name in seen:
                yield Problem(loc, "dashboard.repeated", f"report '{name}' is on {where} twice (first at {seen[name]})")
            seen.setdefault(name, loc)
        for role, loc in d.home_for:
            if not self.known("role", role, self.m.roles):
                yield self.unknown(loc, "role", role, self.m.roles, f" in {where} home_for")


def check_reports(model: Model, broken: set[tuple[str, str]] = frozenset()) -> Iterator[Problem]:
    """Every problem of the model's reports and dashboards; a role is the home of one dashboard at most."""
    c = _Checks(model, set(broken))
    for r in model.reports.values():
        yield from c.report(r)
    homes: dict[str, tuple[str, Loc]] = {}
    for d in model.dashboards.values():
        yield from c.dashboard(d)
        for role, loc in d.home_for:
            if role in homes:
                yield Problem(loc, "dashboard.home", f"role '{role}' already has a home dashboard: '{homes[role][0]}' ({homes[role][1]})")
            homes.setdefault(role, (d.name, loc))


def home_dashboard(model: Model, roles: list[str]) -> Dashboard | None:
    """The home dashboard of the first of `roles` that has one."""
    for role in roles:
        for d in model.dashboards.values():
            if any(r == role for r, _ in d.home_for):
                return d
    return None
