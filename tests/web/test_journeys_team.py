"""A manager hands several tasks over at once from the team view, in headless Chromium against `tailor run --demo`
(the process engine and its worker real: each reassignment is a workflow update)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.web.browser import demo_platform, launch, log_in, needs_chromium, save_failure

pytestmark = needs_chromium


@pytest.fixture
def page(request):
    with sync_playwright() as pw:
        browser = launch(pw)
        pg = browser.new_page()
        yield pg
        save_failure(request, [pg])
        browser.close()


def test_a_manager_ticks_every_task_of_the_team_and_hands_them_to_one_person(tmp_path, page: Page):
    with demo_platform(tmp_path) as (base, _, _):
        log_in(page, base, "mia")
        page.get_by_role("link", name="My team's tasks").click()
        expect(page.get_by_role("heading", name="My team's tasks")).to_be_visible()
        page.get_by_label("Group").select_option(label="Every group")
        page.get_by_role("button", name="Show").click()
        rows = page.locator("table.team tbody tr")
        for _ in range(60):  # the demo's processes make their first tasks once the worker runs them
            if rows.count() >= 2:
                break
            page.wait_for_timeout(1000)
            page.reload()
        expect(rows.filter(has_text="Qualify the enquiry: Acme Health")).to_contain_text("Ann Sales")
        expect(rows.filter(has_text="Triage: Reports will not print")).to_contain_text("Sue Support")
        count = rows.count()

        page.get_by_label("Tick every task on this page").check()  # the script's box in the table's head
        reassign = page.get_by_role("button", name=re.compile(r"^Reassign"))
        expect(reassign).to_have_text(f"Reassign {count} tasks")
        page.get_by_label("Hand the ticked tasks to").select_option(label="Pam Projects")
        reassign.click()

        expect(page.get_by_role("status")).to_contain_text(f"Pam Projects now has the {count} tasks you ticked.")
        expect(page.get_by_role("alert")).to_have_count(0)
        expect(page.get_by_label("Group")).to_have_value("all")  # the same view as before
        for i in range(count):
            expect(rows.nth(i).locator("td").nth(2)).to_have_text("Pam Projects")

        page.get_by_role("link", name="Triage: Reports will not print").first.click()
        expect(page.locator(".facts")).to_contain_text("Pam Projects")
        expect(page.locator("li.step.current")).to_contain_text("Handed to Pam Projects · Mia Manager")
