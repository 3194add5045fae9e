"""The main journeys in a real browser (headless Chromium) against `tailor run --demo`."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import ROOT
from tests.web.browser import (
    demo_platform,
    launch,
    log_in,
    needs_chromium,
    save_failure,
)

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with demo_platform(tmp_path_factory.mktemp("platform")) as (base, _, _):
        yield base


@pytest.fixture
def page(request):
    with sync_playwright() as pw:
        browser = launch(pw)
        pg = browser.new_page()
        yield pg
        save_failure(request, [pg])
        browser.close()


def test_lead_enquiry_with_an_error_then_corrected_reaches_the_assignee_who_completes_it(platform, page: Page):
    base = platform
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/login"))  # nothing without logging in
    page.get_by_label("User name").fill("ann")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")

    log_in(page, base, "ann")
    page.get_by_role("link", name="Acme Health Ltd").click()
    page.get_by_role("link", name="Lead / enquiry").click()
    page.get_by_label("Channel").select_option("phone")
    page.get_by_label("Budget").fill("lots")
    page.get_by_role("button", name="Submit").click()
    # re-shown with a message per field and what was typed
    expect(page.get_by_role("alert")).to_contain_text("Please correct 2 fields")
    expect(page.locator("#f-summary-error")).to_have_text("What are they looking for? is required")
    expect(page.locator("#f-budget-error")).to_contain_text("Budget must be")
    expect(page.get_by_label("Budget")).to_have_value("lots")
    expect(page.get_by_label("Channel")).to_have_value("phone")

    # search-as-you-type on a reference: typing narrows "Enquiry from" to Jane Doe and picks her
    page.get_by_role("searchbox", name="Search Enquiry from").fill("Jane")
    expect(page.locator("#f-person")).to_have_value(re.compile(r"^\d+$"))
    page.get_by_label("What are they looking for?").fill("40 seats of the CRM")
    page.get_by_label("Budget").fill("12000")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_have_text("Lead / enquiry saved.")
    expect(page.locator(".timeline")).to_contain_text("Lead / enquiry")

    # the follow-up goes round-robin to the sales group: Ann had the demo's lead, so this one is Bob's
    page.get_by_role("button", name="Log out").click()
    log_in(page, base, "bob")
    task = page.get_by_role("link", name=re.compile("Qualify the enquiry: Acme Health Ltd: 40 seats"))
    expect(task).to_be_visible(timeout=20_000) if task.count() else None
    for _ in range(20):
        if task.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    task.click()
    page.get_by_role("button", name="Complete task").click()
    expect(page.locator("#f-outcome-error")).to_have_text("Outcome is required")
    page.get_by_label("Outcome").select_option("qualified")
    page.get_by_label("Opportunity owner").select_option(label="Bob Sales")
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_role("status")).to_contain_text("Done: Qualify the enquiry")
    expect(page.get_by_role("link", name=re.compile("Qualify the enquiry: Acme Health Ltd: 40 seats"))).to_have_count(0)


def test_forms_refuse_a_post_without_the_csrf_token(platform, page: Page):
    log_in(page, platform, "ann")
    response = page.request.post(f"{platform}/logout", form={"csrf_token": "forged"})
    assert response.status == 403


def test_a_portal_user_reports_a_problem_and_another_company_cannot_see_it(platform, page: Page):
    page.goto(f"{platform}/login")
    page.get_by_label("User name").fill("jane")
    page.get_by_label("Password").fill("jane")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Acme Health Ltd")).to_be_visible()
    page.get_by_role("link", name="Support request").click()
    page.get_by_label("Summary").fill("Invoices show the wrong VAT")
    page.get_by_label("Description").fill("Since the update, VAT is 17.5% instead of 20%.")
    page.get_by_label("Category").select_option("fault")
    page.get_by_label("Severity").select_option("high")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_have_text("Thank you: we have your request.")
    expect(page.locator("table")).to_contain_text("Invoices show the wrong VAT")

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("User name").fill("raj")
    page.get_by_label("Password").fill("raj")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Northwind Retail")).to_be_visible()
    expect(page.get_by_text("Invoices show the wrong VAT")).to_have_count(0)
    page.goto(f"{platform}/")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()  # staff pages are not for portal users
    expect(page.get_by_role("link", name="Back to your requests")).to_have_attribute("href", "/portal")


FAST_PACK = {
    "pack.yaml": "kind: pack\nname: fast\nversion: 1.0.0\nextends: {crm: '>=1.0'}\n",
    "overlay.yaml": """
        kind: overlay
        name: fast_support
        target: process/support_sla
        change_steps:
          triage:
            due: 5 seconds
            escalate:
              - {at: due, alert: manager, message: "{{ task.title }} has not been triaged"}
        """,
}


def test_a_manager_sees_an_alert_once_a_short_deadline_passes(packs, page: Page):
    """A client pack (an overlay) shortens the SLA's triage to 5 seconds; Lee, the support group's manager, gets the alert."""
    import textwrap

    fast = packs.write("fast", {k: textwrap.dedent(v) for k, v in FAST_PACK.items()})
    with demo_platform(fast.parent, f"{ROOT / 'definitions' / 'crm'},{fast}") as (base, _, log):
        for _ in range(180):  # the worker is a process of its own: it raises the alert, so wait until it runs
            if "[worker] worker running" in log.read_text():
                break
            time.sleep(0.5)
        assert "[worker] worker running" in log.read_text(), log.read_text()[-3000:]
        log_in(page, base, "lee")
        alert = page.get_by_text("Triage: Reports will not print has not been triaged")
        for _ in range(120):  # the demo support request's triage is due 5 s after the start
            if alert.count():
                break
            page.wait_for_timeout(500)
            page.reload()
        expect(alert).to_be_visible()
        page.get_by_role("button", name="Acknowledge").click()
        expect(page.get_by_role("status")).to_have_text("Alert acknowledged.")
        expect(page.get_by_text("has not been triaged")).to_have_count(0)
