"""A German user's record page in a browser, on a desk (1280 px) and on a phone (390 px): German field and choice labels,
`<html lang="de">`, nothing wider than the screen; screenshots kept in test-artifacts/ to look at."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from runtime.schema import users
from tests.web.browser import ARGS, ARTIFACTS, CHROMIUM, needs_chromium
from tests.web.look import start_site
from tests.web.test_look import log_in, page_width

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site, server, thread = start_site(tmp_path_factory.mktemp("locale-look"))
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "ann").values(locale="de"))
    yield site
    server.should_exit = True
    thread.join(timeout=15)


@pytest.mark.parametrize("width", [1280, 390])
def test_a_german_users_record_page_reads_german_and_fits_the_screen(site, width):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
            log_in(page, site, "ann")
            page.goto(site.url("/records/company/{company}"))
            expect(page.locator("html")).to_have_attribute("lang", "de")
            main = page.locator("main")
            expect(main.get_by_text("Branche", exact=True).first).to_be_visible()
            expect(main.get_by_text("Gesundheitswesen", exact=True).first).to_be_visible()
            expect(main.get_by_text(re.compile(r"^Kunde$")).first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"locale-record-de-{width}.png"), full_page=True)
            assert page_width(page) <= width, f"the page is {page_width(page)} px wide at {width} px"
            page.goto(site.url("/forms/support_request?record={company}"))
            expect(page.get_by_label("Schweregrad")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"locale-form-de-{width}.png"), full_page=True)
            assert page_width(page) <= width
        finally:
            browser.close()
