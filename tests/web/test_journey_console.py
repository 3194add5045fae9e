"""The administrator's journey in Chromium: add a user, put them in a group under a manager, reset a password (which
must be changed at the next login), give a person portal access from their record, revoke an API token (the API
refuses it at once)."""
from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from runtime import records
from tests.web.browser import ARGS, CHROMIUM, save_failure
from tests.web.look import start_site

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site, server, thread = start_site(tmp_path_factory.mktemp("console"))
    yield site
    server.should_exit = True
    thread.join(timeout=15)


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


def log_in(page, base: str, who: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(who)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_an_administrator_manages_users_groups_and_access(site, pages):
    base = site.base
    admin = pages()
    log_in(admin, base, "admin", "admin")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Console").click()
    admin.get_by_role("link", name="Add a user").first.click()

    # a mistake first: the form comes back with what was typed and a message at the field
    admin.get_by_label("Full name").fill("Tom New")
    admin.get_by_label("User name").fill("Tom New")
    admin.get_by_role("button", name="Add user").click()
    expect(admin.get_by_text("lower-case letters").first).to_be_visible()
    expect(admin.get_by_label("Full name")).to_have_value("Tom New")
    admin.get_by_label("User name").fill("tom")
    admin.get_by_label("Email (optional)").fill("tom@example.com")
    admin.get_by_role("button", name="Add user").click()
    expect(admin.get_by_role("heading", name="User added. Temporary password")).to_be_visible()
    first_password = admin.locator("code.once").inner_text()

    # Tom joins sales, whose manager is Mia
    admin.goto(f"{base}/admin/groups/sales")
    admin.get_by_label("Person").select_option(label="Tom New (tom)")
    admin.get_by_role("button", name="Add", exact=True).click()
    expect(admin.get_by_role("status")).to_have_text("Now a member of the group.")
    expect(admin.get_by_role("link", name="Tom New")).to_be_visible()

    # Tom logs in with the temporary password and must choose his own before anything else
    tom = pages()
    log_in(tom, base, "tom", first_password)
    expect(tom.get_by_role("heading", name="Password")).to_be_visible()
    expect(tom.get_by_text("Choose your own password before you go on")).to_be_visible()
    tom.goto(f"{base}/")
    expect(tom).to_have_url(re.compile(r"/profile"))
    tom.get_by_label("Current password").fill(first_password)
    tom.get_by_label("New password", exact=True).fill("toms own words")
    tom.get_by_label("New password again").fill("toms own words")
    tom.get_by_role("button", name="Change password").click()
    tom.goto(f"{base}/")
    expect(tom.get_by_role("heading", name="My work")).to_be_visible()

    # he forgets it: the administrator resets it; his session ends and the new temporary one must be changed again
    admin.goto(f"{base}/admin/users?q=tom")
    admin.get_by_role("link", name="Tom New").click()
    admin.get_by_role("button", name="Reset password").click()
    second_password = admin.locator("code.once").inner_text()
    tom.goto(f"{base}/")
    expect(tom.get_by_role("button", name="Log in")).to_be_visible()  # logged out on the server
    log_in(tom, base, "tom", second_password)
    expect(tom.get_by_text("Choose your own password before you go on")).to_be_visible()

    # an integration's token, revoked: the API refuses it at once
    admin.get_by_role("button", name="Create API token").click()
    token = admin.locator("code.once").inner_text()
    assert httpx.get(f"{base}/api/forms", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    admin.get_by_role("button", name="Revoke API token").click()
    expect(admin.get_by_role("status")).to_contain_text("API token revoked")
    assert httpx.get(f"{base}/api/forms", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    # a customer's contact gets the portal from their person record
    with site.engine.begin() as conn:
        compiled = site_compiled(site)
        company = records.get_record(conn, compiled, "person", site.ids["person"]).data["company"]
        kim = records.create_record(conn, compiled, "person", {"first_name": "Kim", "last_name": "Ito", "company": company,
                                                               "email": "kim@acmehealth.example"}, None).id
    admin.goto(f"{base}/records/person/{kim}")
    access = admin.get_by_role("region", name="Access to Tailor")
    expect(access).to_contain_text("has no access yet")
    expect(access.get_by_label("User name")).to_have_value("kim")  # suggested from the email address
    access.get_by_label("User name").fill("kim.ito")
    access.get_by_role("button", name="Give access").click()
    expect(admin.get_by_role("heading", name="User added. Temporary password")).to_be_visible()
    portal_password = admin.locator("code.once").inner_text()
    admin.goto(f"{base}/records/person/{kim}")
    expect(admin.get_by_role("region", name="Access to Tailor")).to_contain_text("logs in as kim.ito")
    expect(admin.get_by_role("region", name="Details")).to_contain_text("Portal")
    jane = pages()
    log_in(jane, base, "kim.ito", portal_password)
    jane.get_by_label("Current password").fill(portal_password)
    jane.get_by_label("New password", exact=True).fill("janes own words")
    jane.get_by_label("New password again").fill("janes own words")
    jane.get_by_role("button", name="Change password").click()
    jane.goto(f"{base}/portal")
    expect(jane.get_by_role("heading", level=1)).to_contain_text("Acme")


def site_compiled(site):
    from engine.compiler import compile_model
    from engine.loader import load
    from tests.conftest import CRM

    return compile_model(load([CRM]))
