"""Report and dashboard pages and the reports API without a browser, on SQLite and PostgreSQL: what each viewer may open,
what a page shows (names, labels, the chart and its table), bad parameters, the CSV and the Vega-Lite spec."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.db import upgrade
from runtime.plan import apply, plan
from runtime.schema import group_members, users
from tests.conftest import CRM

ROLES = {"mia": ["staff", "sales_manager"], "lee": ["staff", "support_lead"], "ann": ["staff"], "jane": ["portal"]}


@pytest.fixture(scope="module")
def site(module_database):
    compiled = compile_model(load([CRM]))
    engine = module_database
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    now = dt.datetime.now(dt.UTC)
    tokens = {}
    with engine.begin() as conn:
        upgrade(conn)
        apply(conn, compiled, plan(conn, compiled))
        acme = records.create_record(conn, compiled, "company", {"name": "Acme Health"}, None)
        ids = {}
        for name, roles in ROLES.items():
            token, digest = new_token()
            tokens[name] = token
            ids[name] = conn.execute(users.insert().values(
                username=name, name={"mia": "Mia Manager", "lee": "Lee Lead", "ann": "Ann Sales", "jane": "Jane Doe"}[name], roles=roles,
                password_hash=hasher.hash(name), api_token_hash=digest, company_id=acme.id if name == "jane" else None,
                created_at=now)).inserted_primary_key[0]
        conn.execute(group_members.insert().values(group_name="sales", user_id=ids["ann"]))
        for name, stage, value in [("Upgrade", "lead", "1000.00"), ("Tills", "proposal", "4000.00"), ("Pilot", "won", "2500.00")]:
            rec = records.create_record(conn, compiled, "opportunity", {"name": name, "company": acme.id, "owner": ids["ann"],
                                                                        "value": value}, ids["ann"], at=now - dt.timedelta(days=5))
            if stage != "lead":
                records.update_record(conn, compiled, "opportunity", rec.id, {"stage": stage}, ids["ann"], at=now - dt.timedelta(days=2))
    app = create_app(engine, compiled, None, secret_key="reports-secret")
    return app, tokens


def client_of(site, who: str) -> TestClient:
    client = TestClient(site[0])
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/login", data={"csrf_token": token, "username": who, "password": who}, follow_redirects=False).status_code == 303
    return client


def api(site, who: str, path: str):
    return TestClient(site[0]).get(path, headers={"Authorization": f"Bearer {site[1][who]}"})


def cells(html: str) -> list[list[str]]:
    """The report table's rows as text (tags dropped)."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.DOTALL)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)]


def test_a_sales_manager_finds_their_dashboard_under_reports(site):
    mia = client_of(site, "mia")
    home = mia.get("/")
    assert '<a href="/reports">Reports</a>' in home.text
    listing = mia.get("/reports")
    assert 'href="/dashboards/sales">Sales</a> <span class="kind info">Your home dashboard</span>' in listing.text
    assert "SLA compliance per agent" not in listing.text  # a support lead's report
    assert mia.get("/dashboards", follow_redirects=False).headers["location"] == "/dashboards/sales"
    board = mia.get("/dashboards/sales")
    assert board.status_code == 200
    assert board.text.count('<section class="card report"') == 6
    assert '<svg role="img" aria-label="Pipeline funnel, reached: Lead: 3; Qualified: 2; Proposal: 2; Negotiation: 1; Closed – won: 1"' \
        in board.text


def test_a_dashboard_offers_the_filters_its_reports_let_the_viewer_change(site):
    mia = client_of(site, "mia")
    board = mia.get("/dashboards/sales")
    labels = re.findall(r'<label for="filter-(\w+)">([^<]+)</label>', board.text)
    assert labels == [("owner", "Owner"), ("source", "Lead source"), ("stage", "Stage")]  # owner and source: the funnel's first
    assert '<option value="ann">Ann Sales</option>' in board.text
    assert "Owner: for Pipeline funnel, Forecast by close month, Opportunities by lead source." in board.text
    # all three opportunities are Ann's: filtered to Mia's, the reports with an owner filter count none; the others all
    mine = mia.get("/dashboards/sales?owner=mia")
    assert '<option value="mia" selected>Mia Manager</option>' in mine.text
    assert 'href="/reports/pipeline_funnel?period=last_90_days&amp;owner=mia">Pipeline funnel</a>' in mine.text
    assert 'href="/reports/win_rate_by_owner?period=last_90_days">Win rate by owner</a>' in mine.text  # it has no owner filter
    assert "Pipeline funnel, reached: Lead: 3" not in mine.text and "Pipeline funnel, reached: Lead: 3" in board.text
    anns = mia.get("/dashboards/sales?owner=ann")
    assert "Pipeline funnel, reached: Lead: 3" in anns.text
    assert 'href="/directory/opportunity?f1=owner&amp;o1=eq&amp;v1=ann&amp;f2=stage&amp;o2=eq&amp;v2=Lead' in anns.text  # rows keep it
    assert mia.get("/dashboards/sales?owner=zed").text.count("Owner: nobody is called “zed”.") == 1  # said once, not per report


def test_the_report_page_shows_the_chart_and_the_table_with_names_and_links(site):
    page = client_of(site, "mia").get("/reports/pipeline_funnel?period=last_30_days")
    assert page.status_code == 200
    assert '<option value="last_30_days" selected>Last 30 days</option>' in page.text
    assert '<option value="ann">Ann Sales</option>' in page.text  # the owner filter offers people by name
    assert cells(page.text)[:3] == [["Lead", "1", "£1,000.00", "3", "66.7 %", "33.3 %"], ["Qualified", "0", "—", "2", "100.0 %", "0.0 %"],
                                    ["Proposal", "1", "£4,000.00", "2", "50.0 %", "50.0 %"]]
    link = re.search(r'<th scope="row"><a href="([^"]+)">Proposal</a>', page.text).group(1)
    assert link.startswith("/directory/opportunity?f1=stage&amp;o1=eq&amp;v1=Proposal&amp;f2=created_at&amp;o2=gt&amp;v2=")


def test_bad_parameters_are_said_and_the_report_still_shows(site):
    mia = client_of(site, "mia")
    page = mia.get("/reports/pipeline_funnel?period=soon&owner=zed")
    assert page.status_code == 400
    assert "“soon” is not a period; showing last 90 days." in page.text and "Owner: nobody is called “zed”." in page.text
    assert mia.get("/reports/pipeline_funnel?period=custom&from=31/12/2026").status_code == 400
    assert mia.get("/reports/pipeline_funnel?period=custom&from=2026-01-01&to=2026-12-31").status_code == 200


def test_csv_export_is_the_table(site):
    mia = client_of(site, "mia")
    response = mia.get("/reports/pipeline_funnel/export.csv?period=all_time")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["Stage", "Now in stage", "Value now", "Reached", "Went on (%)", "Dropped off (%)"]
    assert rows[1] == ["Lead", "1", "1000.00", "3", "66.67", "33.33"]
    assert client_of(site, "lee").get("/reports/sla_by_agent/export.csv").status_code == 403  # support leads may not export


def test_a_report_for_other_roles_is_not_there(site):
    ann = client_of(site, "ann")
    assert ann.get("/reports/pipeline_funnel").status_code == 404
    assert ann.get("/dashboards/sales").status_code == 404
    assert ann.get("/dashboards", follow_redirects=False).headers["location"] == "/reports"
    assert '<a href="/reports">Reports</a>' not in ann.get("/").text  # nothing to see: not in the menu either
    assert client_of(site, "mia").get("/reports/no_such_report").status_code == 404


@pytest.mark.parametrize("path", ["/reports", "/reports/pipeline_funnel", "/reports/pipeline_funnel/export.csv", "/dashboards",
                                  "/dashboards/sales", "/reports/no_such_report"])
def test_portal_users_find_no_reports(site, path):
    response = client_of(site, "jane").get(path, follow_redirects=False)
    assert response.status_code == 404 and "Pipeline" not in response.text


def test_the_api_lists_reports_and_gives_rows_and_the_vega_lite_spec(site):
    listed = api(site, "mia", "/api/reports").json()
    assert {r["name"] for r in listed} >= {"pipeline_funnel", "forecast"} and "sla_by_agent" not in {r["name"] for r in listed}
    body = api(site, "mia", "/api/reports/pipeline_funnel?period=all_time&owner=ann").json()
    assert body["period"]["preset"] == "all_time" and body["period"]["text"] == "All time"
    assert body["rows"][0]["values"]["reached"] == 3 and body["rows"][0]["text"]["stage"] == "Lead"
    assert body["rows"][0]["drill"]["url"].startswith("/directory/opportunity?f1=owner&o1=eq&v1=ann&f2=stage")
    assert body["chart"]["type"] == "funnel" and body["chart"]["spec"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    spec = api(site, "mia", "/api/reports/pipeline_funnel?format=vega-lite&period=all_time&owner=ann")
    assert spec.status_code == 200 and spec.json() == body["chart"]["spec"]
    assert api(site, "mia", "/api/reports/forgotten_customers?format=vega-lite").status_code == 404  # a table: no chart
    assert api(site, "mia", "/api/reports/sla_by_agent").status_code == 404
    assert api(site, "jane", "/api/reports").status_code == 404
    assert api(site, "mia", "/api/reports/pipeline_funnel?format=png").status_code == 422


def test_the_reports_api_is_in_the_openapi_document(site):
    paths = TestClient(site[0]).get("/api/openapi.json").json()["paths"]
    assert {"/api/reports", "/api/reports/{name}"} <= set(paths)
    parameters = {p["name"] for p in paths["/api/reports/{name}"]["get"]["parameters"]}
    assert {"name", "period", "from", "to", "format"} <= parameters
