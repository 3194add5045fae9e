"""Every main page in Chromium at 390 px: nothing wider than the screen, and axe-core finds no serious or critical
accessibility problem. Also the page shell itself: skip link, current page, focus ring, the menu on a phone.

To add a page, add its path to PAGES under the user who opens it ({name} is an id from tests/web/look.py's seed).
Set TAILOR_SCREENSHOTS=/some/folder to keep a 1280 px and a 390 px screenshot of each page checked.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from engine.loader import load
from engine.pages import navigation, stages
from tests.conftest import CRM
from tests.web.look import Site, axe_script, start_site

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 900}
SHOTS = os.environ.get("TAILOR_SCREENSHOTS")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")

ENTITIES = [e.name for e in navigation(load([CRM]))]  # the directory of every entity in the main menu

# user (None: not logged in) -> the pages they open
PAGES: dict[str | None, list[str]] = {
    "ann": ["/", "/forms", "/forms/call_note?record={company}", "/forms/lead_enquiry?record={company}",
            *(f"/directory/{e}" for e in ENTITIES), "/records/company/{company}", "/records/person/{person}",
            "/records/opportunity/{opportunity}", "/tasks/{task}", "/tasks/{queued}", "/alerts", "/projects/{project}", "/profile",
            "/records/company/{company}/edit", "/records/person/new?company={company}", "/records/opportunity/{opportunity}/edit",
            "/records/company/999999", "/no/such/page", "/search?q=a", "/tasks/{chase}", "/?due=overdue", "/tasks/{sent_back}",
            "/projects", "/notifications", "/notifications?page=9"],
    "dave": ["/tasks/{approval_step}", "/tasks/{decided}", "/dashboards/management"],
    "mia": ["/notifications", "/", "/alerts", "/tasks/{approval}", "/tasks/{task}", "/projects/{project}", "/directory/company", "/profile",
            "/board/opportunity", "/work/team", "/work/team?group=all&page=9", "/tasks/{sent_back}", "/tasks/{approval_rejected}",
            "/projects?show=all", "/records/company/{company}/start/onboarding", "/reports", "/dashboards/sales",
            "/reports/pipeline_funnel", "/reports/opportunities_by_source", "/reports/forgotten_customers"],
    "lee": ["/dashboards/support", "/reports/sla_by_agent"],
    "admin": ["/", "/records/company/{company}", "/records/company/{company}/edit", "/records/company/{company}/delete",
              "/directory/person", "/admin", "/admin/users", "/admin/users/new", "/admin/users/{user_admin}", "/admin/groups",
              "/admin/groups/sales", "/admin/log", "/records/person/{person}"],
    "pam": ["/projects/{project}", "/tasks/{project_task}", "/projects", "/projects/{project}/members/{user_ann}/remove"],
    "jane": ["/portal", "/portal/forms/support_request", "/portal/forms/sales_request", "/profile", "/", "/portal/forms/nosuch",
             "/portal/requests/{support_request}", "/portal/requests/999999", "/notifications"],
    "sue": ["/tasks/{triage}", "/records/support_request/{support_request}"],
    None: ["/login", "/login?next=/alerts", "/no/such/page"],
}


def cases() -> list:
    return [pytest.param(who, path, id=f"{who or 'anonymous'} {path}") for who, paths in PAGES.items() for path in paths]


# -- the site and a browser per module; a logged-in context per user ------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site, server, thread = start_site(tmp_path_factory.mktemp("look"))
    yield site
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def contexts(site: Site, browser: Browser):
    made: dict[str | None, BrowserContext] = {}

    def context(who: str | None) -> BrowserContext:
        if who not in made:
            ctx = browser.new_context(viewport=PHONE)
            if who is not None:
                page = ctx.new_page()
                log_in(page, site, who)
                page.close()
            made[who] = ctx
        return made[who]

    yield context
    for ctx in made.values():
        ctx.close()


def log_in(page: Page, site: Site, who: str) -> None:
    page.goto(site.url("/login"))
    page.get_by_label("User name").fill(who)
    page.get_by_label("Password").fill(who)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("a.skip-link[href='#main-content']")).to_have_count(1)  # signed in: the page's frame, in any language
    expect(page).not_to_have_url(re.compile(r"/login"))


def serious_problems(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each with where they are."""
    page.add_script_tag(path=str(axe_script()))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(str(n['target']) for n in v['nodes'][:5])}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


# -- every page ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "path"), cases())
def test_every_main_page_fits_a_phone_and_has_no_serious_accessibility_problem(site, contexts, who, path):
    page = contexts(who).new_page()
    try:
        response = page.goto(site.url(path))
        assert response is not None and response.status < 500, f"{path}: {response.status if response else 'no answer'}"
        expect(page.locator("h1")).to_have_count(1)  # every page says what it is
        assert page_width(page) <= PHONE["width"], f"{path} is {page_width(page)} px wide at 390 px"
        assert serious_problems(page) == []
        if SHOTS:
            name = re.sub(r"[^A-Za-z0-9]+", "-", f"{who or 'anonymous'}{path.format(**site.ids)}").strip("-")
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=f"{SHOTS}/{name}-390.png", full_page=True)
            page.set_viewport_size(DESKTOP)
            page.screenshot(path=f"{SHOTS}/{name}-1280.png", full_page=True)
    finally:
        page.close()


@pytest.mark.parametrize("path", ["/profile?problem", "/tasks/{task}?problem", "/forms/lead_enquiry?record={company}", "/work/team?problem"])
def test_pages_showing_problems_stay_accessible(site, contexts, path):
    """A form sent back with its problems (a wrong password, a task form left empty, a lead without its summary, a
    bulk reassignment with nobody chosen)."""
    page = contexts("mia" if path.startswith("/work") else "ann").new_page()
    try:
        page.goto(site.url(path.replace("?problem", "")))
        if path.startswith("/profile"):
            page.get_by_label("Current password").fill("not it")
            page.get_by_role("button", name="Change password").click()
        elif path.startswith("/tasks"):
            page.get_by_role("button", name="Complete task").click()
        elif path.startswith("/work"):
            page.locator("td.pick input").first.check()
            page.get_by_role("button", name=re.compile("^Reassign")).click()
        else:
            page.get_by_role("button", name="Submit").click()
        expect(page.get_by_role("alert").first).to_be_visible()
        assert page_width(page) <= PHONE["width"]
        assert serious_problems(page) == []
    finally:
        page.close()


def test_a_project_page_refusing_a_new_member_stays_accessible(site, contexts):
    """The project manager adds nobody: the team's picker says so, on the whole page."""
    page = contexts("pam").new_page()
    try:
        page.goto(site.url("/projects/{project}"))
        page.get_by_role("button", name="Add to the team").click()
        expect(page.get_by_role("alert")).to_have_text("Choose someone to add: type their name, then pick them from the list.")
        assert page_width(page) <= PHONE["width"]
        assert serious_problems(page) == []
    finally:
        page.close()


@pytest.mark.parametrize(("who", "path", "button"), [("jane", "/portal/requests/{support_request}", "Send reply"),
                                                     ("sue", "/tasks/{triage}", "Reply to the customer")])
def test_a_reply_sent_back_with_its_problem_stays_accessible(site, contexts, who, path, button):
    """A reply sent empty: the customer's on their request's page, staff's on the task page."""
    page = contexts(who).new_page()
    try:
        page.goto(site.url(path))
        page.get_by_role("button", name=button).click()
        expect(page.get_by_role("alert")).to_contain_text("Nothing was sent")
        expect(page.locator("#reply-text-error")).to_have_text("Write your reply first: it is empty.")
        assert page_width(page) <= PHONE["width"]
        assert serious_problems(page) == []
    finally:
        page.close()


# -- the shell ----------------------------------------------------------------------------------------


def test_the_skip_link_comes_first_and_moves_focus_to_the_page(site, contexts):
    page = contexts("ann").new_page()
    try:
        page.goto(site.url("/alerts"))
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to main content")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()  # hidden until focused, then on screen
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")  # the next stop is inside the page, not the header or the menu
        assert page.evaluate("document.activeElement.closest('main') !== null")
    finally:
        page.close()


def test_the_menu_lists_the_entities_and_marks_where_you_are(site, contexts):
    page = contexts("ann").new_page()
    page.set_viewport_size(DESKTOP)
    try:
        page.goto(site.url("/directory/opportunity"))
        menu = page.get_by_role("navigation", name="Main")
        # each entity's directory, then its pipeline board where it has stages (the opportunity's)
        names = [n for e in navigation(load([CRM])) for n in (e.plural, *([f"{e.label} board"] if stages(e) else []))]
        assert "Opportunity board" in names
        expect(menu.get_by_role("link")).to_have_text(["My work", "Projects", *names, "Forms", "Alerts"])
        expect(menu.locator("[aria-current=page]")).to_have_text("Opportunities")
        page.goto(site.url("/records/company/{company}"))
        expect(menu.locator("[aria-current]")).to_have_text("Companies")  # inside the companies, not on their list
        expect(page.get_by_role("link", name="Ann Sales")).to_have_attribute("href", "/profile")
    finally:
        page.close()


def test_focus_is_a_ring_of_at_least_two_pixels_in_a_contrasting_colour(site, contexts):
    page = contexts("ann").new_page()
    try:
        page.goto(site.url("/profile"))
        for target in (page.get_by_label("Show times in"), page.get_by_role("button", name="Save time zone"),
                       page.get_by_role("link", name="Ann Sales")):
            target.focus()
            page.keyboard.press("Shift+Tab")
            page.keyboard.press("Tab")  # keyboard focus, so :focus-visible applies
            ring = target.evaluate("e => { const s = getComputedStyle(e); return [s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor] }")
            assert ring[0] != "none" and ring[1] >= 2, ring
            assert ring[2] in ("rgb(27, 88, 196)", "rgb(255, 208, 77)"), ring  # the accent blue; yellow on the dark header
    finally:
        page.close()


def test_on_a_phone_the_menu_folds_behind_a_button(site, contexts):
    page = contexts("ann").new_page()
    try:
        page.goto(site.url("/"))
        menu, button = page.get_by_role("navigation", name="Main"), page.get_by_role("button", name="Menu")
        expect(menu).to_be_hidden()
        button.click()
        expect(button).to_have_attribute("aria-expanded", "true")
        expect(menu.get_by_role("link", name="Support requests")).to_be_visible()
        assert page_width(page) <= PHONE["width"]
        page.keyboard.press("Escape")
        expect(menu).to_be_hidden()
        expect(button).to_be_focused()
    finally:
        page.close()


def test_without_scripts_the_menu_wraps_on_a_phone_instead_of_widening_the_page(site, browser):
    ctx = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = ctx.new_page()
    try:
        log_in(page, site, "mia")
        menu = page.get_by_role("navigation", name="Main")
        expect(menu.get_by_role("link", name="Support requests")).to_be_visible()
        assert page_width(page) <= PHONE["width"]
    finally:
        ctx.close()


def test_an_error_page_says_what_happened_and_offers_a_way_back(site, contexts):
    page = contexts("jane").new_page()
    try:
        response = page.goto(site.url("/directory/company"))
        assert response.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("403.*Not allowed"))
        page.get_by_role("link", name="Back to your requests").click()
        expect(page).to_have_url(re.compile(r"/portal$"))
    finally:
        page.close()
