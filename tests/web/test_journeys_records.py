"""Record pages in a real browser (headless Chromium) against `tailor run --demo`: create, edit, groups, a concurrent
edit, a record's own fields, and a new person from the company page; with scripts and without."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect, sync_playwright

from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.schema import users
from tests.conftest import CRM
from tests.web.browser import (
    demo_platform,
    launch,
    log_in,
    needs_chromium,
    save_failure,
)

SHOTS = Path(os.environ.get("TAILOR_SHOTS", "/tmp/shots-recordedit"))

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """`tailor run --demo` on free ports: its address and its database (for the change someone else makes)."""
    with demo_platform(tmp_path_factory.mktemp("records")) as (base, db, _):
        engine = sa.create_engine(f"sqlite:///{db}")
        yield base, engine
        engine.dispose()


@pytest.fixture
def browser(request):
    with sync_playwright() as pw:
        launched = launch(pw)
        yield launched
        save_failure(request, [pg for context in launched.contexts for pg in context.pages])
        launched.close()


def shoot(page: Page, name: str) -> None:
    """Screenshots at 1280 and 390 px wide (to look at; not kept in git); at 390 px nothing is wider than the screen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        if width == 390:
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{name} is wider than a phone"
    page.set_viewport_size({"width": 1280, "height": 900})


def new_company(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/records/company/new")
    expect(page.locator("#f-status")).to_have_value("prospect")  # the definition's default
    page.locator("#f-name").fill(name)
    page.get_by_role("button", name="Add company").click()
    expect(page.get_by_role("status")).to_have_text(f"Added company '{name}'.")
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def test_a_company_is_created_edited_with_its_group_guarded_against_a_concurrent_edit_given_its_own_field_and_a_person(
        platform, browser: Browser):
    base, engine = platform
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, base, "mia")
    new_company(page, base, "Harbour Clinic")

    # edit it: choosing healthcare brings the healthcare section at once (the page asks the server)
    page.get_by_role("link", name="Edit this company").click()
    healthcare = page.locator("#group-healthcare")
    expect(healthcare).to_be_hidden()
    page.get_by_label("Industry").select_option("healthcare")
    expect(healthcare).to_be_visible()
    page.get_by_label("ODS code").fill("RJ1")
    page.get_by_label("Organisation type").select_option(label="NHS trust")
    shoot(page, "edit-group")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved company 'Harbour Clinic'.")
    expect(page.locator(".timeline")).to_contain_text("Industry: (empty) → Healthcare")
    expect(page.locator(".timeline")).to_contain_text("ODS code: (empty) → RJ1")
    company_url = page.url
    record_id = int(company_url.rsplit("/", 1)[1])

    # someone else saves while Mia edits: her save is refused, her input kept, their change shown
    page.get_by_role("link", name="Edit this company").click()
    page.get_by_label("Town").fill("Whitby")
    compiled = compile_model(load([CRM]))
    with engine.begin() as conn:
        ann = conn.execute(sa.select(users.c.id).where(users.c.username == "ann")).scalar_one()
        records.update_record(conn, compiled, "company", record_id, {"employees": 250, "owner": ann}, ann, history=True)
    page.get_by_role("button", name="Save").click()
    conflict = page.locator("#conflict")
    expect(conflict).to_contain_text("Someone else changed this company while you were editing it, so nothing was saved.")
    expect(conflict.get_by_role("row", name=re.compile("Number of employees 250 Ann Sales"))).to_be_visible()
    expect(conflict.get_by_role("row", name=re.compile("Account manager Ann Sales Ann Sales"))).to_be_visible()
    expect(page.get_by_label("Town")).to_have_value("Whitby")  # her input, kept
    expect(page.get_by_label("Number of employees")).to_have_value("250")  # a field she had not touched shows Ann's change
    shoot(page, "edit-conflict")
    page.get_by_role("button", name="Save").click()  # having seen it, she saves again
    expect(page.get_by_role("status")).to_have_text("Saved company 'Harbour Clinic'.")
    expect(page.locator(".timeline")).to_contain_text("Town: (empty) → Whitby")

    # a field of this company only: added, edited and removed, each in the contact history
    page.get_by_role("link", name="Edit this company").click()
    page.get_by_label("Field name").fill("Parking bays")
    page.get_by_label("Kind").select_option("integer")
    page.get_by_label("Value", exact=True).fill("3")
    page.get_by_role("button", name="Add field").click()
    expect(page.get_by_role("status")).to_have_text("Added 'Parking bays' to this company.")
    own = page.locator("#f-own-parking_bays")
    expect(own).to_have_value("3")
    shoot(page, "edit-own-field")
    own.fill("5")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved company 'Harbour Clinic'.")
    page.get_by_role("link", name="Edit this company").click()
    page.get_by_role("button", name="Remove the field Parking bays").click()
    expect(page.get_by_role("status")).to_have_text("Removed 'Parking bays' from this company; its last value is kept in the audit log.")
    expect(page.locator("#f-own-parking_bays")).to_have_count(0)
    page.goto(company_url)
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("Added a field of this company only: Parking bays = 3")
    expect(timeline).to_contain_text("Changed Parking bays (this company only): 3 → 5")
    expect(timeline).to_contain_text("Removed the field Parking bays (was 5)")

    # "New person" from the company page comes with the company chosen
    page.get_by_role("link", name="New person").click()
    expect(page.locator("#f-company")).to_have_value(str(record_id))
    expect(page.locator("#f-company option:checked")).to_have_text("Harbour Clinic")
    page.get_by_label("First name").fill("Nia")
    page.get_by_label("Last name").fill("Jones")
    shoot(page, "new-person")
    page.get_by_role("button", name="Add person").click()
    expect(page.get_by_role("status")).to_have_text("Added person 'Nia Jones'.")


def test_without_scripts_a_group_section_appears_once_the_page_is_saved(platform, browser: Browser):
    base, _ = platform
    page = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900}).new_page()
    log_in(page, base, "ann")
    new_company(page, base, "Quay Surgery")
    page.get_by_role("link", name="Edit this company").click()
    page.get_by_label("Industry").select_option("healthcare")
    expect(page.locator("#group-healthcare")).to_be_hidden()  # nothing asks the server before the save
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved company 'Quay Surgery'. The Healthcare fields now apply: fill them in below.")
    expect(page.locator("#group-healthcare")).to_be_visible()
    page.get_by_label("ODS code").fill("Y0001")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved company 'Quay Surgery'.")
    expect(page.locator(".timeline")).to_contain_text("ODS code: (empty) → Y0001")
