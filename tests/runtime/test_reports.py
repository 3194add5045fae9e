"""Running the CRM pack's reports for a viewer: what they read (names, labels, local dates), where rows lead, whose
tasks they count, the period and filters a request asks for, and the chart drawn from it, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema.core import load_schema

from runtime import charts, metrics, records, reports
from runtime.db import upgrade
from runtime.plan import apply, describe, index_names, plan
from runtime.reports import Ask, Viewer
from runtime.schema import users

from .conftest import Store
from .test_metrics import NOW, at, pipeline_data, sla_data  # noqa: F401  (fixtures)

LONDON = ZoneInfo("Europe/London")
APRIL = Ask(start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 30))


def manager(store: Store, *, monitor: bool = True, groups=frozenset()) -> Viewer:
    return Viewer(store.alice, frozenset({"staff", "sales_manager", "support_lead", "director"}), frozenset(groups), monitor, LONDON)


def texts(result) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in result.rows]


def test_the_funnel_reads_as_people_read_it_and_each_stage_leads_to_its_opportunities(pipeline_data):  # noqa: F811
    store, _, _ = pipeline_data
    report = store.compiled.model.reports["pipeline_funnel"]
    with store.connect() as conn:
        result = reports.run(conn, store.compiled, report, manager(store), APRIL, now=NOW)
    assert result.period_text == "1 Apr – 30 Apr 2026"
    assert [c.label for c in result.columns] == ["Stage", "Now in stage", "Value now", "Reached", "Went on (%)", "Dropped off (%)"]
    assert texts(result) == [
        ["Lead", "1", "£200.00", "4", "75.0 %", "25.0 %"], ["Qualified", "0", "—", "3", "66.7 %", "33.3 %"],
        ["Proposal", "1", "£300.00", "2", "50.0 %", "50.0 %"], ["Negotiation", "0", "—", "1", "100.0 %", "0.0 %"],
        ["Closed – won", "1", "£1,000.00", "1", "—", "—"], ["Closed – lost", "1", "£500.00", "—", "—", "—"]]
    url = result.rows[2].drill.url()
    # the directory of proposals created in April (London time: April begins at 23:00 UTC on 31 March)
    assert urlsplit(url).path == "/directory/opportunity"
    assert parse_qsl(urlsplit(url).query) == [("f1", "stage"), ("o1", "eq"), ("v1", "Proposal"), ("f2", "created_at"), ("o2", "gt"),
                                             ("v2", "2026-03-31T23:59:59"), ("f3", "created_at"), ("o3", "lt"), ("v3", "2026-05-01T00:00:00")]
    assert result.series()[0][:3] == ("Lead", None, 4.0)  # the funnel draws how many reached each stage


def test_forecast_win_rate_and_stage_time_reports(pipeline_data):  # noqa: F811
    store, _, ids = pipeline_data
    model = store.compiled.model
    with store.begin() as conn:
        records.update_record(conn, store.compiled, "opportunity", ids["o1"], {"owner": store.alice}, store.alice, at=at("04-20"))
    with store.connect() as conn:
        forecast = reports.run(conn, store.compiled, model.reports["forecast"], manager(store),
                               Ask(start=dt.date(2026, 5, 1), end=dt.date(2026, 7, 31)), now=NOW)
        won = reports.run(conn, store.compiled, model.reports["win_rate_by_owner"], manager(store), APRIL, now=NOW)
        stays = reports.run(conn, store.compiled, model.reports["stage_time"], manager(store), APRIL, now=NOW)
    assert texts(forecast) == [["Jun 2026", "2", "£500.00", "£160.00"]]
    assert parse_qsl(urlsplit(forecast.rows[0].drill.url()).query) == [
        ("f1", "expected_close"), ("o1", "gt"), ("v1", "2026-05-31"), ("f2", "expected_close"), ("o2", "lt"), ("v2", "2026-07-01"),
        ("f3", "stage"), ("o3", "in"), ("v3", "Lead"), ("v3", "Qualified"), ("v3", "Proposal"), ("v3", "Negotiation")]
    assert texts(won) == [["Alice", "1", "0", "1", "100.0 %", "£1,000.00"], ["Not set", "1", "1", "2", "50.0 %", "£50.00"]]
    assert dict(parse_qsl(urlsplit(won.rows[0].drill.url()).query))["v1"] == "alice"  # a user by the name the directory reads
    assert texts(stays)[:3] == [["Lead", "3", "4.0 days", "12.7 days"], ["Qualified", "3", "5.0 days", "6.3 days"],
                                ["Proposal", "1", "7.0 days", "7.0 days"]]


def test_a_viewer_filter_narrows_the_records_and_a_wrong_value_is_said_not_guessed(pipeline_data):  # noqa: F811
    store, _, ids = pipeline_data
    report = store.compiled.model.reports["pipeline_funnel"]
    with store.begin() as conn:
        records.update_record(conn, store.compiled, "opportunity", ids["o3"], {"owner": store.bob, "source": "event"}, store.bob)
    with store.connect() as conn:
        bobs = reports.run(conn, store.compiled, report, manager(store), reports.read_ask(report, {"period": "all_time", "owner": "bob"},
                                                                                              NOW.date()), now=NOW)
        wrong = reports.run(conn, store.compiled, report, manager(store), reports.read_ask(report, {"owner": "zed", "source": "fax"},
                                                                                               NOW.date()), now=NOW)
    assert [(row.labels[0], row.cells[3].text) for row in bobs.rows][:2] == [("Lead", "1"), ("Qualified", "0")]
    assert ("owner", "eq", "bob") in bobs.rows[0].drill.filters
    assert wrong.problems == ("Owner: nobody is called “zed”.", "Lead source: “fax” is not one of its choices.")


@pytest.mark.parametrize("params, expected", [
    ({}, (None, None, "last_90_days", ())),
    ({"period": "this_year"}, (None, None, "this_year", ())),
    ({"period": "someday"}, (None, None, "last_90_days", ("“someday” is not a period; showing last 90 days.",))),
    ({"period": "custom", "from": "2026-04-30", "to": "2026-04-01"},
     ("2026-04-01", "2026-04-30", None, ("The period ends before it starts; the dates were swapped.",))),
    ({"period": "custom", "from": "2026-13-01"}, (None, None, "last_90_days", ("“2026-13-01” is not a date; write it like 2026-04-25.",))),
    ({"from": "2026-04-01"}, ("2026-04-01", None, None, ())),
    ({"period": "custom"}, (None, None, "last_90_days", ())),
])
def test_the_period_a_request_asks_for(crm, params, expected):
    ask = reports.read_ask(crm.model.reports["pipeline_funnel"], params, NOW.date())
    assert (ask.start and ask.start.isoformat(), ask.end and ask.end.isoformat(), ask.preset, ask.problems) == expected


def test_a_viewer_who_may_not_monitor_tasks_sees_only_their_own_in_the_sla_per_agent(sla_data):  # noqa: F811
    store, _, _ = sla_data
    report = store.compiled.model.reports["sla_by_agent"]
    with store.connect() as conn:
        everyone = reports.run(conn, store.compiled, report, manager(store), APRIL, now=NOW)
        mine = reports.run(conn, store.compiled, report, manager(store, monitor=False), APRIL, now=NOW)
    assert [row.cells[0].text for row in everyone.rows] == ["Alice", "Bob", "Nobody yet"]  # names; the queue last
    assert texts(mine) == [["Alice", "2", "0", "0", "2", "100.0 %", "9.0 h", "13.4 h"]]
    assert everyone.rows[0].drill is None  # tasks have no directory to lead to


def test_reports_and_dashboards_are_shown_to_their_audience(crm):
    model = crm.model
    support = Viewer(1, frozenset({"staff", "support_lead"}), frozenset(), True, LONDON)
    seller = Viewer(2, frozenset({"staff"}), frozenset({"sales"}), False, LONDON)
    assert reports.home_dashboard(model, support).name == "support"
    assert reports.report_for(model, support, "sla_by_agent") is not None
    assert reports.report_for(model, support, "pipeline_funnel") is None  # for sales managers and directors only
    assert reports.visible_reports(model, seller) == [] and reports.home_dashboard(model, seller) is None


def test_the_viewer_gets_the_roles_of_their_groups(store: Store):
    with store.begin() as conn:
        from runtime.schema import group_members
        conn.execute(group_members.insert().values(group_name="support_leads", user_id=store.bob))
        bob = dict(conn.execute(sa.select(users).where(users.c.id == store.bob)).mappings().one())
    with store.connect() as conn:
        v = reports.viewer(conn, store.compiled.model, bob, monitor=False)
    assert "support_lead" in v.roles and v.groups == {"support_leads"}
    assert reports.home_dashboard(store.compiled.model, v).name == "support"


def test_the_chart_is_a_valid_vega_lite_spec_drawn_as_an_accessible_svg(pipeline_data):  # noqa: F811
    store, _, _ = pipeline_data
    report = store.compiled.model.reports["pipeline_funnel"]
    with store.connect() as conn:
        result = reports.run(conn, store.compiled, report, manager(store), APRIL, now=NOW)
    spec = charts.spec(result, reports.Drill.url)
    validate_jsonschema(spec, load_schema())  # the Vega-Lite schema altair ships (the version the spec names)
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    data = spec.get("data") or spec["layer"][0]["data"]
    assert [v["label"] for v in data["values"]] == ["Lead", "Qualified", "Proposal", "Negotiation", "Closed – won"]
    drawing = charts.svg(result, reports.Drill.url)
    assert drawing.startswith('<svg role="img" aria-label="Pipeline funnel, reached: Lead: 4; Qualified: 3; Proposal: 2; '
                              'Negotiation: 1; Closed – won: 1"')
    assert "<title>Pipeline funnel, reached: Lead: 4;" in drawing
    links = re.findall(r'<a tabindex="-1" xlink:href="([^"]+)"', drawing)
    assert len(links) == 5 and all(link.startswith("/directory/opportunity?f1=stage&amp;o1=eq&amp;v1=") for link in links)


def test_every_kind_of_chart_is_valid_vega_lite_drawn_at_one_width_with_a_long_name_cut(pipeline_data):  # noqa: F811
    """A name too long for the chart's axis is cut with an ellipsis in the drawing (its aria-label and the table keep it
    whole), and each kind of chart is WIDTH wide, its labels included."""
    store, _, _ = pipeline_data
    with store.connect() as conn:
        result = reports.run(conn, store.compiled, store.compiled.model.reports["pipeline_funnel"], manager(store), APRIL, now=NOW)
    long = "Negotiation with the procurement department of the customer"
    rows = tuple(replace(r, labels=(long,)) if r.labels == ("Negotiation",) else r for r in result.rows)
    for kind in ("bar", "line", "funnel"):
        shown = replace(result, rows=rows, chart=kind)
        validate_jsonschema(charts.spec(shown, reports.Drill.url), load_schema())
        drawing = charts.svg(shown, reports.Drill.url)
        assert f"Proposal: 2; {long}: 1; Closed – won: 1" in re.search(r'aria-label="([^"]*)"', drawing).group(1), kind
        assert re.search(r'<svg role="img" [^>]*width="440"', drawing), kind
        cut = re.findall(r">(Negotiation[^<]*)</text>", drawing)
        assert len(cut) == 1 and cut[0].endswith("…") and long.startswith(cut[0][:-1]) and len(cut[0]) < 35, (kind, cut)
        if kind != "line":  # bars lead where the table's rows do
            assert len(re.findall(r'<a tabindex="-1" xlink:href="/directory/opportunity\?', drawing)) == 5, kind


def test_the_table_as_csv(pipeline_data):  # noqa: F811
    store, _, _ = pipeline_data
    report = store.compiled.model.reports["pipeline_funnel"]
    with store.connect() as conn:
        result = reports.run(conn, store.compiled, report, manager(store), APRIL, now=NOW)
    assert reports.csv_rows(result)[:3] == [["Stage", "Now in stage", "Value now", "Reached", "Went on (%)", "Dropped off (%)"],
                                             ["Lead", "1", "200.00", "4", "75.00", "25.00"], ["Qualified", "0", "", "3", "66.67", "33.33"]]


def test_customers_with_no_contact_lead_to_their_pages(store: Store):
    c = store.compiled
    with store.begin() as conn:
        quiet = records.create_record(conn, c, "company", {"name": "Quiet Ltd"}, store.alice)
    with store.connect() as conn:
        result = reports.run(conn, c, c.model.reports["forgotten_customers"], manager(store), Ask(), now=NOW)
    assert texts(result) == [["Quiet Ltd", "—", "—"]] and result.period_text == ""
    assert result.rows[0].drill.url() == f"/records/company/{quiet.id}"


def test_migrate_gives_older_entity_tables_the_created_at_index_the_reports_periods_read(db, crm):
    """Records created in a period (the pipeline funnel, counts by a field) are a range of ix_ENTITY_created_at; a table made
    before it was declared gets it from the plan, once."""
    upgrade(db)
    with db.begin() as conn:
        apply(conn, crm, plan(conn, crm))
        assert "ix_opportunity_created_at" in index_names(conn, "opportunity")
        conn.exec_driver_sql("DROP INDEX ix_opportunity_created_at")
    with db.begin() as conn:
        ops = plan(conn, crm)
        assert [line.split(". ", 1)[1] for line in describe(ops)] == ["add index ix_opportunity_created_at on opportunity.created_at"]
        apply(conn, crm, ops)
    with db.begin() as conn:
        assert "ix_opportunity_created_at" in index_names(conn, "opportunity")
        assert plan(conn, crm) == []
        if conn.dialect.name == "sqlite":
            table = crm.metadata.tables["opportunity"]
            period = metrics.Period(at("04-01"), at("04-08"))
            q = sa.select(sa.func.count()).where(period.holds(table.c.created_at))
            sql = str(q.compile(conn, compile_kwargs={"literal_binds": True}))
            found = " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "USING COVERING INDEX ix_opportunity_created_at" in found, found
