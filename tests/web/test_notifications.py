"""The bell and the notifications page without a browser: the count in the header, the list (newest first, pages,
local times), opening one, marking read, another user's notification, and the live stream on a real server."""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import notifications as notes, records
from runtime.schema import metadata as platform, notifications, tasks, users
from tests.conftest import CRM, ROOT, free_port

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def site(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'web.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # fast: the app verifies with the hash's own parameters
    ids = {}
    with engine.begin() as conn:
        company = records.create_record(conn, compiled, "company", {"name": "Acme", "status": "customer"}, None)
        ids["company"] = company.id
        for name, roles, zone in [("ann", ["staff"], "Europe/Paris"), ("bob", ["staff"], None), ("jane", ["portal"], None)]:
            ids[name] = conn.execute(users.insert().values(username=name, name=f"{name.title()} Example", email=f"{name}@example.com",
                                                           roles=roles, time_zone=zone, password_hash=hasher.hash(name),
                                                           created_at=T0, company_id=company.id if name == "jane" else None)
                                     .returning(users.c.id)).scalar_one()
    return engine, create_app(engine, compiled, None, secret_key="test-secret"), ids


def token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def logged_in(app, who: str) -> TestClient:
    client = TestClient(app)
    response = client.post("/login", data={"csrf_token": token(client.get("/login").text), "username": who, "password": who},
                           follow_redirects=False)
    assert response.status_code == 303
    return client


def bell(html: str) -> str:
    """What the bell says to a screen reader, e.g. 'Notifications, 3 unread' (its number badge is hidden when 0)."""
    link = re.search(r'<a class="bell".*?</a>', html, re.S).group(0)
    words = re.search(r'<span class="visually-hidden">Notifications<span class="bell-words">([^<]*)</span>', link).group(1)
    badge = re.search(r'<span class="bell-count" aria-hidden="true"( hidden)?>([^<]*)</span>', link)
    assert bool(words) != bool(badge.group(1)), "the badge shows exactly when there is something unread"
    return "Notifications" + words


def add(engine, user_id: int, n: int, *, start: dt.datetime = T0, link: str | None = "/records/company/1",
        text: str = "Notification") -> None:
    with engine.begin() as conn:
        for i in range(n):
            conn.execute(notifications.insert().values(key=f"t{user_id}:{i}:{start.isoformat()}", user_id=user_id, kind="task",
                                                       text=f"{text} {i + 1}", link=link, created_at=start + dt.timedelta(minutes=i)))


def test_the_bell_shows_the_unread_count_to_staff_and_to_a_customers_people(site):
    engine, app, ids = site
    ann, jane = logged_in(app, "ann"), logged_in(app, "jane")
    assert bell(ann.get("/").text) == "Notifications"  # nothing unread: no number
    add(engine, ids["ann"], 3)
    add(engine, ids["jane"], 1, link="/portal")
    add(engine, ids["bob"], 5)
    assert bell(ann.get("/").text) == "Notifications, 3 unread"
    assert bell(jane.get("/portal").text) == "Notifications, 1 unread"
    assert ann.get("/notifications/count").json() == {"unread": 3}
    add(engine, ids["ann"], 120, start=T0 + dt.timedelta(days=1))
    page = ann.get("/").text
    assert bell(page) == "Notifications, 123 unread" and '<span class="bell-count" aria-hidden="true">99+</span>' in page
    assert 'src="/static/notify.js"' in page  # the live count, loaded where the bell is
    assert 'class="bell"' not in TestClient(app).get("/login").text  # nobody logged in: no bell


def test_the_list_is_newest_first_in_the_viewers_time_with_unread_marked_and_links_that_mark_read(site):
    engine, app, ids = site
    add(engine, ids["ann"], 2)
    add(engine, ids["ann"], 1, start=T0 + dt.timedelta(hours=2), link=None, text="A note without a link")
    ann = logged_in(app, "ann")
    with engine.begin() as conn:
        first = conn.execute(sa.select(notifications.c.id).where(notifications.c.text == "Notification 1")).scalar_one()
        notes.mark_read(conn, ids["ann"], first)
    html = ann.get("/notifications").text
    items = re.findall(r'<li class="notification( unread)?">(.*?)</li>', html, re.S)
    texts = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip() for _, body in items]
    # Ann reads Paris time (UTC+1 in March); the notification without a link is text only
    assert [t.split(" Mark as read")[0] for t in texts] == [
        "New Task A note without a link 1 Mon 2 Mar, 12:00", "New Task Notification 2 Mon 2 Mar, 10:01",
        "Task Notification 1 Mon 2 Mar, 10:00"]
    assert [bool(u) for u, _ in items] == [True, True, False]
    assert html.count('action="/notifications/') - html.count("read-all") == 2  # 'mark as read' on the unread ones only
    assert "2 unread of 3" in html and "Mark all as read" in html
    second = re.search(r'href="/notifications/(\d+)/open">Notification 2<', html).group(1)
    opened = ann.get(f"/notifications/{second}/open", follow_redirects=False)
    assert (opened.status_code, opened.headers["location"]) == (303, "/records/company/1")
    assert ann.get("/notifications/count").json() == {"unread": 1}


def test_mark_read_and_mark_all_read_need_the_forms_token_and_keep_the_page(site):
    engine, app, ids = site
    add(engine, ids["ann"], 30)
    ann = logged_in(app, "ann")
    html = ann.get("/notifications?page=2").text
    one = re.search(r'action="/notifications/(\d+)/read"', html).group(1)
    assert ann.post(f"/notifications/{one}/read", data={"csrf_token": "forged"}).status_code == 403
    done = ann.post(f"/notifications/{one}/read", data={"csrf_token": token(html), "page": "2"}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/notifications?page=2")
    assert "Marked as read." in ann.get("/notifications?page=2").text
    assert ann.get("/notifications/count").json() == {"unread": 29}
    assert ann.post("/notifications/read-all", data={"csrf_token": "forged"}).status_code == 403
    page = ann.post("/notifications/read-all", data={"csrf_token": token(html)})
    assert "Marked 29 notifications as read." in page.text and bell(page.text) == "Notifications"
    again = ann.post("/notifications/read-all", data={"csrf_token": token(html)})
    assert "Nothing was unread." in again.text and "Mark all as read" not in again.text


def test_pages_of_25_and_a_wrong_page_says_how_many_there_are(site):
    engine, app, ids = site
    ann = logged_in(app, "ann")
    empty = ann.get("/notifications")
    assert empty.status_code == 200 and "No notifications yet" in empty.text and "@ann" in empty.text
    add(engine, ids["ann"], 30)
    first, second = ann.get("/notifications").text, ann.get("/notifications?page=2").text
    assert first.count('<li class="notification') == 25 and second.count('<li class="notification') == 5
    assert "Notification 30<" in first and "Notification 5<" in second and "Notification 6<" not in second
    assert 'href="/notifications?page=2" rel="next">Older' in first and 'rel="prev">Newer' in second
    for wrong in ("3", "0", "-1", "abc", "99999999999999999999", "２"):
        response = ann.get("/notifications", params={"page": wrong})
        assert response.status_code == 404, wrong
        assert "they fill 2 pages" in response.text


def test_another_users_notification_by_id_is_not_found(site):
    engine, app, ids = site
    add(engine, ids["bob"], 1, link="/tasks/1")
    with engine.connect() as conn:
        bobs = conn.execute(sa.select(notifications.c.id)).scalar_one()
    ann = logged_in(app, "ann")
    csrf = token(ann.get("/notifications").text)
    for response in (ann.get(f"/notifications/{bobs}/open", follow_redirects=False),
                     ann.post(f"/notifications/{bobs}/read", data={"csrf_token": csrf}),
                     ann.get("/notifications/abc/open"), ann.get(f"/notifications/{2**70}/open"),
                     ann.post(f"/notifications/{2**70}/read", data={"csrf_token": csrf})):
        assert response.status_code == 404
        assert "Notification 1" not in response.text
    with engine.connect() as conn:
        assert notes.unread_count(conn, ids["bob"]) == 1  # Bob's stays unread


def test_opening_a_task_notification_after_the_task_moved_on_leads_to_its_record_saying_why(site):
    engine, app, ids = site
    with engine.begin() as conn:
        task = conn.execute(tasks.insert().values(key="t", workflow_id="w", process="p", step_id="s", title="Call Acme back",
                                                  entity="company", record_id=ids["company"], assignee_id=ids["bob"], status="open",
                                                  created_at=T0).returning(tasks.c.id)).scalar_one()
        notes.notify(conn, "created", [ids["ann"]], "task", "New task for you: Call Acme back", f"/tasks/{task}")
        notes.notify(conn, "outside", [ids["ann"]], "task", "Somewhere else", "//example.com/x")
        notes.notify(conn, "missing", [ids["ann"]], "task", "A task since removed", "/tasks/999999")
        mine = dict(conn.execute(sa.select(notifications.c.text, notifications.c.id)).all())
    ann = logged_in(app, "ann")
    moved = ann.get(f"/notifications/{mine['New task for you: Call Acme back']}/open", follow_redirects=False)
    assert moved.headers["location"] == f"/records/company/{ids['company']}"
    said = "“Call Acme back” is now with Bob Example, so you cannot open it any more. Here is its record."
    assert said in ann.get(moved.headers["location"]).text
    outside = ann.get(f"/notifications/{mine['Somewhere else']}/open", follow_redirects=False)
    assert outside.headers["location"] == "/notifications"  # never a link out of the site
    gone = ann.get(f"/notifications/{mine['A task since removed']}/open")
    assert "That task no longer exists." in gone.text
    with engine.begin() as conn:
        conn.execute(tasks.update().values(assignee_id=ids["ann"]))
    back = ann.get(f"/notifications/{mine['New task for you: Call Acme back']}/open", follow_redirects=False)
    assert back.headers["location"] == f"/tasks/{task}"  # hers again: straight to the task


# -- the live count on a real server -----------------------------------------------------------------------------

@pytest.fixture
def served(site):
    engine, app, ids = site
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.05)
    yield engine, app, ids, f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=15)


async def _events(response: httpx.Response):
    """(event, data) of each Server-Sent Event; comments (keep-alives) are skipped."""
    event = data = None
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data is not None:
            yield event, data
            event = data = None


def test_the_stream_sends_the_count_and_each_change_and_ends_when_the_page_goes(served):
    engine, app, ids, base = served
    add(engine, ids["ann"], 2)
    cookies = dict(logged_in(app, "ann").cookies)

    async def scenario():
        async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=10) as client:
            async with client.stream("GET", "/notifications/stream") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["cache-control"] == "no-cache"
                events = _events(response)
                assert await anext(events) == ("unread", "2")
                assert app.state.unread_watch.pages == 1
                with engine.begin() as conn:  # as the worker writes it: another process, the same database
                    notes.notify(conn, "new", [ids["ann"], ids["bob"]], "task", "New", None)
                assert await asyncio.wait_for(anext(events), 2) == ("unread", "3")
                html = (await client.get("/notifications")).text
                await client.post("/notifications/read-all", data={"csrf_token": token(html)})
                assert await asyncio.wait_for(anext(events), 2) == ("unread", "0")
        for _ in range(50):  # the browser went: the page stops watching
            if app.state.unread_watch.pages == 0:
                break
            await asyncio.sleep(0.05)
        assert app.state.unread_watch.pages == 0

    asyncio.run(scenario())


def test_the_stream_needs_a_session_and_watches_nothing_without_one(served):
    _, app, _, base = served

    async def scenario():
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            response = await client.get("/notifications/stream")
            assert (response.status_code, response.headers["location"]) == (303, "/login?next=/notifications/stream")
        async with httpx.AsyncClient(base_url=base, timeout=10, cookies={"tailor_session": "forged"}) as client:
            assert (await client.get("/notifications/stream")).status_code == 303
        assert app.state.unread_watch.pages == 0

    asyncio.run(scenario())


SERVE = """
import asyncio, sys
import sqlalchemy as sa
from admin.app import create_app
from admin.run import serve_web
from engine.compiler import compile_model
from engine.loader import load
from tests.conftest import CRM
app = create_app(sa.create_engine(sys.argv[1]), compile_model(load([CRM])), None, secret_key="test-secret")
asyncio.run(serve_web(app, "127.0.0.1", int(sys.argv[2]), None))
"""


def test_stopping_the_server_ends_open_streams_at_once_instead_of_waiting_for_them(site, tmp_path):
    """`tailor run` stopped with a page open: its stream ends at once (before uvicorn's grace period would cut it off)."""
    from admin.run import GRACE_SECONDS

    engine, app, _ = site
    cookies = dict(logged_in(app, "ann").cookies)  # a session in the database the server below reads
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(engine.url), str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)

        async def scenario() -> float:
            async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=30) as client:
                async with client.stream("GET", "/notifications/stream") as response:
                    events = _events(response)
                    assert await anext(events) == ("unread", "0")
                    server.send_signal(signal.SIGINT)
                    asked = time.monotonic()
                    with pytest.raises(StopAsyncIteration):
                        await anext(events)  # the stream ends
                    return time.monotonic() - asked

        ended_after = asyncio.run(scenario())
        assert ended_after < GRACE_SECONDS - 1, f"the stream ended {ended_after:.1f} s after Ctrl-C"
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
