"""In-app notifications on SQLite and PostgreSQL: each event notifies its people once however often its write is
retried, '@username' in a comment notifies that user, a user's own list and marking read, and the one poller per
process that keeps open pages' counts live."""
from __future__ import annotations

import asyncio
import datetime as dt

import sqlalchemy as sa

from runtime import notifications as notes, records, routing, tasks as task_service
from runtime.schema import notifications, tasks as tasks_table, users
from runtime.taskactions import TaskActions
from tests.runtime.test_task_actions import GUARD, _start, _user
from tests.runtime.test_workflows import PACK, _with_worker, _world, rows

from .conftest import Store, add_user


def _mine(conn: sa.Connection, user_id: int) -> list[tuple[str, str, str | None]]:
    return [tuple(r) for r in conn.execute(sa.select(notifications.c.kind, notifications.c.text, notifications.c.link)
                                           .where(notifications.c.user_id == user_id).order_by(notifications.c.id))]


def _task(conn: sa.Connection, store: Store, key: str, assign: dict | None, ctx: dict | None = None) -> dict:
    company = records.create_record(conn, store.compiled, "company", {"name": f"Acme {key}"}, store.alice)
    values = {"workflow_id": key, "process": "p", "step_id": "call", "title": f"Call Acme {key}", "entity": "company",
              "record_id": company.id}
    conn.execute(users.update().where(users.c.password_hash.is_(None)).values(password_hash="argon2-hash"))  # people who log in
    return task_service.create_task(conn, key, values, lambda: routing.route(conn, store.compiled, assign, "round_robin", ctx or {}, values))


def test_a_retried_task_creation_reassignment_and_alert_each_notify_once(store: Store):
    with store.begin() as conn:
        carl = add_user(conn, "carl")
        for _ in range(2):  # the second round is the activity retried after a crash: same keys
            task = _task(conn, store, "p/1", {"kind": "user", "name": "alice"})
            task_service.reassign_task(conn, task["id"], store.bob, None, carl, key="update-7")
            task_service.raise_alert(conn, "p/1:call:L1", task, 1, [store.alice, carl], "Call Acme p/1 is late.")
        alice, bob, carl_has = _mine(conn, store.alice), _mine(conn, store.bob), _mine(conn, carl)
    link = f"/tasks/{task['id']}"
    assert alice == [("task", "New task for you: Call Acme p/1", link), ("alert", "Call Acme p/1 is late.", link)]
    assert bob == [("task", "Handed to you: Call Acme p/1", link)]
    assert carl_has == [("alert", "Call Acme p/1 is late.", link)]


def test_a_mention_in_a_comment_notifies_that_user_once_and_nobody_else(store: Store):
    with store.begin() as conn:
        carl, gone, customer = add_user(conn, "carl"), add_user(conn, "gone"), add_user(conn, "jane", ("portal",))
        conn.execute(users.update().where(users.c.id == gone).values(active=False))
        conn.execute(users.update().where(users.c.id == customer).values(company_id=1))
        task = _task(conn, store, "p/3", {"kind": "user", "name": "alice"})
        text = ("@Bob could you call them? @alice (me) and @gone, @jane, @nobody, mail carl@example.com; "
                "also @carl.")
        for _ in range(2):  # the comment's write retried: same key
            task_service.add_comment(conn, task["id"], store.alice, text, key="comment-9")
        task_service.add_comment(conn, task["id"], store.alice, "No mention here: ann@example.com", key="comment-10")
        got = {u: _mine(conn, u) for u in (store.alice, store.bob, carl, gone, customer)}
    said = ("Alice mentioned you on 'Call Acme p/3': @Bob could you call them? @alice (me) and @gone, @jane, @nobody, mail "
            "carl@example.com; also @carl.")
    link = f"/tasks/{task['id']}"
    assert got[store.bob] == [("mention", said, link)]
    assert got[carl] == [("mention", said, link)]
    assert got[store.alice] == [("task", "New task for you: Call Acme p/3", link)]  # not for mentioning herself
    assert got[gone] == [] and got[customer] == []  # deactivated; a customer's user never sees an internal comment


def test_mentioned_names_are_found_in_words_not_in_email_addresses():
    assert notes.mentioned("@ann, ask @bob.smith. Then @ann-marie- again @ann; x@y.com (@mia)") == ["ann", "bob.smith", "ann-marie", "mia"]
    assert notes.mentioned("") == [] and notes.mentioned("mail ann@example.com") == []


def test_a_user_reads_and_marks_only_their_own_notifications(store: Store):
    with store.begin() as conn:
        for n in range(3):
            notes.notify(conn, f"e{n}", [store.alice], "task", f"Task {n}", f"/tasks/{n}")
        theirs = notes.notify(conn, "b", [store.bob], "task", "Bob's", "/tasks/9")
        assert theirs == 1
        bobs = conn.execute(sa.select(notifications.c.id).where(notifications.c.user_id == store.bob)).scalar_one()
        newest = notes.newest(conn, store.alice, 0, 2)
        assert [n["text"] for n in newest] == ["Task 2", "Task 1"] and notes.total(conn, store.alice) == 3
        assert notes.own(conn, store.alice, bobs) is None and not notes.mark_read(conn, store.alice, bobs)
        assert notes.own(conn, store.alice, 2**70) is None and notes.own(conn, store.alice, 0) is None
        assert notes.mark_read(conn, store.alice, newest[0]["id"]) and notes.mark_read(conn, store.alice, newest[0]["id"])
        assert notes.unread_counts(conn, [store.alice, store.bob]) == {store.alice: 2, store.bob: 1}
        assert notes.mark_all_read(conn, store.alice) == 2 and notes.mark_all_read(conn, store.alice) == 0
        assert notes.unread_counts(conn, [store.alice, store.bob]) == {store.alice: 0, store.bob: 1}


# -- the poller: open pages hear of their user's count ------------------------------------------------------------

async def _next(watcher: notes.Watcher, seen: int | None, timeout: float = 3.0) -> int:
    return await asyncio.wait_for(watcher.changed(seen), timeout)


async def _quiet(watcher: notes.Watcher, seen: int, wait: float = 0.2) -> bool:
    """True if the count stays `seen` for `wait` seconds."""
    try:
        await asyncio.wait_for(watcher.changed(seen), wait)
    except TimeoutError:
        return True
    return False


def test_open_pages_hear_of_their_own_users_count_changes_and_no_one_elses(store: Store):
    watch = notes.UnreadWatch(store.engine, interval=0.02, recount=60)

    def write(fn):
        with store.begin() as conn:
            return fn(conn)

    async def scenario():
        write(lambda c: notes.notify(c, "old", [store.alice], "task", "Before", None))
        with watch.watch(store.alice) as one, watch.watch(store.alice) as two, watch.watch(store.bob) as bobs:
            assert (await _next(one, None), await _next(two, None), await _next(bobs, None)) == (1, 1, 0)
            write(lambda c: notes.notify(c, "new", [store.alice], "task", "New", None))
            assert (await _next(one, 1), await _next(two, 1)) == (2, 2)
            assert await _quiet(bobs, 0)
            # read here: the route touches the user, the pages hear at the next check
            write(lambda c: notes.mark_all_read(c, store.alice))
            watch.touch(store.alice)
            assert await _next(one, 2) == 0
            assert watch.pages == 3
        assert watch.pages == 0
        await asyncio.sleep(0.1)
        assert watch._poller is not None and watch._poller.done()  # nobody watching: no polling either
        with watch.watch(store.bob) as again:  # a page opened later starts it again
            assert await _next(again, None) == 0

    asyncio.run(scenario())


def test_closing_the_watch_ends_every_pages_wait(store: Store):
    watch = notes.UnreadWatch(store.engine, interval=0.02, recount=60)

    async def scenario():
        with watch.watch(store.alice) as one, watch.watch(store.bob) as two:
            seen = (await _next(one, None), await _next(two, None))
            waits = [asyncio.ensure_future(one.changed(seen[0])), asyncio.ensure_future(two.changed(seen[1]))]
            await asyncio.sleep(0.05)
            assert not any(w.done() for w in waits)
            watch.close()  # the server is stopping
            assert await asyncio.wait_for(asyncio.gather(*waits), 1) == [None, None]

    asyncio.run(scenario())


def test_a_count_changed_without_a_new_row_is_heard_at_the_next_recount(store: Store):
    watch = notes.UnreadWatch(store.engine, interval=0.02, recount=0.3)

    async def scenario():
        with store.begin() as conn:
            notes.notify(conn, "a", [store.alice], "task", "A", None)
        with watch.watch(store.alice) as page:
            assert await _next(page, None) == 1
            with store.begin() as conn:  # read in another process: nothing here is told
                notes.mark_all_read(conn, store.alice)
            assert await _next(page, 1, timeout=2) == 0

    asyncio.run(scenario())


def test_a_row_committed_after_a_higher_id_is_still_heard_before_the_recount(store: Store):
    """PostgreSQL hands out ids before commit: id 5 may commit after id 6 was seen. The poller looks for 5 again."""
    watch = notes.UnreadWatch(store.engine, interval=0.02, recount=60)
    now = dt.datetime.now(dt.timezone.utc)

    def row(conn, id_: int, user: int) -> None:
        conn.execute(notifications.insert().values(id=id_, key=f"k{id_}", user_id=user, kind="task", text="t", created_at=now))

    async def scenario():
        with store.begin() as conn:
            row(conn, 1, store.bob)
        with watch.watch(store.alice) as alices, watch.watch(store.bob) as bobs:
            assert (await _next(alices, None), await _next(bobs, None)) == (0, 1)
            with store.begin() as conn:
                row(conn, 3, store.bob)  # 2 is still being written by another transaction
            assert await _next(bobs, 1) == 2
            with store.begin() as conn:
                row(conn, 2, store.alice)  # ... and now it is committed
            assert await _next(alices, 0, timeout=1) == 1

    asyncio.run(scenario())


def test_the_poller_survives_a_database_that_does_not_answer_for_a_while(store: Store, monkeypatch):
    watch = notes.UnreadWatch(store.engine, interval=0.02, recount=60)
    failing = {"left": 3}
    real = watch._read

    def flaky(*args):
        if failing["left"]:
            failing["left"] -= 1
            raise sa.exc.OperationalError("SELECT", {}, Exception("database is away"))
        return real(*args)

    monkeypatch.setattr(watch, "_read", flaky)

    async def scenario():
        with watch.watch(store.alice) as page:
            assert await _next(page, None) == 0  # heard once the database answers again
        assert failing["left"] == 0

    asyncio.run(scenario())


# -- a mention through the whole path: the web's comment action, the workflow update, its local-activity write ----------

def test_a_comment_sent_twice_with_its_request_id_mentions_once_through_the_process(packs, tmp_path, smtp):
    world = _world(packs, tmp_path, smtp, PACK)
    ids, ann = world["ids"], _user(world, "ann")

    async def body(env, queue):
        handle = await _start(env, world, queue)
        actions = TaskActions(world["engine"], world["compiled"], env.client, queue)
        [task] = rows(world, tasks_table)
        for _ in range(2):  # a double click / a retried POST: the same request id
            await asyncio.wait_for(actions.comment(task, ann, "@bob @Mia can one of you call them?", key="req-1"), GUARD)
        await asyncio.wait_for(actions.comment(task, ann, "Thanks @bob", key="req-2"), GUARD)
        await handle.terminate()
        return task

    task = asyncio.run(_with_worker(world, body))
    link = f"/tasks/{task['id']}"
    with world["engine"].connect() as conn:
        bob, mia, ann_has = _mine(conn, ids["bob"]), _mine(conn, ids["mia"]), _mine(conn, ids["ann"])
    assert bob == [("mention", "Ann mentioned you on 'Call Acme': @bob @Mia can one of you call them?", link),
                   ("mention", "Ann mentioned you on 'Call Acme': Thanks @bob", link)]
    assert mia == [("mention", "Ann mentioned you on 'Call Acme': @bob @Mia can one of you call them?", link)]
    assert [k for k, _, _ in ann_has] == ["task"]  # her own task's notice; no mention of the author
