"""The directory and the global search in a real browser (headless Chromium) against `tailor run --demo`.

Screenshots at 1280 and 390 px wide go to SHOTS (not kept in git): look at them after a change to these pages.
"""
from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.web.browser import (
    demo_platform,
    launch,
    log_in,
    needs_chromium,
    save_failure,
)

SHOTS = Path(os.environ.get("TAILOR_SHOTS", "/tmp/shots-directory"))

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with demo_platform(tmp_path_factory.mktemp("platform")) as (base, _, _):
        yield base


@pytest.fixture
def browser(request):
    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    pg = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield pg
    save_failure(request, [pg])
    pg.close()


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_directory_with_two_filters_and_chosen_columns_then_csv_and_merge_show_names_then_search_finds_a_surname(platform, page):
    base = platform
    log_in(page, base, "mia")  # a sales manager: may export
    page.goto(f"{base}/directory/company")
    expect(page.get_by_role("heading", name="Companies", exact=True)).to_be_visible()

    # two filters at once: healthcare companies that Ann looks after
    page.locator("#f1").select_option(label="Industry")
    page.locator("#o1").select_option(label="is")
    page.locator("#v1").fill("Healthcare")
    page.locator("#f2").select_option(label="Account manager")
    page.locator("#o2").select_option(label="is")
    page.locator("#v2").fill("Ann Sales")
    # columns: the account manager and the email, not the status or the town
    page.get_by_text("Columns", exact=True).click()
    page.get_by_label("Status", exact=True).uncheck()
    page.get_by_label("Town", exact=True).uncheck()
    page.get_by_label("Email", exact=True).check()
    page.get_by_role("button", name="Show").click()

    table = page.get_by_role("region", name="Companies found")
    expect(table.get_by_role("columnheader")).to_have_text([re.compile(rf"^\s*{h}\b") for h in ("Company", "Industry", "Account manager",
                                                                                            "Email")])
    expect(table.get_by_role("rowheader")).to_have_text(["Acme Health Ltd"])  # Globex is Ann's too, but manufacturing
    expect(table.get_by_role("row").nth(1)).to_contain_text("Ann Sales")
    expect(page.get_by_text("1 found")).to_be_visible()
    shoot(page, "directory-1280")

    # the CSV has the same records, with names and labels, not ids and raw values
    with page.expect_download() as download:
        page.get_by_role("link", name="Export these companies to CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [(r["Company"], r["Account manager"], r["Industry"], r["Status"]) for r in rows] == [
        ("Acme Health Ltd", "Ann Sales", "Healthcare", "Customer")]

    # mail merge on the same records: the letter reads the account manager's name
    page.get_by_text("Mail merge these companies").click()
    page.get_by_label("Letter").fill("Dear {{ record.title }}, your account manager is {{ record.owner }} ({{ record.industry }}).")
    page.get_by_role("button", name="Produce the letters").click()
    expect(page.get_by_role("heading", name="Mail merge: Companies")).to_be_visible()
    expect(page.locator("article.letter")).to_have_count(1)
    expect(page.locator("article.letter pre")).to_have_text("Dear Acme Health Ltd, your account manager is Ann Sales (Healthcare).")

    # the global search in the header finds a person by surname, under People
    page.get_by_role("searchbox", name="Search all records").fill("Patel")
    page.get_by_role("searchbox", name="Search all records").press("Enter")
    people = page.get_by_role("region", name="People")
    expect(people.get_by_role("link", name="Raj Patel")).to_be_visible()
    shoot(page, "search-1280")
    people.get_by_role("link", name="Raj Patel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Raj Patel"))


@pytest.mark.parametrize("path, name", [
    ("/directory/company?cols=1&col=status&col=industry&col=owner&col=email&col=phone&col=town&col=country&col=created_at", "directory"),
    ("/search?q=a", "search"),
])
def test_at_390_px_the_page_fits_and_the_table_scrolls_inside_its_own_box(platform, browser, path, name):
    pg = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        log_in(pg, platform, "mia")
        pg.goto(f"{platform}{path}")
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
        if name == "directory":
            box = pg.get_by_role("region", name="Companies found")
            widths = box.evaluate("el => [el.scrollWidth, el.clientWidth]")
            assert widths[0] > widths[1], widths  # the wide table scrolls inside its box, the page does not
        shoot(pg, f"{name}-390")
    finally:
        pg.close()
