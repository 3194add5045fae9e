"""Journeys in Chromium against `tailor run --demo`: the customer's single view and the pipeline board.

Screenshots of both pages at 1280 and 390 px go to $TAILOR_SHOTS (default /tmp/shots-customerview), to be looked at.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web import test_journeys as journeys

# the journeys' platform (`tailor run --demo`, one per module), browser page, log-in and Chromium check
platform, page, log_in, pytestmark = journeys.platform, journeys.page, journeys.log_in, journeys.pytestmark

SHOTS = Path(os.environ.get("TAILOR_SHOTS", "/tmp/shots-customerview"))
DEAL = "Acme Health – platform upgrade"  # the demo's opportunity, with the lead follow-up running on it


def shoot(page: Page, name: str) -> None:
    """Full-page screenshots at 1280 and 390 px wide; at 390 the page itself must not be wider than the screen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        if width == 390:
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{name} is wider than a 390 px screen"
    page.set_viewport_size({"width": 1280, "height": 900})


def card(page: Page, stage: str):
    """The demo deal's card in the column of `stage`."""
    return page.locator(f'[data-stage="{stage}"] [data-card]', has_text=DEAL)


def test_the_customer_page_lists_its_person_and_the_open_task_of_its_opportunity(platform, page: Page):
    log_in(page, platform, "ann")
    page.get_by_role("link", name="Acme Health Ltd").click()
    expect(page.get_by_role("heading", name="Acme Health Ltd")).to_be_visible()
    people = page.locator("section", has=page.get_by_role("heading", name=re.compile("^People")))
    expect(people.get_by_role("link", name="Jane Doe")).to_be_visible()
    tasks = page.locator("section", has=page.get_by_role("heading", name=re.compile("^Open tasks")))
    deal_task = tasks.locator("li", has_text=f"Opportunity: {DEAL}")
    for _ in range(60):  # the worker creates the follow-up's first task shortly after the start
        if deal_task.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(deal_task).to_contain_text("Ann Sales")  # the assignee by name, the due time in words
    expect(deal_task).to_contain_text(re.compile(r"due \w{3} \d{1,2} \w{3}"))
    expect(page.get_by_role("heading", name="Healthcare")).to_be_visible()  # the group of a healthcare company
    expect(page.get_by_role("link", name="Website")).to_have_count(0)  # no website recorded: no link to 'None'
    expect(page.locator("main")).not_to_contain_text("None")
    shoot(page, "customer")


def test_an_opportunity_moves_on_the_board_by_drag_and_drop_and_by_the_plain_form(platform, page: Page):
    log_in(page, platform, "ann")
    page.get_by_role("link", name="Acme Health Ltd").click()
    page.get_by_role("link", name="These on the pipeline board").click()
    expect(page.get_by_role("heading", name="Opportunities by stage")).to_be_visible()
    expect(page.get_by_text("Only opportunities where company is Acme Health Ltd.")).to_be_visible()
    page.get_by_role("link", name="The whole board").click()
    expect(card(page, "lead")).to_be_visible()
    expect(card(page, "lead")).to_contain_text("Ann Sales")
    expect(page.locator("main")).not_to_contain_text("None")

    # with scripts: drag the card from Lead onto Qualified
    expect(page.get_by_text("or drag it to another column")).to_be_visible()
    card(page, "lead").drag_to(page.locator('[data-stage="qualified"]'), source_position={"x": 8, "y": 8})
    expect(page.get_by_role("status")).to_have_text(f"Moved '{DEAL}' to Qualified.")
    expect(card(page, "qualified")).to_be_visible()
    expect(card(page, "lead")).to_have_count(0)
    expect(page.locator('[data-stage="qualified"] .count')).to_have_text("1")
    shoot(page, "board")
    board_box = page.evaluate("(() => { const b = document.querySelector('.board'); return [b.scrollWidth, b.clientWidth]; })()")
    page.set_viewport_size({"width": 390, "height": 900})
    inside = page.evaluate("(() => { const b = document.querySelector('.board'); return [b.scrollWidth, b.clientWidth]; })()")
    assert inside[0] > inside[1], f"at 390 px the board scrolls inside its own box ({inside}; at 1280: {board_box})"
    page.set_viewport_size({"width": 1280, "height": 900})

    # without scripts: the card's own "Move to" form does the same
    plain = page.context.browser.new_context(java_script_enabled=False)
    try:
        other = plain.new_page()
        log_in(other, platform, "ann")
        other.goto(f"{platform}/board/opportunity")
        expect(other.get_by_text("or drag it to another column")).to_be_hidden()
        other.get_by_label(f"Move {DEAL} to").select_option(label="Proposal")
        card(other, "qualified").get_by_role("button", name="Move").click()
        expect(other.get_by_role("status")).to_have_text(f"Moved '{DEAL}' to Proposal.")
        expect(card(other, "proposal")).to_be_visible()
        expect(card(other, "qualified")).to_have_count(0)
    finally:
        plain.close()

    # the move is a record change like any other: in the opportunity's history, by Ann
    page.goto(f"{platform}/board/opportunity")
    card(page, "proposal").get_by_role("link", name=DEAL).click()
    history = page.locator(".timeline")
    expect(history).to_contain_text("Moved on the pipeline board: Qualified → Proposal")
    expect(history).to_contain_text("Moved on the pipeline board: Lead → Qualified")
    expect(history.locator("> li", has_text="Qualified → Proposal")).to_contain_text("by Ann Sales")
    expect(page.get_by_role("link", name="See it on the pipeline board")).to_have_attribute("href", re.compile(r"^/board/opportunity#card-\d+$"))
    shoot(page, "opportunity")
