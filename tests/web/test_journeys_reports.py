"""Journeys in Chromium against `tailor run --demo`: a sales manager's dashboard down to the opportunities behind a
funnel bar, a support lead's SLA compliance per agent, and a portal user who finds no reports.

Screenshots at 1280 and 390 px go to $TAILOR_SHOTS (default /tmp/shots-reports), to be looked at.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from playwright.sync_api import Page, expect

from tests.web import test_journeys as journeys

platform, page, log_in, pytestmark = journeys.platform, journeys.page, journeys.log_in, journeys.pytestmark

SHOTS = Path(os.environ.get("TAILOR_SHOTS", "/tmp/shots-reports"))


def shoot(page: Page, name: str) -> None:
    """Full-page screenshots at 1280 and 390 px wide; at 390 the page itself must not be wider than the screen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        if width == 390:
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{name} is wider than a 390 px screen"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_sales_manager_picks_a_period_and_follows_a_funnel_bar_to_those_opportunities(platform, page: Page):
    log_in(page, platform, "mia")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    page.get_by_role("link", name="Sales", exact=True).click()
    expect(page.get_by_role("heading", name="Sales dashboard")).to_be_visible()
    funnel = page.locator("section.report", has=page.get_by_role("heading", name="Pipeline funnel"))
    expect(funnel.locator("svg[role=img]")).to_have_attribute("aria-label", re.compile(r"^Pipeline funnel, reached: Lead: 8; "))
    shoot(page, "sales-dashboard")

    page.get_by_label("Period", exact=True).select_option(label="Last 12 months")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/dashboards/sales\?period=last_12_months"))
    expect(page.get_by_label("Period", exact=True)).to_have_value("last_12_months")
    expect(funnel.locator(".period")).to_have_text(re.compile(r"^1 \w{3}( \d{4})? – \d{1,2} \w{3} \d{4}$"))
    # the funnel's Proposal bar, drawn on the server, is a link
    bar = funnel.locator("svg a", has=page.locator("path[aria-label*='Proposal']"))
    expect(bar).to_have_count(1)
    bar.click()

    expect(page.get_by_role("heading", name="Opportunities")).to_be_visible()
    query = dict(parse_qsl(urlsplit(page.url).query))
    assert (query["f1"], query["o1"], query["v1"], query["f2"], query["o2"]) == ("stage", "eq", "Proposal", "created_at", "gt")
    expect(page.get_by_label("Value").first).to_have_value("Proposal")  # the filter, as the directory reads it
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(2)  # the two opportunities at the proposal stage now
    expect(rows.filter(has_text="Northwind – till upgrade")).to_have_count(1)
    expect(rows.filter(has_text="Northwind – analytics")).to_have_count(1)


def test_a_sales_manager_narrows_the_dashboard_to_one_owner_and_keeps_it_on_a_report(platform, page: Page):
    log_in(page, platform, "mia")
    page.goto(f"{platform}/dashboards/sales")
    owner = page.get_by_label("Owner", exact=True)
    expect(owner).to_have_accessible_description("Owner: for Pipeline funnel, Forecast by close month, Opportunities by lead source.")
    owner.select_option("bob")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/dashboards/sales\?.*\bowner=bob\b"))
    expect(owner).to_have_value("bob")
    funnel = page.get_by_role("link", name="Pipeline funnel", exact=True)
    assert "owner=bob" in funnel.get_attribute("href")
    assert "owner=" not in page.get_by_role("link", name="Win rate by owner", exact=True).get_attribute("href")  # no owner filter
    shoot(page, "sales-dashboard-owner")
    funnel.click()
    expect(page.get_by_role("heading", name="Pipeline funnel", level=1)).to_be_visible()
    expect(page.get_by_label("Owner", exact=True)).to_have_value("bob")


def test_a_support_lead_sees_sla_compliance_per_agent(platform, page: Page):
    log_in(page, platform, "lee")
    page.goto(f"{platform}/dashboards")
    expect(page).to_have_url(re.compile(r"/dashboards/support$"))  # the support lead's home dashboard
    agents = page.locator("section.report", has=page.get_by_role("heading", name="SLA compliance per agent"))
    table = agents.get_by_role("table")
    expect(table.get_by_role("columnheader")).to_have_text(["Person", "Done on time", "Done late", "Overdue, still open", "Tasks",
                                                             "On time (%)", "Median hours to complete", "90th percentile hours"])
    expect(table.get_by_role("rowheader")).to_have_text(["Lee Lead", "Sue Support"])
    # Sue: triage and resolve of the login fault on time, the export question's triage late (with its two alerts)
    expect(table.locator("tr", has_text="Sue Support").locator("td").nth(0)).to_have_text("2")
    expect(table.locator("tr", has_text="Sue Support").locator("td").nth(1)).to_have_text("1")
    expect(table.locator("tr", has_text="Sue Support").locator("td").nth(4)).to_have_text("66.7 %")
    agents.get_by_role("link", name="SLA compliance per agent").click()
    expect(page.get_by_role("heading", name="SLA compliance per agent", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Download as CSV")).to_have_count(0)  # support leads may not export
    shoot(page, "sla-per-agent")


def test_a_portal_user_finds_no_report_at_any_address(platform, page: Page):
    log_in_portal(page, platform, "jane")
    for path in ("/reports", "/reports/pipeline_funnel", "/reports/sla_by_agent/export.csv", "/dashboards", "/dashboards/sales",
                 "/dashboards/nosuch"):
        response = page.goto(f"{platform}{path}")
        assert response.status == 404, path
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.locator("main")).not_to_contain_text("Pipeline")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports")).to_have_count(0)
    response = page.request.get(f"{platform}/api/reports")
    assert response.status == 401  # the API wants a token, not a portal session


def log_in_portal(page: Page, base: str, who: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(who)
    page.get_by_label("Password").fill(who)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/portal$"))
