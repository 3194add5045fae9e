"""The structured editors in Chromium, on a real `tailor run --demo` that follows configuration releases: the admin adds a
field for the healthcare group and a new contact form that starts the call-back process, previews the company page for
a hospital, sees the impact and activates; without any restart, staff fill the new form and the process it starts runs
on the worker (its task reaches the account owner); reverting takes the form away again."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.web.browser import ARGS, CHROMIUM, demo_platform, log_in, save_failure
from tests.web.test_look import PHONE, page_width, serious_problems

SHOTS = os.environ.get("TAILOR_SCREENSHOTS")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with demo_platform(tmp_path_factory.mktemp("editors")) as running:
        yield running


@pytest.fixture
def pages(request):
    opened = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        def new_page():
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            opened.append(page)
            return page

        yield new_page
        save_failure(request, opened)
        browser.close()


def test_group_field_and_contact_form_built_previewed_activated_used_and_reverted(platform, pages):
    base, _db, log = platform
    if True:
        admin = pages()
        log_in(admin, base, "admin")
        admin.goto(f"{base}/admin/draft")
        admin.get_by_role("link", name="Fields, forms and processes").click()

        # a field for hospitals only: a mistake first, then right
        admin.get_by_role("main").get_by_role("link", name="Companies").click()
        admin.get_by_role("link", name="Add a field to Healthcare").click()
        admin.get_by_label("Name", exact=True).fill("Bed count")
        admin.get_by_label("Kind of value").select_option(label="Whole number")
        admin.get_by_role("button", name="Save to the draft").click()
        expect(admin.locator("#in-name-error")).to_contain_text("lower-case letters")
        expect(admin.get_by_label("Name", exact=True)).to_have_value("Bed count")
        admin.get_by_label("Name", exact=True).fill("bed_count")
        admin.get_by_label("Label").fill("Staffed beds")
        admin.get_by_label("Smallest").fill("0")
        admin.get_by_role("button", name="Show the YAML").click()
        expect(admin.get_by_role("list", name="The YAML, with line numbers")).to_contain_text("add_group_fields:")
        expect(admin.get_by_role("status")).to_contain_text("The draft checks with this change")
        admin.get_by_role("button", name="Save to the draft").click()
        expect(admin.get_by_text("added field bed_count to company (group healthcare)")).to_be_visible()

        # a new contact form that starts the call-back process
        admin.goto(f"{base}/admin/editors")
        admin.get_by_role("link", name="New contact form").click()
        admin.get_by_label("Name", exact=True).fill("site_visit")
        admin.get_by_label("Title").fill("Site visit")
        admin.locator("#in-section-0-title").fill("The visit")
        admin.locator("#in-field-0-name").fill("topic")
        admin.locator("#in-field-0-label").fill("What to call about")
        admin.locator("#in-field-0-required").check()
        admin.get_by_role("button", name="Add an action").click()
        expect(admin.locator("#in-field-0-name")).to_have_value("topic")  # the round trip keeps what was typed
        admin.locator("#in-action-0-kind").select_option("start")
        admin.locator("#in-action-0-target").fill("callback")
        admin.locator("#in-action-0-values").fill("topic: topic")
        admin.get_by_role("button", name="Show the YAML").click()
        expect(admin.get_by_role("list", name="The YAML, with line numbers")).to_contain_text("start: callback")
        admin.get_by_role("button", name="Save to the draft").click()
        expect(admin.get_by_text("added form site_visit")).to_be_visible()

        # the company page as staff will see it, for a hospital: the new field shows
        admin.goto(f"{base}/admin/preview")
        admin.get_by_label("Show").select_option(label="Company: the new and edit page")
        admin.get_by_role("button", name="Show the preview").click()
        admin.get_by_label("For", exact=True).select_option(label="Acme Health Ltd")
        admin.get_by_role("button", name="Show the preview").click()
        expect(admin.get_by_label("Staffed beds")).to_be_visible()

        # the impact, then activation with a reason
        admin.goto(f"{base}/admin/draft")
        admin.get_by_role("link", name="See what activating would change").click()
        expect(admin.get_by_text("added field bed_count to company (group healthcare)")).to_be_visible()
        expect(admin.get_by_text("added form site_visit")).to_be_visible()
        admin.get_by_label("Why (kept in the history)").fill("site visits and bed counts for hospitals")
        admin.get_by_role("button", name="Activate").click()
        expect(admin.get_by_role("status")).to_contain_text("is active")

        # staff, no restart: the form is on the company's page, and the process it starts gives the owner a task
        ann = pages()
        log_in(ann, base, "ann")
        ann.goto(f"{base}/directory/company")
        ann.get_by_role("link", name="Acme Health Ltd").first.click()
        acme = ann.url
        ann.get_by_role("link", name="Site visit").click()
        ann.get_by_label("What to call about").fill("Beds on ward 4")
        ann.get_by_role("button", name="Submit").click()
        expect(ann.get_by_role("status")).to_contain_text("Site visit saved")
        deadline = time.monotonic() + 30
        while True:  # the worker runs the process and makes the task within seconds
            ann.goto(f"{base}/")
            if ann.get_by_text("Call back Acme Health Ltd: Beds on ward 4").count() or time.monotonic() > deadline:
                break
            time.sleep(1)
        expect(ann.get_by_text("Call back Acme Health Ltd: Beds on ward 4").first).to_be_visible()

        # revert: the release before is active again, and the form is gone
        admin.goto(f"{base}/admin/releases")
        admin.get_by_role("button", name="Activate again").first.click()
        expect(admin.get_by_role("status")).to_contain_text("is active again")
        ann.goto(acme)
        expect(ann.get_by_role("link", name="Site visit")).to_have_count(0)
        assert "Traceback" not in log.read_text()
        assert re.search(r"now runs release \d+", log.read_text())  # the worker followed, no restart


EDITOR_PAGES = ["/admin/editors", "/admin/editors/entities/company", "/admin/editors/entities/company/fields?group=healthcare",
                "/admin/editors/entities/company/fields?field=employees", "/admin/editors/entities/company/record-fields",
                "/admin/editors/forms/new", "/admin/editors/forms/lead_enquiry", "/admin/editors/processes/onboarding",
                "/admin/editors/processes/lead_follow_up/steps/qualify", "/admin/editors/processes/onboarding/steps/new?after=deliver",
                "/admin/processes/onboarding", "/admin/preview?show=entity:company&record=1",
                "/admin/preview?show=form:callback_request&record=1"]
# pages after a button: (page, the button, what the page then shows)
AFTER = [("/admin/editors/entities/company/fields?group=healthcare", "Save to the draft", "alert"),
         ("/admin/editors/forms/lead_enquiry", "Show the YAML", "status"),
         ("/admin/editors/processes/lead_follow_up/steps/qualify", "Show the YAML", "status")]


def test_every_editor_page_fits_a_phone_and_has_no_serious_accessibility_problem(platform, pages):
    base = platform[0]
    page = pages()
    log_in(page, base, "admin")
    page.set_viewport_size(PHONE)
    for path in EDITOR_PAGES:
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        expect(page.locator("h1")).to_have_count(1)
        assert page_width(page) <= PHONE["width"], f"{path} is {page_width(page)} px wide at 390 px"
        assert serious_problems(page) == [], path
        if SHOTS:
            name = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=f"{SHOTS}/{name}-390.png", full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.screenshot(path=f"{SHOTS}/{name}-1280.png", full_page=True)
            page.set_viewport_size(PHONE)
    for path, button, role in AFTER:
        page.goto(f"{base}{path}")
        page.get_by_role("button", name=button).first.click()
        expect(page.get_by_role(role).first).to_be_visible()
        assert page_width(page) <= PHONE["width"], f"{path} after {button}"
        assert serious_problems(page) == [], f"{path} after {button}"
