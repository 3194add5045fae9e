"""Reports and dashboards as definitions: the `report` and `dashboard` kinds, their built-in metrics and periods.

A report counts the records of an entity (group by fields, measure count, sum, avg, median, percent) or shows
one of the zero-config metrics (`METRICS`: SLA compliance, first response, workload, alerts, the pipeline of an
entity with a stages field, time in stage, win rate, forecast, activity per customer, customers with no
contact). A dashboard is a grid of reports for some roles or groups, and may be the home dashboard of roles.

Pure like the rest of the engine. This module holds the typed definitions (built by `engine.build`), the metric
registry and periods as dates; `engine.reporting` says what a report shows in a model (its columns, chart,
compiled spec) and checks reports and dashboards; `runtime.reports` runs them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .errors import Loc

# -- periods ------------------------------------------------------------------------------------------------

#: the period presets a report may default to and the picker offers, with what people read
PERIODS: dict[str, str] = {
    "this_week": "This week", "last_7_days": "Last 7 days", "last_30_days": "Last 30 days", "last_90_days": "Last 90 days",
    "this_month": "This month", "last_month": "Last month", "this_quarter": "This quarter", "last_quarter": "Last quarter",
    "this_year": "This year", "last_12_months": "Last 12 months", "next_30_days": "Next 30 days",
    "next_90_days": "Next 90 days", "next_6_months": "Next 6 months", "all_time": "All time",
}


def _month_start(day: dt.date, months: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_dates(preset: str, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """A preset as local dates: (first day, the day after the last day); None for an open end."""
    if preset == "all_time":
        return None, None
    if preset == "this_week":
        start = today - dt.timedelta(days=today.weekday())
        return start, start + dt.timedelta(days=7)
    if preset.startswith("last_") and preset.endswith("_days"):
        return today - dt.timedelta(days=int(preset.split("_")[1]) - 1), today + dt.timedelta(days=1)
    if preset.startswith("next_") and preset.endswith("_days"):
        return today, today + dt.timedelta(days=int(preset.split("_")[1]))
    quarter = _month_start(today, -((today.month - 1) % 3))
    return {
        "this_month": (_month_start(today), _month_start(today, 1)),
        "last_month": (_month_start(today, -1), _month_start(today)),
        "this_quarter": (quarter, _month_start(quarter, 3)),
        "last_quarter": (_month_start(quarter, -3), quarter),
        "this_year": (dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)),
        "last_12_months": (_month_start(today, -11), _month_start(today, 1)),
        "next_6_months": (_month_start(today), _month_start(today, 6)),
    }[preset]


# -- built-in metrics --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a report's table: a dimension or a measure, with how its values read."""

    name: str
    label: str
    kind: str = "count"  # count, number, percent, hours, days, money, moment, text, dimension


TASK_DIMENSIONS = ("process", "step", "group", "assignee", "customer")
TASK_METRICS = ("sla", "first_response", "workload", "alerts")
TASK_FILTERS = ("process", "group")  # what the tasks of a task metric can be narrowed to (fixed, or by the viewer)
DIMENSION_LABELS = {"process": "Process", "step": "Step", "group": "Team", "assignee": "Person", "customer": "Customer",
                    "level": "Escalation level", "kind": "Kind of contact", "month": "Month", "user": "Who", "stage": "Stage"}


@dataclass(frozen=True, slots=True)
class Metric:
    """A zero-config metric: what it counts by, its columns, and what the period applies to ('' if none)."""

    name: str
    label: str
    columns: tuple[Column, ...]
    dimensions: tuple[str, ...]     # what it can be grouped by; ("fields",): the entity's fields
    default_by: tuple[str, ...]
    chart: str = "bar"
    chart_measure: str = ""
    period: str = ""                # what the period filters, in words; '' when the metric takes none
    default_period: str = "last_30_days"
    stages: bool = False            # needs an entity with a stages field
    fixed_by: bool = False          # its dimension cannot be changed


def _sla(name: str, label: str, period: str) -> Metric:
    return Metric(name, label, (
        Column("on_time", "Done on time"), Column("late", "Done late"), Column("overdue", "Overdue, still open"),
        Column("total", "Tasks"), Column("compliance", "On time (%)", "percent"),
        Column("median_hours", "Median hours to complete", "hours"), Column("p90_hours", "90th percentile hours", "hours")),
        TASK_DIMENSIONS, ("process",), "bar", "compliance", period)


METRICS: dict[str, Metric] = {m.name: m for m in (
    _sla("sla", "SLA compliance", "tasks completed in the period, and those due in it that are still open"),
    _sla("first_response", "First response", "first steps completed in the period, and those due in it that are still open"),
    Metric("workload", "Workload", (Column("open", "Open"), Column("overdue", "Overdue"), Column("due_this_week", "Due this week"),
                                    Column("unassigned", "Waiting in a queue")), TASK_DIMENSIONS, ("assignee",), "bar", "open"),
    Metric("alerts", "Alerts", (Column("raised", "Alerts raised"), Column("acknowledged", "Acknowledged")),
           TASK_DIMENSIONS + ("level",), ("level",), "bar", "raised", "alerts raised in the period"),
    Metric("pipeline", "Pipeline", (Column("count", "Now in stage"), Column("value", "Value now", "money"), Column("reached", "Reached"),
                                    Column("conversion", "Went on (%)", "percent"), Column("drop_off", "Dropped off (%)", "percent")),
           ("stage",), ("stage",), "funnel", "reached", "records created in the period", "all_time", stages=True, fixed_by=True),
    Metric("stage_time", "Time in stage", (Column("stays", "Stays"), Column("avg_days", "Average days", "days"),
                                           Column("median_days", "Median days", "days")),
           ("stage",), ("stage",), "bar", "median_days", "stays that ended in the period", "last_90_days", stages=True, fixed_by=True),
    Metric("win_rate", "Win rate", (Column("won", "Won"), Column("lost", "Lost"), Column("closed", "Closed"),
                                    Column("win_rate", "Win rate (%)", "percent"), Column("won_value", "Value won", "money")),
           ("fields",), (), "bar", "win_rate", "records closed in the period", "last_90_days", stages=True),
    Metric("forecast", "Forecast", (Column("count", "Open"), Column("value", "Value", "money"), Column("expected", "Expected value", "money")),
           ("month",), ("month",), "bar", "expected", "close dates in the period", "next_6_months", stages=True, fixed_by=True),
    Metric("activity", "Activity", (Column("count", "Entries"),), ("customer", "kind", "month", "user"), ("kind",), "bar", "count",
           "contact history entries in the period"),
    Metric("no_contact", "No contact", (Column("last_contact", "Last contact", "moment"), Column("days", "Days since", "count")),
           ("customer",), ("customer",), "table", "days", fixed_by=True),
)}

CHARTS = ("bar", "line", "funnel", "table")
AGGREGATES = ("count", "sum", "avg", "median", "percent")
AGGREGATE_WORDS = {"sum": "Total", "avg": "Average", "median": "Median"}
NUMERIC = frozenset({"integer", "decimal", "money"})
GROUPABLE = frozenset({"choice", "user", "reference", "boolean", "group", "date", "datetime", "string", "email"})
FILTERABLE = frozenset({"choice", "multichoice", "user", "reference", "boolean", "group", "string", "email", "integer", "decimal",
                        "money", "date", "datetime"})
SYSTEM_PERIOD_FIELDS = ("created_at", "updated_at")
MAX_GROUP_BY = 2

# -- the definitions --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measure:
    """count, percent (a group's share of the records counted), or sum/avg/median of a number field."""

    aggregate: str
    field: str | None
    loc: Loc

    @property
    def name(self) -> str:
        return self.aggregate if self.field is None else f"{self.aggregate}_{self.field}"


@dataclass(frozen=True, slots=True)
class Chart:
    type: str
    loc: Loc
    measure: str | None = None  # the column it draws (default: the metric's, else the first measure)


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """Which stages count as won and lost, and the amount, probability and close date fields (default: guessed)."""

    won: tuple[str, ...] | None = None
    lost: tuple[str, ...] | None = None
    value: str | None = None
    probability: str | None = None
    close: str | None = None
    loc: Loc | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A report emailed on an RRULE to some roles and groups (their members who may see it)."""

    rrule: str
    to: tuple[tuple[str, str, Loc], ...]
    loc: Loc
    starts: str | None = None
    starts_loc: Loc | None = None


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    loc: Loc
    pack: str
    label: str
    description: str = ""
    metric: str | None = None
    entity: str | None = None
    entity_loc: Loc | None = None
    group_by: tuple[tuple[str, Loc], ...] = ()
    group_by_given: bool = False
    measures: tuple[Measure, ...] = ()
    filters: tuple[tuple[str, Any, Loc], ...] = ()   # (field, value or {op: value}, where)
    viewer_filters: tuple[tuple[str, Loc], ...] = ()
    period_field: str | None = None
    period_default: str | None = None
    period_loc: Loc | None = None
    chart: Chart | None = None
    columns: tuple[tuple[str, Loc], ...] = ()
    days: int | None = None
    audience: tuple[tuple[str, str, Loc], ...] = ()   # ("role" | "group", name, where); empty: all staff
    pipeline: PipelineOptions = PipelineOptions()
    deliveries: tuple[Delivery, ...] = ()
    kind: str = field(default="report", init=False)

    @property
    def by(self) -> tuple[str, ...]:
        """The dimensions it groups by: as written, else the metric's default."""
        if self.group_by_given or self.metric is None:
            return tuple(name for name, _ in self.group_by)
        return METRICS[self.metric].default_by if self.metric in METRICS else ()


@dataclass(frozen=True, slots=True)
class Dashboard:
    name: str
    loc: Loc
    pack: str
    label: str
    rows: tuple[tuple[tuple[str, Loc], ...], ...]
    description: str = ""
    audience: tuple[tuple[str, str, Loc], ...] = ()
    home_for: tuple[tuple[str, Loc], ...] = ()
    kind: str = field(default="dashboard", init=False)

    @property
    def reports(self) -> tuple[str, ...]:
        return tuple(name for row in self.rows for name, _ in row)


def may_see(audience: tuple[tuple[str, str, Loc], ...], roles: set[str], groups: set[str]) -> bool:
    """Whether someone with these roles and groups is in an audience (an empty audience is everyone)."""
    if not audience:
        return True
    return any((kind == "role" and name in roles) or (kind == "group" and name in groups) for kind, name, _ in audience)
