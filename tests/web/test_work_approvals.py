"""My work's "Waiting for my approval": the decisions its reader must make, of both kinds (their own approval tasks of an
approval step, and tasks awaiting the approver their step names), soonest due first, at most a page of them."""
from __future__ import annotations

import datetime as dt
import re

from admin.web.routes.work import APPROVALS_SHOWN
from tests.web.test_work import compiled, demo_file, site  # noqa: F401 - the fixtures of My work's tests


def waiting(page: str) -> list[str]:
    section = re.search(r'<section aria-labelledby="appr">.*?</section>', page, re.DOTALL)
    return re.findall(r'<a href="/tasks/\d+">([^<]+)</a>', section.group(0)) if section else []


def test_both_kinds_of_decision_are_listed_and_nobody_elses(site):
    now = dt.datetime.now(dt.UTC)
    dave, mia = site.people["dave"], site.people["mia"]
    site.task("old-style", title="Approve the contract (old style)", assignee_id=site.people["bob"], status="awaiting_approval",
              approver={"kind": "role", "name": "sales_director"}, due_at=now + dt.timedelta(days=2))
    site.task("new-style", title="Approve a 15% discount", kind="approval", assignee_id=dave, due_at=now + dt.timedelta(days=1),
              subject={"of": "proposal", "task_id": 1})
    site.task("mias", title="Mia's own approval", kind="approval", assignee_id=mia, subject={"of": "proposal", "task_id": 1})
    site.task("done", title="Already decided", kind="approval", assignee_id=dave, status="done", outcome="approved",
              subject={"of": "proposal", "task_id": 1})
    assert waiting(site.client("dave").get("/").text) == ["Approve a 15% discount", "Approve the contract (old style)"]
    assert "Approve a 15% discount" not in waiting(site.client("mia").get("/").text)


def test_a_long_backlog_of_decisions_lists_a_page_of_them_soonest_first(site):
    now = dt.datetime.now(dt.UTC)
    for i in range(APPROVALS_SHOWN + 10):
        site.task(f"backlog-{i}", title=f"Backlog {i:03d}", assignee_id=site.people["bob"], status="awaiting_approval",
                  approver={"kind": "role", "name": "sales_director"}, due_at=now + dt.timedelta(hours=i + 1))
    shown = waiting(site.client("dave").get("/").text)
    assert shown == [f"Backlog {i:03d}" for i in range(APPROVALS_SHOWN)]
