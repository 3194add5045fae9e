"""A task whose step names nobody reaches someone, who is told why: Chromium against `tailor run --demo`.

Bob adds a company nobody owns yet and records a meeting with it; the meeting follow-up's step goes to the company's owner,
so it comes to Bob, who started it. He finds it in My work with an alert saying why, and the task page says it too.
Screenshots at 1280 and 390 px go to $TAILOR_SHOTS (default /tmp/shots-routing), to be looked at.
"""
from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web import test_journeys as journeys

platform, page, log_in, pytestmark = journeys.platform, journeys.page, journeys.log_in, journeys.pytestmark

SHOTS = Path(os.environ.get("TAILOR_SHOTS", "/tmp/shots-routing"))
WHY = "Initech has no owner, so it came to Bob Sales, who started the process."


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        if width == 390:
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{name} is wider than a 390 px screen"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_owner_less_step_reaches_the_starter_who_sees_why_in_an_alert_and_on_the_task(platform, page: Page):
    base = platform
    log_in(page, base, "bob")
    page.goto(f"{base}/records/company/new")
    page.locator("#f-name").fill("Initech")
    expect(page.locator("#f-owner")).to_have_value("")  # nobody owns it
    page.get_by_role("button", name="Add company").click()
    expect(page.get_by_role("heading", name="Initech")).to_be_visible()

    page.get_by_role("link", name="Meeting").click()
    page.get_by_label("Held on").fill("2026-12-01")
    page.get_by_label("Location").select_option("video")
    page.get_by_label("Subject").fill("Rollout plan")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_have_text("Meeting saved.")

    task = page.get_by_role("link", name="Send the minutes of the meeting to Initech")
    for _ in range(60):  # the process starts and hands the task out in the background
        page.goto(f"{base}/")
        if task.count():
            break
        page.wait_for_timeout(500)
    expect(task).to_be_visible()
    alert = page.locator("li.alert", has_text=WHY)
    expect(alert).to_contain_text("'Send the minutes of the meeting to Initech': " + WHY)
    shoot(page, "my-work")

    task.click()
    why = page.get_by_role("region", name="Why you have this")
    expect(why).to_have_text("Why you have this " + WHY)
    expect(page.get_by_role("button", name="Complete task")).to_be_visible()  # and it is his to do
    shoot(page, "task")
