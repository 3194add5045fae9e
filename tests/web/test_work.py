"""The task page, My work and the team view, as the people who use them read them (no browser; tests/web/test_look.py
checks them in Chromium, tests/web/test_journeys_team.py hands tasks over there)."""
from __future__ import annotations

import datetime as dt
import html
import re
import shutil
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from admin.demo import load_demo
from admin.deps import get_task_actions
from admin.web import tasklist
from admin.web.routes.work import ALERTS_SHOWN, APPROVALS_SHOWN
from engine.compiler import compile_model
from engine.loader import load
from forms.widgets import when_text
from runtime import recent, records
from runtime import tasks as task_service
from runtime.alertbox import my_alerts
from runtime.history import add_history
from runtime.schema import alerts, contact_history, group_members, tasks, users
from runtime.schema import metadata as platform
from runtime.taskactions import ActionRefused, TaskActions
from tests.conftest import CRM
from tests.web.work_seed import seed_work

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


class Site:
    """The CRM pack's demo data and the seeded work on SQLite; a logged-in client per user; staff actions through a
    stand-in for the process engine (below)."""

    def __init__(self, compiled, engine):
        self.compiled, self.engine = compiled, engine
        self.app = create_app(engine, compiled, None, secret_key="work-secret")
        self.app.dependency_overrides[get_task_actions] = lambda: Engineless(engine, compiled, None, "tailor")
        self.clients: dict[str, TestClient] = {}
        with engine.begin() as conn:
            self.people = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
            table = compiled.metadata.tables
            self.record = {t: dict(conn.execute(sa.select(table[t].c.title, table[t].c.id)).all()) for t in ("company", "person", "opportunity")}
            self.ids = seed_work(conn, compiled, self.people, self.record["opportunity"]["Acme Health – platform upgrade"],
                                 self.record["person"]["Jane Doe"], self.record["company"]["Globex Manufacturing"])
            conn.execute(users.update().where(users.c.username == "ann").values(time_zone="America/New_York"))

    def client(self, who: str) -> TestClient:
        if who not in self.clients:
            client = TestClient(self.app)
            page = client.get("/login")
            done = client.post("/login", data={"csrf_token": token(page.text), "username": who, "password": who}, follow_redirects=False)
            assert done.status_code == 303, f"{who} could not log in"
            self.clients[who] = client
        return self.clients[who]

    def task(self, key: str, **values) -> int:
        now = dt.datetime.now(dt.UTC)
        row = {"key": key, "workflow_id": f"wf-{key}", "process": "lead_follow_up", "step_id": "qualify", "title": key, "status": "open",
               "created_at": now, **values}
        with self.engine.begin() as conn:
            return conn.execute(tasks.insert().values(**row)).inserted_primary_key[0]


ENDED: set[str] = set()  # workflow ids whose process has ended, as the process engine would answer


class Engineless(TaskActions):
    """runtime.taskactions with the workflow update replaced by what its activity writes, and Temporal's update ids:
    a repeat of an update id does nothing again and gets the first answer."""

    seen: ClassVar[dict[str, dict]] = {}  # shared by every instance, as the one Temporal it stands in for
    calls: ClassVar[list[str]] = []

    async def _update(self, task, update, uid, action):
        type(self).calls.append(uid)
        if task["workflow_id"] in ENDED:
            raise ActionRefused("The process this task belongs to has ended.", "Conflict")
        if uid not in self.seen:
            with self.engine.begin() as conn:
                task_service.reassign_task(conn, task["id"], action.to_user, None, action.user_id, key=uid)
            self.seen[uid] = {"step": action.step, "assignee_id": action.to_user}
        return self.seen[uid]


@pytest.fixture(scope="module")
def demo_file(compiled, tmp_path_factory) -> Path:
    """The demo data once per module (with quick password hashes: the app verifies with each hash's own parameters)."""
    path = tmp_path_factory.mktemp("work") / "demo.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    load_demo(engine, compiled)
    quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with engine.begin() as conn:
        for uid, name in conn.execute(sa.select(users.c.id, users.c.username)).all():
            conn.execute(users.update().where(users.c.id == uid).values(password_hash=quick.hash(name)))
    engine.dispose()
    return path


@pytest.fixture
def site(compiled, demo_file, tmp_path):
    path = tmp_path / "work.db"
    shutil.copy(demo_file, path)
    Engineless.seen, Engineless.calls = {}, []
    ENDED.clear()
    return Site(compiled, sa.create_engine(f"sqlite:///{path}"))


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def visible(page: str) -> str:
    """The page's text as a person reads it: no tags, entities decoded, white space collapsed."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def part(page: str, heading_id: str) -> str:
    """The section (or form) labelled by the heading `heading_id`, as text."""
    found = re.search(rf'<(section|form)[^>]*aria-labelledby="{heading_id}".*?</\1>', page, re.DOTALL)
    assert found, f"no part labelled {heading_id}"
    return visible(found.group(0))


def steps(page: str) -> list[str]:
    """The entries of the process timeline, each as text."""
    timeline = re.search(r'<ol class="steps">(.*?)</ol>\s*</section>', page, re.DOTALL).group(1)
    return [visible(li) for li in re.findall(r'<li class="step.*?</li>\s*(?=<li class="step|$)', timeline, re.DOTALL)]


# -- the task page ------------------------------------------------------------------------


def test_the_task_page_names_people_and_records_and_shows_times_in_the_viewers_zone(site):
    page = site.client("ann").get(f"/tasks/{site.ids['chase']}")
    assert page.status_code == 200
    with site.engine.connect() as conn:
        due = conn.execute(sa.select(tasks.c.due_at).where(tasks.c.id == site.ids["chase"])).scalar()
    facts = visible(re.search(r'<div class="card facts">.*?</dl>', page.text, re.DOTALL).group(0))
    assert "Assigned to Ann Sales" in facts and "Group Sales" in facts
    assert f"Due {when_text(due, NEW_YORK)}" in facts  # Ann reads New York time
    assert when_text(due, ZoneInfo("UTC")) not in facts
    assert "Opportunity Acme Health – platform upgrade" in facts and "Started" in facts and "by Ann Sales" in facts
    assert re.search(r'href="/records/opportunity/\d+">Acme Health – platform upgrade</a>', page.text)
    assert "Lead follow-up" in visible(page.text)
    assert not re.search(r"\b\d{4}-\d\d-\d\dT\d\d:", visible(page.text)), "a raw ISO time on the page"


def test_the_timeline_shows_each_step_with_outcome_who_and_when_and_the_skipped_approval(site):
    page = site.client("ann").get(f"/tasks/{site.ids['chase']}").text
    entries = steps(page)
    assert [e.split(" Done")[0].split(" Skipped")[0].split(" This task")[0] for e in entries] == [
        "Qualify the enquiry: Acme Health – platform upgrade", "Send a proposal: Acme Health – platform upgrade",
        "Approve a 10% discount: Acme Health – platform upgrade", "Chase the proposal: Acme Health – platform upgrade"]
    qualify, proposal, approval, chase = entries
    assert "Done Bob Sales" in qualify and "Handed to Bob Sales · Mia Manager" in qualify
    assert "Skipped" in approval and "condition did not hold" in approval
    assert "This task" in chase and "With Ann Sales" in chase and "due " in chase
    # the earlier steps' data with the forms' labels and display values, never raw values or ids
    assert "Outcome Worth pursuing" in qualify and "qualified" not in qualify
    assert "Opportunity owner Bob Sales" in qualify and "Decision maker Jane Doe" in qualify and "Budget confirmed Yes" in qualify
    assert "Probability (%) 60" in qualify and "They compare us with one other supplier." in qualify
    assert "Proposal value £24,000.00" in proposal and "Stage now Proposal sent" in proposal and "Discount (%) 10" in proposal
    shown = re.findall(r"<dd>(.*?)</dd>", page, re.DOTALL)
    assert not {str(site.people["bob"]), str(site.record["person"]["Jane Doe"]), "qualified", "proposal", "True"} & set(shown)


def test_an_approval_round_shows_each_approvers_decision_and_the_reason(site):
    page = site.client("mia").get(f"/tasks/{site.ids['sent_back']}").text
    _qualify, proposal, approval = steps(page)
    assert "This task" in proposal and "Sent back to Bob Sales" in proposal
    assert "Proposal value £52,000.00" in proposal and "Stage now Already negotiating" in proposal  # what was sent, to revise
    assert "Rejected" in approval and "Dave Director: Rejected" in approval
    assert "Dave Director: Rejected" in approval and "20% is more than we give a first order. Offer 12% and free training." in approval
    assert "Mia Manager: No longer needed" in approval


def test_a_task_sent_back_starts_its_form_from_what_was_sent(site):
    page = site.client("bob").get(f"/tasks/{site.ids['sent_back']}").text
    form = re.search(r'<form method="post" action="/tasks/\d+/complete".*?</form>', page, re.DOTALL).group(0)
    assert 'name="proposal_value" type="text"' in form and 'value="52000.00"' in form
    assert re.search(r'<option value="negotiation" selected>Already negotiating</option>', form)


def test_the_page_has_one_comment_thread_with_who_said_what_and_when(site):
    page = site.client("ann").get(f"/tasks/{site.ids['chase']}").text
    assert page.count("<textarea") == 1 and page.count('action="/tasks/') - page.count('/complete"') == 1  # one box: comments
    thread = part(page, "comments-h")
    assert "Comments 2" in thread
    assert thread.index("Mia Manager") < thread.index("Ann Sales")  # oldest first
    assert "They asked for the case study too — send it with the chase." in thread
    with site.engine.connect() as conn:
        said = conn.execute(sa.select(contact_history.c.occurred_at).where(contact_history.c.key == "comment:seed-chase-c1")).scalar()
    assert when_text(said.replace(tzinfo=dt.UTC), NEW_YORK) in thread


def test_only_the_actions_the_viewer_may_take_are_offered(site):
    ann = site.client("ann").get(f"/tasks/{site.ids['chase']}").text
    assert "Complete task" in ann and "Hand it over" not in ann and "Claim it" not in ann
    mia = site.client("mia").get(f"/tasks/{site.ids['chase']}").text
    assert "Complete task" not in mia and "Hand it over" in mia and "only they complete it, unless you hand it over" in visible(mia)
    picker = re.search(r'<select id="to-user".*?</select>', mia, re.DOTALL).group(0)
    assert '<optgroup label="In Sales">' in picker and "Ann Sales (has it now)" in picker
    assert "Jane Doe" not in picker and "Raj Patel" not in picker  # customers' people never hold a staff task
    queued = site.task("queued", title="Call Northwind back", group_name="sales", entity="company",
                       record_id=site.record["company"]["Northwind Retail"])
    bob = site.client("bob").get(f"/tasks/{queued}").text
    assert "Claim it" in bob and "Nobody yet: waiting in the Sales queue" in visible(bob)
    done = site.client("bob").get(f"/tasks/{site.ids['qualify_done']}").text
    assert "Complete task" not in done and "Add a comment" not in done and "Finished" in visible(done)


def test_a_step_links_to_its_task_only_for_those_who_may_open_it(site):
    ann = site.client("ann").get(f"/tasks/{site.ids['chase']}").text
    assert f'href="/tasks/{site.ids["qualify_done"]}"' in ann  # Ann started the process: she may open its tasks
    sue = site.task("sue-own", title="Sue's", workflow_id="seed-chase", step_id="other", assignee_id=site.people["sue"])
    sue_page = site.client("sue").get(f"/tasks/{sue}").text
    assert "Qualify the enquiry: Acme Health – platform upgrade" in sue_page
    assert f'href="/tasks/{site.ids["qualify_done"]}"' not in sue_page  # Sue may not open Bob's task: no link to a 403


def test_the_starter_may_open_the_tasks_of_their_process_that_others_have(site):
    given = site.task("given", title="Send the contract to Acme", assignee_id=site.people["bob"], created_by=site.people["ann"],
                      due_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    ann = site.client("ann")
    started = part(ann.get("/").text, "given")
    assert "Send the contract to Acme" in started and "Bob Sales" in started
    page = ann.get(f"/tasks/{given}")
    assert page.status_code == 200 and "Complete task" not in page.text  # she sees it; Bob does it
    other = site.task("not-hers", title="Bob's own", assignee_id=site.people["bob"], created_by=site.people["bob"])
    assert ann.get(f"/tasks/{other}").status_code == 403


def test_a_wrong_task_number_is_not_found(site):
    ann = site.client("ann")
    assert [ann.get(p).status_code for p in ("/tasks/0", "/tasks/99999999", "/tasks/99999999999999999999")] == [404, 404, 404]
    assert ann.get("/tasks/abc").status_code in (404, 422)


# -- My work ------------------------------------------------------------------------------


def _week_end(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    local = now.astimezone(zone)
    return dt.datetime.combine(local.date() + dt.timedelta(days=7 - local.weekday()), dt.time(), tzinfo=zone)


@pytest.fixture
def sue_work(site):
    """Sue (support, Europe/London by the organisation) with work due at every distance, and a queue task."""
    now = dt.datetime.now(dt.UTC)
    zone = ZoneInfo("Europe/London")
    this_week = now + (_week_end(now, zone) - now) / 2
    sue = site.people["sue"]
    made = {
        "late2": site.task("late2", title="Very late", assignee_id=sue, due_at=now - dt.timedelta(days=2)),
        "late1": site.task("late1", title="A bit late", assignee_id=sue, due_at=now - dt.timedelta(hours=1)),
        "week": site.task("week", title="Due this week", assignee_id=sue, due_at=this_week),
        "queue": site.task("queue", title="In the support queue", group_name="support", due_at=now + dt.timedelta(days=30),
                           process="support_sla"),
        "later": site.task("later", title="Due next month", assignee_id=sue, due_at=now + dt.timedelta(days=40)),
        "none": site.task("none", title="No due date", assignee_id=sue),
        "waiting": site.task("waiting", title="Waiting for a director", assignee_id=sue, status="awaiting_approval",
                             approver={"kind": "role", "name": "sales_director"}),
        "bob": site.task("bobs", title="Bob's task", assignee_id=site.people["bob"], due_at=now - dt.timedelta(days=1)),
    }
    return made


def titles(section: str) -> list[str]:
    return re.findall(r'class="task-link">([^<]+)</a>', section)


def test_my_work_lists_overdue_first_then_this_week_then_later_with_counts(site, sue_work):
    page = site.client("sue").get("/").text
    sections = re.findall(r'<section aria-labelledby="s-(\w+)".*?</section>', page, re.DOTALL)
    assert sections == ["overdue", "week", "later"]
    overdue, week, later = (re.search(rf'<section aria-labelledby="s-{k}".*?</section>', page, re.DOTALL).group(0) for k in sections)
    assert titles(overdue) == ["Very late", "A bit late"] and "Overdue" in visible(overdue)
    assert titles(week) == ["Due this week"]
    assert titles(later) == ["In the support queue", "Due next month", "No due date"]  # by due, none last
    assert "Waiting in the Customer support queue Claim" in visible(later)
    tabs = visible(re.search(r'<nav class="due-tabs".*?</nav>', page, re.DOTALL).group(0))
    assert tabs == "All 6 Overdue 2 Due this week 1 Later 3"
    assert "6 tasks to do · 2 overdue" in visible(page)
    assert "Bob's task" not in page and "Waiting for a director" not in page


def test_my_work_filters_by_when_due_status_and_process_without_scripts(site, sue_work):
    sue = site.client("sue")
    overdue = sue.get("/?due=overdue").text
    assert titles(overdue) == ["Very late", "A bit late"] and re.search(r'aria-current="page"[^>]*>Overdue', overdue)
    assert titles(sue.get("/?due=week").text) == ["Due this week"]
    assert titles(sue.get("/?process=support_sla").text) == ["In the support queue"]
    assert titles(sue.get("/?status=awaiting_approval").text) == ["Waiting for a director"]
    assert len(titles(sue.get("/?status=all").text)) == 7
    # the tabs keep the other filters, and a filter of nothing says so
    page = sue.get("/?process=support_sla&due=overdue").text
    assert 'href="/?due=week&amp;process=support_sla"' in page and "Nothing overdue with these filters." in visible(page)
    odd = sue.get("/?due=tomorrow&status=%3Cscript%3E&process=nope")
    assert odd.status_code == 200 and len(titles(odd.text)) == 6
    notes = visible(odd.text)
    assert "“tomorrow” is not a due date filter" in notes and "“nope” is not a process" in notes and "<script>" not in odd.text


def test_my_work_with_nothing_to_do_says_so(site):
    page = site.client("raj")
    assert page.get("/").status_code == 403  # a customer's person: the portal, not My work
    lee = site.client("lee").get("/").text
    assert "Nothing assigned to you or waiting in your groups' queues" in visible(lee)


# -- the team view --------------------------------------------------------------------------


def team_rows(page: str) -> list[str]:
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.DOTALL)
    return [visible(r) for r in re.findall(r"<tr.*?</tr>", body.group(1), re.DOTALL)] if body else []


def test_the_team_view_shows_each_open_task_with_assignee_group_local_due_status_and_overdue(site, sue_work):
    page = site.client("mia").get("/work/team")
    assert page.status_code == 200
    rows = team_rows(page.text)
    # Mia manages sales: Ann's and Bob's tasks and the sales queue, not Sue's support work
    chase = next(r for r in rows if "Chase the proposal" in r)
    with site.engine.connect() as conn:
        due = conn.execute(sa.select(tasks.c.due_at).where(tasks.c.id == site.ids["chase"])).scalar()
    assert "Ann Sales" in chase and "Sales" in chase and when_text(due, ZoneInfo("Europe/London")) in chase and "Open" in chase
    bobs = next(r for r in rows if "Bob's task" in r)
    assert "Bob Sales" in bobs and "Overdue" in bobs
    assert rows.index(bobs) == 0  # overdue first
    assert not any("Very late" in r or "In the support queue" in r for r in rows)
    assert "Tick Bob&#39;s task" in page.text or "Tick Bob's task" in page.text  # every box has a name


def test_the_team_view_filters_by_assignee_group_and_overdue(site, sue_work):
    mia = site.client("mia")
    bob = mia.get(f"/work/team?assignee={site.people['bob']}").text
    assert team_rows(bob) and all("Bob Sales" in r for r in team_rows(bob))
    assert all("Overdue" in r for r in team_rows(mia.get("/work/team?overdue=1").text))
    support = team_rows(mia.get("/work/team?group=support").text)  # Mia may monitor tasks: any group
    assert {r.split(" Lead follow-up")[0].split(" Support")[0] for r in support} >= {"Very late", "In the support queue"}
    nobody = team_rows(mia.get("/work/team?group=support&assignee=nobody").text)
    assert len(nobody) == 1 and "In the support queue" in nobody[0] and "Nobody yet" in nobody[0]
    odd = mia.get("/work/team?group=nowhere&assignee=ann")
    assert odd.status_code == 200 and "“nowhere” is not one of your groups" in visible(odd.text)
    assert "“ann” is not someone on the team" in visible(odd.text)


def test_the_team_view_pages_and_a_wrong_page_number_is_read_sensibly(site):
    now = dt.datetime.now(dt.UTC)
    for n in range(tasklist.TEAM_PAGE + 7):
        site.task(f"many-{n:02d}", title=f"Call lead {n:02d}", assignee_id=site.people["ann"], due_at=now + dt.timedelta(days=10, hours=n))
    mia = site.client("mia")
    first = mia.get("/work/team").text
    total = len(team_rows(first))
    assert total == tasklist.TEAM_PAGE and "Page 1 of 2" in visible(first) and 'rel="next"' in first
    second = mia.get("/work/team?page=2").text
    assert "Page 2 of 2" in visible(second) and not set(team_rows(second)) & set(team_rows(first))
    beyond = mia.get("/work/team?page=99")
    assert beyond.status_code == 200 and "There is no page 99: this is the last page." in visible(beyond.text)
    assert team_rows(beyond.text) == team_rows(second)
    for wrong in ("0", "-1", "two", "1e3", "%00"):
        page = mia.get(f"/work/team?page={wrong}")
        assert page.status_code == 200 and team_rows(page.text) == team_rows(first) and "is not a page number" in visible(page.text)
    huge = mia.get("/work/team?page=99999999999999999999999")
    assert huge.status_code == 200 and "this is the last page" in visible(huge.text)


def test_the_team_view_is_for_managers_and_monitors_only(site):
    assert site.client("ann").get("/work/team").status_code == 403
    # a group manager without monitor_tasks sees their group's tasks, opens only the queue's, and hands none over
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "sue").values(roles=["staff"]))
        conn.execute(group_members.update().where(group_members.c.user_id == site.people["sue"]).values(manager=True))
    queued = site.task("support-q", title="Printer queue", group_name="support")
    held = site.task("support-lee", title="Lee's call", assignee_id=site.people["lee"])
    page = site.client("sue").get("/work/team").text
    assert {"Printer queue", "Lee's call"} <= {t for r in team_rows(page) for t in ("Printer queue", "Lee's call") if t in r}
    assert f'href="/tasks/{queued}"' in page and f'href="/tasks/{held}"' not in page
    assert 'action="/work/team/reassign"' not in page and 'name="task"' not in page
    assert "My team" in visible(site.client("sue").get("/").text)


# -- handing several tasks over at once ------------------------------------------------------


def team_form(client: TestClient, query: str = "") -> tuple[str, str]:
    page = client.get(f"/work/team{query}").text
    return token(page), re.search(r'name="request_id" value="([^"]+)"', page).group(1)


def holder(site: Site, task_id: int) -> int | None:
    with site.engine.connect() as conn:
        return conn.execute(sa.select(tasks.c.assignee_id).where(tasks.c.id == task_id)).scalar()


def test_several_tasks_are_handed_over_at_once_and_a_double_submission_does_it_once(site):
    mia = site.client("mia")
    picked = [site.ids["chase"], site.task("two", title="Second", assignee_id=site.people["ann"], entity="opportunity",
                                           record_id=site.ids["globex_opportunity"])]
    csrf, request_id = team_form(mia)
    form = {"csrf_token": csrf, "request_id": request_id, "task": [str(t) for t in picked], "to_user": str(site.people["bob"])}
    done = mia.post("/work/team/reassign", data=form)
    assert done.status_code == 200
    said = visible(done.text)
    assert "Bob Sales now has the 2 tasks you ticked." in said and "not handed over" not in said
    assert [holder(site, t) for t in picked] == [site.people["bob"]] * 2
    def entries() -> int:
        with site.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(contact_history)
                                .where(contact_history.c.summary.like("Task reassigned%"))).scalar()

    before, calls = entries(), len(Engineless.calls)
    again = mia.post("/work/team/reassign", data=form)  # the same form again: a double click, a reload
    assert again.status_code == 200 and "Bob Sales now has the 2 tasks you ticked." in visible(again.text)
    assert entries() == before and len(Engineless.calls) == calls
    # each update was keyed by the form's request id, so the process engine would answer a repeat with the first answer
    assert len(set(Engineless.calls)) == 2


def test_a_refused_task_among_several_is_reported_and_the_rest_are_done(site):
    mia = site.client("mia")
    ok = site.task("ok", title="Fine to move", assignee_id=site.people["ann"])
    finished = site.task("finished", title="Done meanwhile", assignee_id=site.people["ann"], status="done")
    ended = site.task("ended", title="Process ended", assignee_id=site.people["ann"])
    ENDED.add("wf-ended")
    csrf, request_id = team_form(mia)
    done = mia.post("/work/team/reassign", data={"csrf_token": csrf, "request_id": request_id, "to_user": str(site.people["bob"]),
                                                 "task": [str(ok), str(finished), str(ended), "99999999"]})
    assert done.status_code == 200
    said = visible(done.text)
    assert "Bob Sales now has 1 of the 4 tasks you ticked." in said
    assert "These were not handed over to Bob Sales:" in said
    assert "It is done already. Done meanwhile" in said and "The process this task belongs to has ended. Process ended" in said
    assert "There is no such task. a task that no longer exists" in said
    assert (holder(site, ok), holder(site, finished), holder(site, ended)) == (site.people["bob"], site.people["ann"], site.people["ann"])
    ticked = set(re.findall(r'name="task" value="(\d+)"[^>]*checked', done.text))
    assert ticked == {str(ended)}  # what was refused and is still open stays ticked, to try again
    assert f'<option value="{site.people["bob"]}" selected>Bob Sales</option>' in done.text


def test_a_deactivated_target_gets_nothing_and_each_task_says_why(site):
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "bob").values(active=False))
    mia = site.client("mia")
    picked = [site.ids["chase"], site.task("three", title="Third", assignee_id=site.people["ann"])]
    csrf, request_id = team_form(mia)
    page = mia.post("/work/team/reassign", data={"csrf_token": csrf, "request_id": request_id, "to_user": str(site.people["bob"]),
                                                 "task": [str(t) for t in picked]})
    assert page.status_code == 422
    said = visible(page.text)
    assert "Nothing was handed over to Bob Sales:" in said
    assert "Bob Sales is deactivated." in said and "Chase the proposal" in said and "Third" in said
    assert [holder(site, t) for t in picked] == [site.people["ann"]] * 2
    assert "Bob Sales" not in re.search(r'<select id="to-user".*?</select>', page.text, re.DOTALL).group(0)  # no longer offered


def test_bulk_reassign_asks_for_tasks_and_a_person_and_needs_its_token_and_the_permission(site):
    mia = site.client("mia")
    csrf, request_id = team_form(mia, f"?assignee={site.people['ann']}")
    none = mia.post("/work/team/reassign", data={"csrf_token": csrf, "request_id": request_id, "to_user": str(site.people["bob"]),
                                                 "assignee": str(site.people["ann"])})
    assert none.status_code == 422 and "Tick the tasks to hand over first." in visible(none.text)
    assert f'<option value="{site.people["ann"]}" selected>Ann Sales</option>' in none.text  # the view it was sent from
    nobody = mia.post("/work/team/reassign", data={"csrf_token": csrf, "request_id": request_id, "task": str(site.ids["chase"])})
    assert nobody.status_code == 422 and "Choose who should have the tasks." in visible(nobody.text)
    ghost = mia.post("/work/team/reassign", data={"csrf_token": csrf, "task": str(site.ids["chase"]), "to_user": "99999999"})
    assert ghost.status_code == 422 and "There is no such user." in visible(ghost.text)
    assert holder(site, site.ids["chase"]) == site.people["ann"]
    assert mia.post("/work/team/reassign", data={"task": str(site.ids["chase"]), "to_user": str(site.people["bob"])}).status_code == 403
    ann = site.client("ann")
    refused = ann.post("/work/team/reassign", data={"csrf_token": token(ann.get("/").text), "task": str(site.ids["chase"]),
                                                    "to_user": str(site.people["bob"])})
    assert refused.status_code == 403 and holder(site, site.ids["chase"]) == site.people["ann"]


# -- the queries on both databases -------------------------------------------------------------


def test_my_work_and_team_queries_agree_on_sqlite_and_postgresql(module_database, compiled):
    engine = module_database
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)  # a Wednesday: the week ends on Monday 7 Dec, 00:00 in London
    with engine.begin() as conn:
        ann = conn.execute(users.insert().values(username="ann", name="Ann", roles=["staff"], created_at=now)).inserted_primary_key[0]
        mia = conn.execute(users.insert().values(username="mia", name="Mia", roles=["sales_manager"], created_at=now)).inserted_primary_key[0]
        conn.execute(group_members.insert(), [{"group_name": "sales", "user_id": ann, "manager": False},
                                              {"group_name": "sales", "user_id": mia, "manager": True}])
        sunday_night, monday_morning = dt.datetime(2026, 12, 6, 23, 0, tzinfo=dt.UTC), dt.datetime(2026, 12, 7, 0, 30, tzinfo=dt.UTC)
        for key, due, who, group in [("late", now - dt.timedelta(hours=1), ann, None), ("sun", sunday_night, ann, None),
                                     ("mon", monday_morning, ann, None), ("q", None, None, "sales")]:
            conn.execute(tasks.insert().values(key=key, workflow_id=key, process="lead_follow_up", step_id="s", title=key, status="open",
                                               assignee_id=who, group_name=group, due_at=due, created_at=now))
    zone = ZoneInfo("Europe/London")
    with engine.connect() as conn:
        work = tasklist.my_work(conn, compiled, {"id": ann, "roles": ["staff"]}, tasklist.WorkFilters(), zone, now=now)
        assert work.counts == {"overdue": 1, "week": 1, "later": 2}
        assert [[t["title"] for t in s.tasks] for s in work.sections] == [["late"], ["sun"], ["mon", "q"]]
        team = tasklist.team_of(conn, compiled.model, {"id": mia, "roles": ["sales_manager"]})
        view = tasklist.team_tasks(conn, compiled, {"id": mia}, team, tasklist.TeamFilters(), zone, now=now, per=2)
        assert (view.total, view.overdue, view.pages, [t["title"] for t in view.tasks]) == (4, 1, 2, ["late", "sun"])
        assert tasklist.team_counts(conn, team, now=now) == (4, 1)


def test_a_customers_project_team_member_sees_the_steps_but_not_the_teams_data_or_comments(site):
    from runtime.schema import projects

    now = dt.datetime.now(dt.UTC)
    acme = site.record["company"]["Acme Health Ltd"]
    with site.engine.begin() as conn:
        joe = conn.execute(users.insert().values(username="joe", name="Joe Customer", roles=["project_team"], company_id=acme,
                                                 password_hash=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("joe"),
                                                 created_at=now)).inserted_primary_key[0]
        project = conn.execute(projects.insert().values(key="p-joe", title="Roll-out", entity="company", record_id=acme,
                                                        manager_id=site.people["pam"], created_at=now)).inserted_primary_key[0]
    theirs = site.task("joe-task", title="Confirm the go-live date", workflow_id="seed-chase", step_id="chase", assignee_id=joe,
                       project_id=project, entity="opportunity", record_id=site.record["opportunity"]["Acme Health – platform upgrade"])
    with site.engine.begin() as conn:
        task_service.add_comment(conn, theirs, site.people["pam"], "Internal: they are late with everything.", "c-internal")
        task_service.add_comment(conn, theirs, joe, "Monday works for us.", "c-joe")
    page = site.client("joe").get(f"/tasks/{theirs}")
    assert page.status_code == 200
    text = visible(page.text)
    assert "Qualify the enquiry: Acme Health – platform upgrade" in text  # the steps, as far as the process got
    assert "Worth pursuing" not in text and "Handed to" not in text  # not what the team recorded
    assert "Monday works for us." in text and "they are late with everything" not in text
    assert "customers do not see comments" not in text


def test_someone_who_may_monitor_tasks_but_is_in_no_group_sees_every_groups_tasks(site, sue_work):
    page = site.client("admin").get("/work/team")  # admin: monitor_tasks through the admin permission, in no group
    assert page.status_code == 200
    shown = " ".join(team_rows(page.text))
    assert "Very late" in shown and "Chase the proposal" in shown and "In the support queue" in shown
    assert '<option value="">Every group</option>' in page.text and 'value="all"' not in page.text
    site.task("orphan", title="Nobody's task")  # no assignee, no group: only a monitor would ever see it
    assert "Nobody's task" in " ".join(team_rows(site.client("admin").get("/work/team").text))
    assert "Nobody's task" not in " ".join(team_rows(site.client("mia").get("/work/team?group=sales").text))


# -- Waiting for my approval: both kinds of decision, a page of them ---------------------------------


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


# -- My customers and my alerts ------------------------------------------------------------------------


def customers(page: str) -> list[str]:
    """The entries of My customers, each as text (title, then the entity and how the viewer deals with it)."""
    section = re.search(r'<section aria-labelledby="recs">.*?</section>', page, re.DOTALL).group(0)
    return [visible(li) for li in re.findall(r"<li>.*?</li>", section, re.DOTALL)]


def test_my_customers_are_what_i_touched_work_on_or_own_latest_first_and_not_anybody_elses(site):
    now = dt.datetime.now(dt.UTC)
    london = ZoneInfo("Europe/London")
    company = site.record["company"]
    sue, bob = site.people["sue"], site.people["bob"]
    with site.engine.begin() as conn:
        add_history(conn, "company", company["Northwind Retail"], "note", "Called about the renewal", None, sue,
                    at=now - dt.timedelta(days=2))
        add_history(conn, "company", company["Acme Health Ltd"], "note", "Bob's call", None, bob, at=now)  # Bob's, not Sue's
    given = now - dt.timedelta(hours=1)
    site.task("sue-globex", title="Check the delivery", assignee_id=sue, entity="company", record_id=company["Globex Manufacturing"],
              created_at=given)
    site.task("sue-done", title="Long done", assignee_id=sue, status="done", entity="company", record_id=company["Acme Health Ltd"])
    shown = customers(site.client("sue").get("/").text)
    assert shown[:2] == [f"Globex Manufacturing Company · your open task since {when_text(given, london)}",
                         f"Northwind Retail Company · last dealt with {when_text(now - dt.timedelta(days=2), london)}"]
    assert shown[2].startswith("#2 Users cannot log in after the update Support request · last dealt with")  # the demo's reply
    assert not any("Acme Health Ltd" in c for c in shown)  # Bob's call and a task Sue finished long ago are not hers
    # what Ann owns (the CRM pack's owner fields: a company's account manager, an opportunity's owner), by its field's label
    ann = customers(site.client("ann").get("/").text)
    assert any(c.startswith("Acme Health Ltd Company · Account manager: you · changed ") for c in ann)
    assert any(c.startswith("Globex – sensors Opportunity · Owner: you · changed ") for c in ann)
    assert not any("Northwind Retail" in c for c in ann)  # Bob's company
    assert len(ann) <= recent.SHOWN


def test_my_customers_with_nothing_of_mine_says_so_and_leads_to_the_directory(site):
    page = site.client("lee").get("/").text
    section = re.search(r'<section aria-labelledby="recs">.*?</section>', page, re.DOTALL).group(0)
    assert "No customers of yours yet" in visible(section) and not customers(page)
    assert '<a href="/directory/company">Companies</a>' in section and '<a href="/records/company/new">add a new company</a>' in section


def test_my_own_alert_shows_when_hundreds_of_others_are_newer(site):
    now = dt.datetime.now(dt.UTC)
    bob, mia = site.people["bob"], site.people["mia"]
    task = site.ids["chase"]
    with site.engine.begin() as conn:
        conn.execute(alerts.insert(), [{"key": f"bob-{i}", "task_id": task, "level": 1, "recipients": [bob], "message": f"Bob's alert {i}",
                                        "raised_at": now - dt.timedelta(minutes=i)} for i in range(250)])
        conn.execute(alerts.insert().values(key="mia", task_id=task, level=2, recipients=[bob, mia], message="The chase is two days late",
                                            raised_at=now - dt.timedelta(days=1)))
        conn.execute(alerts.insert().values(key="mia-seen", task_id=task, level=1, recipients=[mia], message="Seen already", raised_at=now,
                                            acknowledged_at=now, acknowledged_by=mia))
    page = site.client("mia").get("/").text
    mine = part(page, "al")
    assert "The chase is two days late" in mine and "Bob's alert" not in mine and "Seen already" not in mine
    assert f"Raised {when_text(now - dt.timedelta(days=1), ZoneInfo('Europe/London'))}" in mine
    assert "· 1 alert" in visible(page) and '<a href="/alerts">All alerts</a>' in page
    page = site.client("bob").get("/").text
    bobs = part(page, "al")
    assert bobs.count("Acknowledge") == ALERTS_SHOWN and "Bob's alert 0 " in bobs and "Bob's alert 10 " not in bobs  # the newest
    assert f"The {ALERTS_SHOWN} newest of 251: {251 - ALERTS_SHOWN} more on" in bobs and '<a href="/alerts">the alerts page</a>' in page
    assert "· 251 alerts" in visible(page)


def test_my_customers_and_my_alerts_agree_on_sqlite_and_postgresql(module_database, compiled):
    engine = module_database
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:
        ann, bob = (conn.execute(users.insert().values(username=u, name=u.title(), roles=["staff"], created_at=now)).inserted_primary_key[0]
                    for u in ("ann-db", "bob-db"))
        made = {name: records.create_record(conn, compiled, "company", {"name": name, **({"owner": ann} if name == "Owned" else {})},
                                            None, at=now - dt.timedelta(days=5)).id for name in ("Owned", "Touched", "Tasked", "Bobs", "Gone")}
        add_history(conn, "company", made["Touched"], "note", "Called", None, ann, at=now - dt.timedelta(days=1))
        add_history(conn, "company", made["Bobs"], "note", "Called", None, bob, at=now)
        add_history(conn, "company", made["Gone"], "note", "Called", None, ann, at=now)
        records.delete_record(conn, compiled, "company", made["Gone"], bob)
        conn.execute(tasks.insert().values(key="t", workflow_id="t", process="p", step_id="s", title="t", status="open", assignee_id=ann,
                                           entity="company", record_id=made["Tasked"], created_at=now - dt.timedelta(hours=2)))
        conn.execute(alerts.insert(), [{"key": f"a{i}", "level": 1, "recipients": who, "message": f"alert {i}", "raised_at": now - dt.timedelta(minutes=i)}
                                       for i, who in enumerate([[bob], [bob, ann], [ann], [bob], [ann]] + [[ann]] * 12)])
    with engine.connect() as conn:
        dealt = recent.dealt_with(conn, compiled, ann, compiled.model.entities)
        assert [(d.title, d.how) for d in dealt] == [("Tasked", "task"), ("Touched", "touched"), ("Owned", "owner")]
        shown, total = my_alerts(conn, ann, ALERTS_SHOWN)
        assert [a["message"] for a in shown] == ["alert 1", "alert 2", "alert 4", *(f"alert {i}" for i in range(5, 12))]
        assert total == 15 and my_alerts(conn, bob, ALERTS_SHOWN)[1] == 3
