"""The alerts inbox as the people who use it read it: whose alerts it lists (runtime.alertbox: sent to me, my groups'
tasks, my projects' tasks; all of them with `set_alerts`), however many alerts other people have; its pages and tabs;
acknowledging by the same rule. The CRM pack's demo site of tests/web/test_work.py, with people who manage without
the `set_alerts` permission (the demo's managers all have it)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from runtime import alertbox
from runtime.schema import alerts, group_members, projects, tasks, users
from runtime.schema import metadata as platform
from tests.web import test_work as work
from tests.web.test_work import token, visible

compiled, demo_file, site = work.compiled, work.demo_file, work.site  # the demo site's fixtures
QUICK = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def person(site, username: str, name: str, roles=("staff",)) -> int:
    with site.engine.begin() as conn:
        made = conn.execute(users.insert().values(username=username, name=name, roles=list(roles), password_hash=QUICK.hash(username),
                                                  created_at=dt.datetime.now(dt.UTC))).inserted_primary_key[0]
    site.people[username] = made
    return made


def raise_alerts(site, task_id: int, recipients: list[int], messages: list[str], at: dt.datetime, **values) -> None:
    """Alerts on the task, the first message raised at `at`, each next one a minute earlier."""
    with site.engine.begin() as conn:
        conn.execute(alerts.insert(), [{"key": f"{task_id}-{m}", "task_id": task_id, "level": 1, "recipients": recipients, "message": m,
                                        "raised_at": at - dt.timedelta(minutes=i), **values} for i, m in enumerate(messages)])


def messages(page: str) -> list[str]:
    """The alerts the inbox lists, by their message (the first cell of each row)."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.DOTALL)
    return [visible(m).rsplit(" Level ", 1)[0] for m in re.findall(r"<tr[^>]*><td>(.*?)</td>", body.group(1), re.DOTALL)] if body else []


def pager(page: str) -> str:
    found = re.search(r'<nav aria-label="Pages" class="pager">.*?</nav>', page, re.DOTALL)
    return visible(found.group(0)) if found else ""


@pytest.fixture
def crowded(site):
    """Gus manages the field group (without `set_alerts`), Pia manages a project (likewise), Ann gets one alert, Nia
    nothing: each has one alert a day old, under 350 newer alerts sent to Bob."""
    now = dt.datetime.now(dt.UTC)
    gus, pia, nia = person(site, "gus", "Gus Field"), person(site, "pia", "Pia Projects"), person(site, "nia", "Nia New")
    ann, bob = site.people["ann"], site.people["bob"]
    with site.engine.begin() as conn:
        conn.execute(group_members.insert().values(group_name="field", user_id=gus, manager=True))
        conn.execute(group_members.insert().values(group_name="field", user_id=nia, manager=False))  # a member, not a manager
        project = conn.execute(projects.insert().values(key="p-roll", title="Roll-out", manager_id=pia,
                                                        created_at=now)).inserted_primary_key[0]
    field = site.task("field-visit", title="Visit the site", group_name="field")
    rollout = site.task("rollout", title="Plan the roll-out", assignee_id=bob, project_id=project)
    anns = site.task("anns", title="Call back Acme", assignee_id=ann)
    bobs = site.task("bobs", title="Bob's backlog", assignee_id=bob)
    raise_alerts(site, bobs, [bob], [f"Bob's alert {i:03d}" for i in range(350)], now)
    day_ago = now - dt.timedelta(days=1)
    raise_alerts(site, field, [], ["The site visit is late"], day_ago)
    raise_alerts(site, rollout, [], ["The roll-out plan is late"], day_ago)
    raise_alerts(site, anns, [ann], ["Ann's call back is late"], day_ago)
    return {"field": field, "rollout": rollout, "anns": anns, "bobs": bobs}


def test_a_manager_and_a_recipient_see_their_alerts_under_hundreds_of_somebody_elses(site, crowded):
    for who, theirs in [("gus", "The site visit is late"), ("pia", "The roll-out plan is late"), ("ann", "Ann's call back is late")]:
        page = site.client(who).get("/alerts")
        assert page.status_code == 200
        assert messages(page.text) == [theirs], who  # on page 1, and nobody else's
        assert "1 not yet acknowledged" in visible(page.text) and "1–1 of 1" in pager(page.text)
    everyone = site.client("mia").get("/alerts").text  # set_alerts: all of them, the newest first
    assert messages(everyone)[:2] == ["Bob's alert 000", "Bob's alert 001"] and pager(everyone) == "1–50 of 353 Next"


def test_someone_who_manages_nothing_and_gets_no_alerts_is_told_what_alerts_are(site, crowded):
    page = site.client("nia").get("/alerts")  # a member of the field group, not its manager
    assert page.status_code == 200 and messages(page.text) == []
    text = visible(page.text)
    assert "No alerts for you. When a task passes its deadline" in text and "The site visit is late" not in text
    assert pager(page.text) == "" and "Acknowledged" not in text


def test_the_inbox_is_read_fifty_at_a_time_and_a_wrong_page_number_is_not_an_error(site, crowded):
    bob = site.client("bob")
    first = bob.get("/alerts").text
    assert messages(first) == [f"Bob's alert {i:03d}" for i in range(50)]
    assert pager(first) == "1–50 of 350 Next" and 'href="/alerts?show=open&amp;page=2" rel="next"' in first
    second = bob.get("/alerts?page=2").text
    assert messages(second)[0] == "Bob's alert 050" and pager(second) == "51–100 of 350 Previous Next"
    last = bob.get("/alerts?page=7").text
    assert messages(last)[-1] == "Bob's alert 349" and pager(last) == "301–350 of 350 Previous"
    for bad in ("0", "-1", "abc", "", "1.5", "%20"):  # unreadable: the first page
        page = bob.get(f"/alerts?page={bad}")
        assert page.status_code == 200 and messages(page.text)[0] == "Bob's alert 000", bad
    for past in ("8", "99999999999999999999999"):  # past the end: the last page, saying so
        page = bob.get(f"/alerts?page={past}")
        assert page.status_code == 200 and messages(page.text)[-1] == "Bob's alert 349", past
        assert f"There is no page {past[:12]}: these alerts fill 7 pages. This is the last one" in visible(page.text)
        assert '<a href="/alerts?show=open&amp;page=1">go to the first page</a>' in page.text
    assert bob.get("/alerts?show=nonsense").status_code == 200


def test_open_alerts_come_first_and_the_tabs_split_open_from_acknowledged(site, crowded):
    now = dt.datetime.now(dt.UTC)
    ann = site.people["ann"]
    raise_alerts(site, crowded["anns"], [ann], ["Seen this morning"], now, acknowledged_at=now, acknowledged_by=ann)
    raise_alerts(site, crowded["anns"], [ann], ["Seen last week"], now - dt.timedelta(days=7), acknowledged_at=now, acknowledged_by=ann)
    client = site.client("ann")
    assert messages(client.get("/alerts").text) == ["Ann's call back is late"]  # open, the default
    seen = client.get("/alerts?show=acknowledged").text
    assert messages(seen) == ["Seen this morning", "Seen last week"] and 'aria-current="page">Acknowledged' in seen
    assert messages(client.get("/alerts?show=all").text) == ["Ann's call back is late", "Seen this morning", "Seen last week"]
    assert "Open 1 Acknowledged 2 All 3" in visible(seen)


def test_acknowledging_follows_the_same_rule_and_leads_back_to_the_inbox(site, crowded):
    with site.engine.connect() as conn:
        field_alert = conn.execute(sa.select(alerts.c.id).where(alerts.c.message == "The site visit is late")).scalar_one()
        roll_alert = conn.execute(sa.select(alerts.c.id).where(alerts.c.message == "The roll-out plan is late")).scalar_one()
    for stranger in ("ann", "nia", "bob"):  # not sent to them, not their group's task, not their project
        client = site.client(stranger)
        refused = client.post(f"/alerts/{field_alert}/acknowledge", data={"csrf_token": token(client.get("/alerts").text)})
        assert refused.status_code == 403, stranger
    pia = site.client("pia")
    assert pia.post(f"/alerts/{field_alert}/acknowledge", data={"csrf_token": token(pia.get("/alerts").text)}).status_code == 403
    assert pia.post("/alerts/99999999/acknowledge", data={"csrf_token": token(pia.get("/alerts").text)}).status_code == 404
    done = pia.post(f"/alerts/{roll_alert}/acknowledge", data={"csrf_token": token(pia.get("/alerts").text), "show": "open", "page": "1"},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/alerts?show=open"
    after = pia.get(done.headers["location"]).text
    assert "Alert acknowledged." in after and messages(after) == [] and "No open alerts" in visible(after)
    assert messages(pia.get("/alerts?show=acknowledged").text) == ["The roll-out plan is late"]
    gus = site.client("gus")
    page = gus.get("/alerts").text
    form = re.search(rf'<form method="post" action="/alerts/{field_alert}/acknowledge".*?</form>', page, re.DOTALL).group(0)
    data = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form))
    assert gus.post(f"/alerts/{field_alert}/acknowledge", data=data, follow_redirects=False).headers["location"] == "/alerts?show=open"
    assert messages(gus.get("/alerts?show=all").text) == ["The site visit is late"] and "All acknowledged" in visible(gus.get("/alerts").text)


# -- the rule on both databases -----------------------------------------------------------------


def test_whose_alerts_agree_on_sqlite_and_postgresql(module_database, compiled):
    engine = module_database
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:
        gus, pia, ann, bob = (conn.execute(users.insert().values(username=f"{u}-rule", name=u, roles=["staff"], created_at=now)).inserted_primary_key[0]
                              for u in ("gus", "pia", "ann", "bob"))
        conn.execute(group_members.insert(), [{"group_name": "field", "user_id": gus, "manager": True},
                                              {"group_name": "field", "user_id": ann, "manager": False}])
        project = conn.execute(projects.insert().values(key="p-rule", title="P", manager_id=pia, created_at=now)).inserted_primary_key[0]

        def task(key, **values):
            return conn.execute(tasks.insert().values(key=key, workflow_id=key, process="p", step_id="s", title=key, status="open",
                                                      created_at=now, **values)).inserted_primary_key[0]

        field, proj, plain = task("field", group_name="field"), task("proj", project_id=project), task("plain", assignee_id=bob)
        rows = [("bob", plain, [bob], None)] * 60 + [("field", field, [], None), ("proj", proj, [], None), ("ann", plain, [ann], None),
                                                     ("seen", field, [ann], now)]
        conn.execute(alerts.insert(), [{"key": f"k{i}", "task_id": t, "level": 1, "recipients": r, "message": m,
                                        "raised_at": now - dt.timedelta(minutes=i), "acknowledged_at": seen}
                                       for i, (m, t, r, seen) in enumerate(rows)])
    with engine.connect() as conn:
        def shown(user, show="all", see_all=False, **kw):
            return [a["message"] for a in alertbox.inbox(conn, user, see_all, show, **kw).rows]

        assert shown(gus) == ["field", "seen"] and shown(pia) == ["proj"] and shown(ann) == ["ann", "seen"]
        assert shown(gus, "open") == ["field"] and shown(gus, "acknowledged") == ["seen"]
        found = alertbox.inbox(conn, bob, False, "open", 3)
        assert (found.total, found.pages, found.page, found.first, found.last, len(found.rows)) == (60, 2, 2, 51, 60, 10)
        assert found.asked == 3 and (found.open, found.acknowledged) == (60, 0)
        everyone = alertbox.inbox(conn, pia, True, "all")
        assert (everyone.total, everyone.open, everyone.acknowledged) == (64, 63, 1) and everyone.rows[0]["message"] == "bob"
        field_alert = conn.execute(sa.select(alerts.c.id).where(alerts.c.message == "field")).scalar_one()
        assert [alertbox.may_see(conn, u, False, field_alert) for u in (gus, pia, ann, bob)] == [True, False, False, False]
        assert alertbox.may_see(conn, bob, True, field_alert) is True and alertbox.may_see(conn, bob, False, 10**9) is None


def test_the_api_lists_the_callers_alerts_under_hundreds_of_somebody_elses(site, crowded):
    from admin.access import new_token

    secret, digest = new_token()
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == site.people["ann"]).values(api_token_hash=digest))
    raise_alerts(site, crowded["bobs"], [site.people["bob"]], [f"Bob's other alert {i:03d}" for i in range(200)], dt.datetime.now(dt.UTC))
    got = site.client("ann").get("/api/alerts", headers={"Authorization": f"Bearer {secret}"})  # 550 newer alerts are Bob's
    assert got.status_code == 200
    assert [a["message"] for a in got.json()] == ["Ann's call back is late"]
