"""The main journeys in a real browser (headless Chromium) against `tailor run --demo`."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import ROOT, free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("platform")
    web, temporal = free_port(), free_port()
    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp / "var"), "TAILOR_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}", "PYTHONUNBUFFERED": "1"}
    log = tmp / "run.log"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tailor"), "run", "--demo", "--port", str(web)], cwd=ROOT, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{web}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError(log.read_text()[-3000:])
    yield base
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


@pytest.fixture
def page(request):
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                                                      "--disable-component-update", "--disable-sync"])
        pg = browser.new_page()
        yield pg
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


def log_in(page: Page, base: str, who: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(who)
    page.get_by_label("Password").fill(who)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()


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
    web, temporal = free_port(), free_port()
    env = {**os.environ, "TAILOR_DATA_DIR": str(fast.parent / "var"), "TAILOR_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
           "TAILOR_PACKS": f"{ROOT / 'definitions' / 'crm'},{fast}", "PYTHONUNBUFFERED": "1"}
    log = fast.parent / "run.log"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tailor"), "run", "--demo", "--port", str(web)], cwd=ROOT, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{web}"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
        for _ in range(180):  # the worker is a process of its own: it raises the alert, so wait until it runs
            if "[worker] worker running" in log.read_text():
                break
            time.sleep(0.5)
        assert proc.poll() is None and "[worker] worker running" in log.read_text(), log.read_text()[-3000:]
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
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
