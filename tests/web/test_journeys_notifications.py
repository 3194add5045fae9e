"""The bell in a real browser (headless Chromium) against `tailor run --demo`: a page left open hears of a new task."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.web.browser import demo_platform, launch, log_in, needs_chromium, save_failure

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with demo_platform(tmp_path_factory.mktemp("notify")) as (base, _, _):
        yield base


@pytest.fixture
def pages(request):
    with sync_playwright() as pw:
        browser = launch(pw)
        ann, mia = browser.new_context().new_page(), browser.new_context().new_page()
        yield ann, mia
        save_failure(request, [ann, mia])
        browser.close()


def unread(page: Page) -> int:
    """The count the bell shows (0 when its badge is hidden)."""
    badge = page.locator(".bell .bell-count")
    return int(badge.inner_text()) if badge.is_visible() else 0


def test_the_bell_on_an_open_page_counts_a_task_handed_to_ann_without_a_reload(platform, pages):
    base = platform
    ann, mia = pages
    log_in(ann, base, "ann")
    log_in(mia, base, "mia")
    # the demo's lead follow-up: its first task is in Mia's team; Mia hands it to Bob first, so it can come back to Ann
    mia.goto(f"{base}/work/team")
    task = mia.get_by_role("link", name=re.compile(r"Qualify the enquiry: Acme Health"))
    for _ in range(40):
        if task.count():
            break
        mia.wait_for_timeout(500)
        mia.reload()
    task.first.click()
    task_page = mia.url
    mia.get_by_label("Give it to").select_option(label="Bob Sales")
    mia.get_by_role("button", name="Reassign").click()
    expect(mia.get_by_role("status")).to_have_text("Task reassigned.")

    ann.reload()
    expect(ann.get_by_role("heading", name="My work")).to_be_visible()
    ann.wait_for_function("document.querySelector('.bell') !== null")
    ann.evaluate("window.stillTheSamePage = true")  # gone if the page were loaded again
    before = unread(ann)

    mia.goto(task_page)
    mia.get_by_label("Give it to").select_option(label="Ann Sales")
    mia.get_by_role("button", name="Reassign").click()
    expect(mia.get_by_role("status")).to_have_text("Task reassigned.")

    # Ann's page, untouched, shows one more within seconds: the stream told it
    expect(ann.locator(".bell .bell-count")).to_have_text(str(before + 1), timeout=10_000)
    expect(ann.get_by_role("link", name=f"Notifications, {before + 1} unread")).to_be_visible()
    assert ann.evaluate("window.stillTheSamePage === true")

    # the bell leads to the list, where the new notification is on top and opens the task
    ann.get_by_role("link", name=re.compile(r"^Notifications")).click()
    expect(ann.get_by_role("heading", name="Notifications")).to_be_visible()
    newest = ann.locator("li.notification").first
    expect(newest).to_contain_text("Handed to you: Qualify the enquiry")
    expect(newest.get_by_text("New", exact=True)).to_be_visible()
    newest.get_by_role("link").click()
    expect(ann).to_have_url(re.compile(r"/tasks/\d+$"))
    expect(ann.locator(".bell .bell-count")).to_have_text(str(before))
