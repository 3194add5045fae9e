"""The discount approval in a real browser against `tailor run --demo`: Bob proposes a 20% discount, it goes straight to
the sales director (Dave Director), who sees what he is asked to approve and rejects it with a reason; Bob sees the
reason above his proposal (filled in as he left it), revises it, and Dave approves it. Bob cannot decide his own."""
from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.web.browser import demo_platform, launch, log_in, needs_chromium, save_failure

pytestmark = needs_chromium
SHOTS = os.environ.get("TAILOR_SCREENSHOTS")  # a folder: the approver's and the sent-back pages at 1280 and 390 px go there
DEAL = "Northwind Retail: Tills for 12 stores"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with demo_platform(tmp_path_factory.mktemp("platform")) as (base, db, _):
        yield base, db


@pytest.fixture
def page(request):
    with sync_playwright() as pw:
        browser = launch(pw)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        yield pg
        save_failure(request, [pg])
        browser.close()


def _task(db: Path, step: str, title_part: str, status: str = "open", timeout: float = 30) -> dict:
    """The newest task of `step` whose title has `title_part` once the process has written it (as the worker does, a moment
    after the page that caused it)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(db) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM tasks WHERE step_id = ? AND title LIKE ? AND status = ? ORDER BY id DESC",
                               (step, f"%{title_part}%", status)).fetchone()
        if row is not None:
            return dict(row)
        assert time.monotonic() < deadline, f"no {status} {step} task for {title_part!r}"
        time.sleep(0.3)


def _name(db: Path, user_id: int) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()[0]


def _shoot(page: Page, name: str) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()


def test_a_discount_goes_to_the_director_who_rejects_with_a_reason_then_approves_the_revision(platform, page: Page):
    base, db = platform
    # Bob records Northwind's enquiry; the follow-up's qualification comes to whoever is next in the sales group
    log_in(page, base, "bob")
    page.get_by_role("link", name="Northwind Retail").first.click()
    page.get_by_role("link", name="Lead / enquiry").click()
    page.get_by_label("Channel").select_option("phone")
    page.get_by_label("What are they looking for?").fill("Tills for 12 stores")
    page.get_by_label("Budget").fill("15000")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_have_text("Lead / enquiry saved.")
    qualify = _task(db, "qualify", DEAL)
    if _name(db, qualify["assignee_id"]) != "bob":
        _log_out(page)
        log_in(page, base, _name(db, qualify["assignee_id"]))
    page.goto(f"{base}/tasks/{qualify['id']}")
    page.get_by_label("Outcome").select_option("qualified")
    page.get_by_label("Opportunity owner").select_option(label="Bob Sales")
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_role("status")).to_contain_text("Done: Qualify the enquiry")
    if _name(db, qualify["assignee_id"]) != "bob":
        _log_out(page)
        log_in(page, base, "bob")

    # Bob proposes a 20% discount
    _task(db, "proposal", DEAL)  # the proposal is written a moment after the qualification
    page.goto(f"{base}/")
    page.get_by_role("link", name=f"Send a proposal: {DEAL}").click()
    page.get_by_label("Proposal value").fill("12500")
    page.get_by_label("Discount (%)").fill("20")
    page.get_by_label("Sent on").fill("2026-03-02")
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_role("status")).to_contain_text("Done: Send a proposal")

    # it goes straight to the director, not to Bob: Bob may follow it, but not decide it
    ask = _task(db, "discount_approval", DEAL)
    assert _name(db, ask["assignee_id"]) == "dave"
    page.goto(f"{base}/")
    expect(page.get_by_role("link", name=re.compile("Approve a 20% discount"))).to_have_count(1)  # started by him, for others
    page.goto(f"{base}/tasks/{ask['id']}")
    expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    expect(page.get_by_text("You submitted this work, so someone else must approve it: it is waiting for Dave Director's decision.")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject and send back")).to_have_count(0)
    _shoot(page, "requester-follows")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(f"{base}/tasks/{ask['id']}/decide", form={"csrf_token": csrf, "decision": "approve"})
    assert refused.status == 403  # bob may not approve at all; a director would hear "You submitted this work" (test_api_approvals)
    _log_out(page)

    # the director sees what he is asked to approve, as people read it
    log_in(page, base, "dave")
    # his decisions wait in their own section of My work (the task is in his list of work too)
    waiting = page.locator("section", has=page.get_by_role("heading", name=re.compile("Waiting for my approval")))
    waiting.get_by_role("link", name=f"Approve a 20% discount: {DEAL}").click()
    subject = page.locator("section", has=page.get_by_role("heading", name="What you are asked to approve"))
    expect(subject).to_contain_text("Submitted by Bob Sales")
    for label, value in (("Company", "Northwind Retail"), ("Proposal value", "£12,500.00"), ("Discount (%)", "20"),
                         ("Sent on", "Mon 2 Mar 2026")):
        expect(subject.locator("dt", has_text=label).locator("+ dd")).to_have_text(value)
    expect(page.get_by_role("button", name="Approve")).to_have_count(1)
    expect(page.get_by_role("button", name="Reject and send back")).to_have_class(re.compile("danger"))
    expect(page.get_by_label("Add a comment")).to_have_count(1)  # the task's one comment thread; the decision has none of its own
    _shoot(page, "approver")

    # a rejection needs a reason: without one the page says so at the field and keeps what was typed
    page.get_by_label("Why are you sending it back?").fill("   ")
    page.get_by_role("button", name="Reject and send back").click()
    expect(page.locator("#reject-reason-error")).to_have_text("Say why you are sending it back.")
    expect(page.get_by_label("Why are you sending it back?")).to_have_value("   ")
    _shoot(page, "reject-without-reason")
    page.get_by_label("Why are you sending it back?").fill("20% is too much for a first order: offer 16% at most.")
    page.get_by_role("button", name="Reject and send back").click()
    expect(page.get_by_role("status")).to_contain_text("Sent back: Approve a 20% discount")
    _log_out(page)

    # Bob sees who sent it back, when and why, above his proposal as he submitted it
    log_in(page, base, "bob")
    page.get_by_role("link", name=f"Send a proposal: {DEAL}").click()
    notice = page.locator("section", has=page.get_by_role("heading", name="Sent back for revision"))
    expect(notice).to_contain_text(re.compile(r"Sent back by Dave Director on \w{3} \d+ \w{3}( \d{4})?, \d\d:\d\d: "
                                              r"20% is too much for a first order: offer 16% at most\."))
    expect(page.get_by_label("Proposal value")).to_have_value("12500.00")
    expect(page.get_by_label("Discount (%)")).to_have_value("20")
    box = notice.bounding_box()
    assert box["y"] < page.get_by_role("heading", name="Complete this task").bounding_box()["y"]  # above the form
    _shoot(page, "sent-back")
    page.get_by_label("Discount (%)").fill("16")
    page.get_by_role("button", name="Complete task").click()
    expect(page.get_by_role("status")).to_contain_text("Done: Send a proposal")
    _log_out(page)

    # the revision comes back to the director, who approves it; the chase follows
    log_in(page, base, "dave")
    waiting.get_by_role("link", name=f"Approve a 16% discount: {DEAL}").click()
    expect(page.locator("section", has=page.get_by_role("heading", name="What you are asked to approve"))).to_contain_text("Revised: round 2")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("Approved: Approve a 16% discount")
    chase = _task(db, "chase", DEAL)
    assert _name(db, chase["assignee_id"]) == "bob"

    # the record's history says who decided what, and why
    page.goto(f"{base}/records/opportunity/{chase['record_id']}")
    history = page.locator(".timeline")
    expect(history).to_contain_text("Rejected by Dave Director: 20% is too much for a first order: offer 16% at most.")
    expect(history).to_contain_text("Sent back to Bob Sales for revision")
    expect(history).to_contain_text("Approved by Dave Director")
