"""The project journey in Chromium against `tailor run --demo`: a process with a project started from a customer's page,
a member added with the picker by typing their full name, and the member opening the project's task.

Screenshots of the pages at 1280 and 390 px go to $TAILOR_SHOTS (default /tmp/shots-projects), to be looked at.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web import test_journeys as journeys

# the journeys' platform (`tailor run --demo`, one per module), browser page, log-in and Chromium check
platform, page, log_in, pytestmark = journeys.platform, journeys.page, journeys.log_in, journeys.pytestmark

SHOTS = Path(os.environ.get("TAILOR_SHOTS", "/tmp/shots-projects"))
KICKOFF = "Hold the kick-off meeting with Acme Health Ltd"


def shoot(page: Page, name: str) -> None:
    """Full-page screenshots at 1280 and 390 px wide; at 390 the page itself must not be wider than the screen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        if width == 390:
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{name} is wider than a 390 px screen"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_project_started_from_the_customer_page_gets_a_member_who_opens_its_task(platform, page: Page):
    log_in(page, platform, "pam")  # Pam is in professional services: the onboarding's project manager
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Companies", exact=True).click()
    page.get_by_role("link", name="Acme Health Ltd").click()
    shoot(page, "customer-start")
    page.get_by_role("button", name="Start Customer onboarding").click()

    # landed on the new project, which the process opened
    expect(page).to_have_url(re.compile(r"/projects/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Onboarding Acme Health Ltd")
    expect(page.get_by_role("status")).to_have_text(
        "Started Customer onboarding for Acme Health Ltd. This is its project: add the people who work on it.")
    team = page.locator("section", has=page.get_by_role("heading", name="Team"))
    expect(team).to_contain_text("Pam Projects")
    kickoff = page.get_by_role("link", name=KICKOFF)
    for _ in range(60):  # the worker hands out the first step right after opening the project
        if kickoff.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(kickoff).to_be_visible()
    project_url = page.url

    # the picker: typing her full name finds Ann and picks her
    page.get_by_role("searchbox", name="Search Add to the team").fill("Ann Sales")
    expect(team.get_by_text("1 match")).to_be_visible()
    expect(page.get_by_label("Add to the team", exact=True)).to_have_value(re.compile(r"^\d+$"))
    expect(page.locator("#member option:checked")).to_have_text("Ann Sales")
    shoot(page, "project-picker")
    page.get_by_role("button", name="Add to the team").click()
    expect(page.get_by_role("status")).to_have_text("Ann Sales is on the team of Onboarding Acme Health Ltd.")
    expect(team.get_by_role("listitem").filter(has_text="Ann Sales")).to_have_count(1)
    expect(page.locator("#member option", has_text="Ann Sales")).to_have_count(0)  # on the team: no longer offered
    shoot(page, "project-team")

    # Ann, a salesperson with no project access of her own, finds the project and opens its task
    page.get_by_role("button", name="Log out").click()
    log_in(page, platform, "ann")
    page.get_by_role("link", name="Projects", exact=True).click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    shoot(page, "projects-list")
    page.get_by_role("link", name="Onboarding Acme Health Ltd").click()
    expect(page).to_have_url(project_url)
    expect(page.get_by_role("button", name="Add to the team")).to_have_count(0)  # she is on it, she does not run it
    page.get_by_role("link", name=KICKOFF).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(KICKOFF)
    expect(page.locator("main")).not_to_contain_text("assigned to someone else")
    shoot(page, "member-task")
