"""The report and dashboard kinds: how they load, every problem located, overlays on them, periods as dates."""
from __future__ import annotations

import datetime as dt

import pytest

from engine import reporting, reports
from engine.loader import load, load_model
from tests.conftest import ACME, CRM

BASE = {
    "opportunity.yaml": """
        kind: entity
        name: opportunity
        customer: false
        fields:
          name: {type: string, required: true}
          stage: {type: choice, choices: [lead, proposal, won, lost], default: lead}
          value: {type: money, currency: GBP}
          owner: user
          notes: text
          closes: date
        pages: {stages: stage}
        """,
    "company.yaml": "kind: entity\nname: company\ncustomer: true\nfields: {name: string}\n",
    "roles.yaml": "kind: role\nname: sales_manager\npermissions: [access]\n---\nkind: role\nname: director\npermissions: [access]\n",
    "groups.yaml": "kind: group\nname: sales\n",
    "process.yaml": "kind: process\nname: follow_up\nsteps: [{id: call, title: Call, due: 2 days}]\n",
}


def problems(*folders) -> list[str]:
    return [str(p).replace("p/", "", 1) for p in load_model(folders)[1]]


def test_the_crm_pack_ships_dashboards_for_sales_managers_support_leads_and_directors():
    model = load([CRM])
    homes = {role: reporting.home_dashboard(model, [role]).name for role in ("sales_manager", "support_lead", "director")}
    assert homes == {"sales_manager": "sales", "support_lead": "support", "director": "management"}
    assert all(name in model.reports for d in model.dashboards.values() for name in d.reports)
    assert model.reports["pipeline_funnel"].by == ("stage",)  # the metric's own dimension when none is written
    assert reporting.chart_of(model, model.reports["pipeline_funnel"]) == ("funnel", "reached")


def test_a_report_counting_records(packs):
    model = load([packs.write("p", {**BASE, "r.yaml": """
        kind: report
        name: by_stage
        entity: opportunity
        group_by: stage
        measures: [count, {sum: value}, {median: value}, percent]
        filters: {owner: {empty: false}}
        viewer_filters: [owner]
        period: {field: closes, default: this_quarter}
        for: [role:sales_manager, group:sales]
        """})])
    r = model.reports["by_stage"]
    assert (r.label, r.by, [m.name for m in r.measures], r.period_field, reporting.default_period(r)) == (
        "By stage", ("stage",), ["count", "sum_value", "median_value", "percent"], "closes", "this_quarter")
    assert [(c.name, c.label, c.kind) for c in reporting.columns(model, r)] == [
        ("stage", "Stage", "dimension"), ("count", "Count", "count"), ("sum_value", "Total value", "money"),
        ("median_value", "Median value", "money"), ("percent", "Share (%)", "percent")]
    assert reports.may_see(r.audience, {"staff"}, {"sales"}) and not reports.may_see(r.audience, {"staff"}, set())


@pytest.mark.parametrize("doc, expected", [
    ("kind: report\nname: r\n", "r.yaml:1:1: expected at least one of the keys entity, metric [schema.shape]"),
    ("kind: report\nname: r\nmetric: magic\n", "r.yaml:3:9: expected one of sla, first_response, workload, alerts, pipeline, stage_time, "
                                               "win_rate, forecast, activity, no_contact in 'metric', found 'magic' [schema.enum]"),
    ("kind: report\nname: r\nentity: nowhere\n",
     "r.yaml:3:9: unknown entity 'nowhere' in report 'r' (known: company, opportunity) [reference.entity]"),
    ("kind: report\nname: r\nentity: opportunity\ngroup_by: notes\n",
     "r.yaml:4:11: report 'r': a text field ('notes') cannot be grouped by (possible: boolean, choice, date, datetime, email, group, "
     "reference, string, user fields) [report.group-by]"),
    ("kind: report\nname: r\nentity: opportunity\ngroup_by: [stage, owner, closes]\n",
     "r.yaml:4:26: report 'r' groups by at most 2 things [report.group-by]"),
    ("kind: report\nname: r\nentity: opportunity\ngroup_by: stage:month\n",
     "r.yaml:4:11: report 'r': 'stage:month': only dates are grouped by month; 'stage' is a choice field [report.group-by]"),
    ("kind: report\nname: r\nentity: opportunity\nmeasures: [{sum: name}]\n",
     "r.yaml:4:18: report 'r': sum needs a number field (integer, decimal or money); 'name' is a string field [report.measures]"),
    ("kind: report\nname: r\nentity: opportunity\nfilters: {stage: [lead, signed]}\n",
     "r.yaml:4:11: report 'r': 'signed' is not a choice of 'stage' (choices: lead, lost, proposal, won) [report.filters]"),
    ("kind: report\nname: r\nentity: opportunity\ncolumns: [stage, count]\n",
     "r.yaml:4:11: report 'r' shows 'stage', which is none of its columns (possible: count) [report.columns]"),
    ("kind: report\nname: r\nmetric: pipeline\nentity: company\n",
     "r.yaml:4:9: report 'r': metric 'pipeline' needs an entity with a stages field (pages.stages); 'company' has none [report.entity]"),
    ("kind: report\nname: r\nmetric: win_rate\n",
     "r.yaml:2:7: report 'r': metric 'win_rate' needs 'entity:', an entity with a stages field (pages.stages; these have one: "
     "opportunity) [report.entity]"),
    ("kind: report\nname: r\nmetric: sla\ngroup_by: level\n",
     "r.yaml:4:11: report 'r': metric 'sla' can be grouped by process, step, group, assignee, customer; found 'level' [report.group-by]"),
    ("kind: report\nname: r\nmetric: sla\nfilters: {process: nope}\n",
     "r.yaml:4:11: unknown process 'nope' in report 'r' filters (known: follow_up) [reference.process]"),
    ("kind: report\nname: r\nmetric: sla\nmeasures: [count]\n",
     "r.yaml:4:12: report 'r': metric 'sla' has its own measures (on_time, late, overdue, total, compliance, median_hours, p90_hours); "
     "choose among them with 'columns:' [report.measures]"),
    ("kind: report\nname: r\nmetric: workload\nperiod: this_month\n", "r.yaml:4:1: report 'r': metric 'workload' takes no period [report.period]"),
    ("kind: report\nname: r\nmetric: no_contact\nentity: company\n",
     "r.yaml:2:7: report 'r': metric 'no_contact' needs 'days:' (no contact for how many days) [report.days]"),
    ("kind: report\nname: r\nmetric: pipeline\nentity: opportunity\nchart: {type: bar, measure: won}\n",
     "r.yaml:5:8: report 'r' draws 'won', which is not one of its measures (possible: count, value, reached, conversion, drop_off) "
     "[report.chart]"),
    ("kind: report\nname: r\nmetric: pipeline\nentity: opportunity\npipeline: {won: [signed]}\n",
     "r.yaml:5:1: report 'r': 'signed' is not a stage of opportunity (stages: lead, lost, proposal, won) [report.pipeline]"),
    ("kind: report\nname: r\nmetric: sla\nfor: [role:nobody]\n",
     "r.yaml:4:7: unknown role 'nobody' in report 'r' (known: director, sales_manager) [reference.role]"),
    ("kind: report\nname: r\nmetric: sla\ndeliver: [{schedule: 'FREQ=SOMETIMES', to: [role:director]}]\n",
     "r.yaml:4:22: report 'r': recurrence 'FREQ=SOMETIMES': FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY, found 'SOMETIMES' "
     "[report.schedule]"),
    ("kind: report\nname: r\nmetric: sla\ndeliver: [{schedule: 'FREQ=WEEKLY;BYDAY=MO', to: [group:nobody]}]\n",
     "r.yaml:4:51: unknown group 'nobody' in report 'r' deliver (known: sales) [reference.group]"),
    ("kind: dashboard\nname: d\nrows: [[gone]]\n", "d.yaml:3:9: unknown report 'gone' in dashboard 'd' (known: none defined) [reference.report]"),
    ("kind: dashboard\nname: d\nrows: []\n", "d.yaml:3:7: must not be empty in 'rows' [schema.empty]"),
], ids=["what", "metric-name", "entity", "group-by-type", "group-by-many", "group-by-month", "measure-type", "filter-choice", "columns",
        "no-stages", "needs-entity", "metric-dimension", "task-filter", "own-measures", "no-period", "days", "chart-measure",
        "pipeline-stage", "audience", "deliver-rule", "deliver-to", "dashboard-report", "dashboard-empty"])
def test_report_problems_are_located(packs, doc, expected):
    name = "d.yaml" if doc.startswith("kind: dashboard") else "r.yaml"
    folder = packs.write("p", {**BASE, name: doc})
    assert problems(folder) == [expected]


def test_a_role_has_one_home_dashboard(packs):
    folder = packs.write("p", {**BASE, "r.yaml": "kind: report\nname: r\nmetric: sla\n", "d.yaml": """
        kind: dashboard
        name: one
        home_for: [director]
        rows: [[r]]
        ---
        kind: dashboard
        name: two
        home_for: [director]
        rows: [[r], [r]]
        """})
    assert problems(folder) == [
        "d.yaml:8:12: role 'director' already has a home dashboard: 'one' (p/d.yaml:3:12) [dashboard.home]",
        "d.yaml:9:14: report 'r' is on dashboard 'two' twice (first at p/d.yaml:9:9) [dashboard.repeated]"]


def test_overlays_change_reports_and_dashboards_of_the_base_pack(packs):
    base = packs.write("base", {**BASE, "r.yaml": """
        kind: report
        name: by_stage
        entity: opportunity
        group_by: stage
        ---
        kind: report
        name: sla
        metric: sla
        ---
        kind: dashboard
        name: sales
        rows: [[by_stage, sla]]
        """})
    client = packs.write("client", {"o.yaml": """
        kind: overlay
        name: our_stages
        target: report/by_stage
        set: {label: Our pipeline, chart: {type: line, measure: count}}
        add_filters: {owner: {empty: false}}
        ---
        kind: report
        name: mine
        metric: workload
        ---
        kind: overlay
        name: our_dashboard
        target: dashboard/sales
        remove_reports: [sla]
        add_rows: [[mine]]
        """}, extends="base: '>=1.0'")
    model = load([base, client])
    r = model.reports["by_stage"]
    assert (r.label, r.chart.type, r.chart.measure, [f for f, _, _ in r.filters]) == ("Our pipeline", "line", "count", ["owner"])
    assert [[n for n, _ in row] for row in model.dashboards["sales"].rows] == [["by_stage"], ["mine"]]


def test_overlay_problems_on_reports_are_located(packs):
    base = packs.write("base", {**BASE, "r.yaml": "kind: report\nname: r\nentity: opportunity\nfilters: {owner: 1}\n---\n"
                                                  "kind: dashboard\nname: d\nrows: [[r]]\n"})
    client = packs.write("client", {"o.yaml": """
        kind: overlay
        name: o1
        target: report/r
        set: {entity: company}
        add_filters: {owner: 2}
        ---
        kind: overlay
        name: o2
        target: dashboard/d
        remove_reports: [gone]
        """}, extends="base: '>=1.0'")
    assert [p.replace("client/", "") for p in problems(base, client)] == [
        "o.yaml:4:7: 'entity' cannot be set on a report by an overlay (possible: chart, days, description, label) [overlay.set]",
        "o.yaml:5:15: report 'r' already filters on 'owner' [overlay.exists]",
        "o.yaml:10:18: dashboard 'd' has no report 'gone' (known: r) [overlay.missing]",
    ]


@pytest.mark.parametrize("preset, expected", [
    ("this_week", ("2026-04-13", "2026-04-20")), ("last_7_days", ("2026-04-09", "2026-04-16")),
    ("this_month", ("2026-04-01", "2026-05-01")), ("last_month", ("2026-03-01", "2026-04-01")),
    ("this_quarter", ("2026-04-01", "2026-07-01")), ("last_quarter", ("2026-01-01", "2026-04-01")),
    ("this_year", ("2026-01-01", "2027-01-01")), ("last_12_months", ("2025-05-01", "2026-05-01")),
    ("next_30_days", ("2026-04-15", "2026-05-15")), ("next_6_months", ("2026-04-01", "2026-10-01")), ("all_time", (None, None)),
])
def test_periods_are_local_dates(preset, expected):
    start, end = reports.period_dates(preset, dt.date(2026, 4, 15))  # a Wednesday
    assert (start and start.isoformat(), end and end.isoformat()) == expected


def test_the_client_pack_keeps_the_crm_dashboards():
    model = load([CRM, ACME])
    assert set(model.dashboards) == {"sales", "support", "management"}
