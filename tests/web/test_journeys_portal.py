"""The portal conversation in Chromium against `tailor run --demo`, with a real SMTP server (aiosmtpd) for its mail:
a customer submits a request, support answers it publicly from the task page (and notes something internal), the
customer opens the request, reads the answer (never the internal note) and replies; the answer is emailed once.

Screenshots at 1280 and 390 px go to $TAILOR_SHOTS (default /tmp/shots-portal), to be looked at.
"""
from __future__ import annotations

import email
import os
import re
import sqlite3
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import free_port
from tests.runtime.conftest import Inbox
from tests.web.browser import (
    demo_platform,
    launch,
    log_in,
    needs_chromium,
    save_failure,
)

pytestmark = needs_chromium
SHOTS = Path(os.environ.get("TAILOR_SHOTS", "/tmp/shots-portal"))
SUMMARY = "Invoices show the wrong VAT rate"
ANSWER = "Thank you, Jane. The VAT table of your installation still has the old rate.\nWe have corrected it: please check tomorrow's invoices."
NOTE = "Their invoicing module is two versions behind: offer the upgrade."


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """The demo with its mail going to an SMTP server of this test: (address, SQLite file, the server's inbox)."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with demo_platform(tmp_path_factory.mktemp("portal"), env={"TAILOR_SMTP_PORT": str(port),
                                                                   "TAILOR_MAIL_FROM": "support@crm.example.com"}) as (base, db, _):
            yield base, db, inbox
    finally:
        controller.stop()


@pytest.fixture
def page(request):
    with sync_playwright() as pw:
        browser = launch(pw)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        yield pg
        save_failure(request, [pg])
        browser.close()


def shoot(page: Page, name: str) -> None:
    """Full-page screenshots at 1280 and 390 px wide; at 390 the page itself must not be wider than the screen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        if width == 390:
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{name} is wider than a 390 px screen"
    page.set_viewport_size({"width": 1280, "height": 900})


def portal_log_in(page: Page, base: str, who: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(who)
    page.get_by_label("Password").fill(who)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/portal$"))


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))


def wait_for_link(page: Page, name: str, tries: int = 40) -> None:
    """Reload until the link shows (a process creates the task a moment after the submission)."""
    link = page.get_by_role("link", name=name)
    for _ in range(tries):
        if link.count():
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(link).to_be_visible()


def triage_holder(db: Path, tries: int = 60) -> tuple[str, str]:
    """(user name, name) of whom the new request's triage task went to, once the process has created it."""
    for _ in range(tries):
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT u.username, u.name FROM tasks t JOIN users u ON u.id = t.assignee_id "
                               "WHERE t.title = ? AND t.status = 'open'", (f"Triage: {SUMMARY}",)).fetchone()
        if row:
            return row
        time.sleep(0.5)
    raise AssertionError(f"no open triage task for '{SUMMARY}' was assigned")


def test_support_answers_a_portal_request_publicly_and_the_customer_reads_it_and_replies(platform, page: Page):
    base, db, inbox = platform
    # Jane reports a problem through the portal; the form's intro is the one written for customers
    portal_log_in(page, base, "jane")
    page.get_by_role("link", name="Support request").click()
    expect(page.get_by_text("You can follow your request on its page here")).to_be_visible()
    expect(page.get_by_text("support_sla")).to_have_count(0)
    page.get_by_label("Summary").fill(SUMMARY)
    page.get_by_label("Description").fill("Since the update, VAT is 17.5% instead of 20%.")
    page.get_by_label("Category").select_option("fault")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_have_text("Thank you: we have your request.")
    page.get_by_role("link", name="Tailor").click()  # the brand goes to the portal home, which opens
    expect(page.get_by_role("heading", name="Acme Health Ltd")).to_be_visible()
    log_out(page)

    # support gets the triage task (whoever of the support group is least busy) and answers from it: publicly, then a
    # note for colleagues
    holder, name = triage_holder(db)
    log_in(page, base, holder)
    wait_for_link(page, f"Triage: {SUMMARY}")
    page.get_by_role("link", name=f"Triage: {SUMMARY}").click()
    box = page.get_by_role("region", name="Conversation with the customer")
    expect(box).to_contain_text("emails it to Jane Doe (jane@acmehealth.example)")
    box.get_by_role("button", name="Reply to the customer").click()  # nothing written yet
    expect(page.locator("#reply-text-error")).to_have_text("Write your reply first: it is empty.")
    page.get_by_label("Your answer").fill(ANSWER)
    page.get_by_role("button", name="Reply to the customer").click()
    expect(page.get_by_role("status")).to_contain_text("Reply sent to the customer")
    page.get_by_label("Your answer").fill(NOTE)
    page.get_by_role("button", name="Internal comment").click()
    expect(page.get_by_role("status")).to_have_text("Internal comment added: only staff see it.")
    expect(box.locator(".message.internal")).to_contain_text(NOTE)
    shoot(page, "staff-task")
    log_out(page)

    # Jane opens her request from the portal home: Sue's answer is there, the internal note is not; she replies
    portal_log_in(page, base, "jane")
    page.get_by_role("link", name=re.compile(SUMMARY)).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(SUMMARY)
    conversation = page.get_by_role("region", name="Conversation")
    expect(conversation).to_contain_text(name)
    expect(conversation).to_contain_text("We have corrected it: please check tomorrow's invoices.")
    expect(page.get_by_text("two versions behind")).to_have_count(0)
    expect(page.get_by_role("region", name="Status history")).to_contain_text("New")
    expect(page.get_by_role("region", name="Details")).to_contain_text("Fault / bug")
    page.get_by_label("Your reply").fill("Thanks! I will check tomorrow.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text("Your reply is sent")
    expect(conversation.locator(".message.mine")).to_contain_text("Thanks! I will check tomorrow.")
    shoot(page, "portal-request")
    page.get_by_role("link", name="All your requests").click()  # the way back is the portal home, no loop
    expect(page.get_by_role("heading", name="Acme Health Ltd")).to_be_visible()

    # the task's holder heard of Jane's reply (a notification leading to the task), and the answer reached Jane by
    # email, once
    with sqlite3.connect(db) as conn:
        told = conn.execute("SELECT n.text, n.link FROM notifications n JOIN users u ON u.id = n.user_id "
                            "WHERE u.username = ? AND n.kind = 'reply'", (holder,)).fetchall()
    assert len(told) == 1 and told[0][0].startswith("Jane Doe replied on ") and told[0][1].startswith("/tasks/"), told
    deadline = time.monotonic() + 20
    while not inbox.messages and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # a second send would come within the sender's next turns
    assert len(inbox.messages) == 1, [m[0] for m in inbox.messages]
    rcpts, content = inbox.messages[0]
    mail = email.message_from_string(content)
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert rcpts == ["jane@acmehealth.example"] and mail["Subject"].startswith("Re: #") and SUMMARY in mail["Subject"]
    assert ANSWER in body and f"{base}/portal/requests/" in body and NOTE not in body
