"""Contact history on SQLite and PostgreSQL: entries, order, and idempotency keys under a race."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from runtime.db import upgrade
from runtime.history import add_history, list_history
from runtime.schema import contact_history

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def platform(db):
    upgrade(db)
    return db


def test_entries_come_back_newest_first_with_who_and_when(platform):
    with platform.begin() as conn:
        for i, kind in enumerate(["submission", "task", "note", "alert"]):
            add_history(conn, "company", 7, kind, f"{kind} {i}", {"i": i}, 3, at=T0 + dt.timedelta(hours=i))
        add_history(conn, "company", 8, "note", "another company", None, None, at=T0)
        entries = list_history(conn, "company", 7)
        notes = list_history(conn, "company", 7, kinds=("note", "alert"))
    assert [(e.kind, e.summary, e.data, e.user_id) for e in entries] == [
        ("alert", "alert 3", {"i": 3}, 3), ("note", "note 2", {"i": 2}, 3), ("task", "task 1", {"i": 1}, 3),
        ("submission", "submission 0", {"i": 0}, 3)]
    assert entries[0].occurred_at == T0 + dt.timedelta(hours=3)
    assert [e.summary for e in notes] == ["alert 3", "note 2"]


def test_a_repeated_key_returns_the_first_entry(platform):
    with platform.begin() as conn:
        first = add_history(conn, "company", 7, "alert", "Overdue", {"level": 1}, None, key="alert:wf-1:call:1")
        again = add_history(conn, "company", 7, "alert", "Overdue (retry)", {"level": 1}, None, key="alert:wf-1:call:1")
        plain = [add_history(conn, "company", 7, "note", "same text", None, None) for _ in range(2)]
        count = conn.execute(sa.select(sa.func.count()).select_from(contact_history)).scalar()
    assert again == first and again.summary == "Overdue"
    assert plain[0].id != plain[1].id  # without a key every call is an entry
    assert count == 3


def test_the_entry_returned_is_the_entry_stored(platform):
    with platform.begin() as conn:
        keyed = add_history(conn, "company", 7, "submission", "Call note", {"form": "call_note", "values": {"minutes": 12}}, 3,
                            key="submission:api-3-k1", form="call_note")
        plain = add_history(conn, "company", 7, "note", "x" * 600, None, None)
        stored = {e.id: e for e in list_history(conn, "company", 7)}
    assert stored == {keyed.id: keyed, plain.id: plain}
    assert len(plain.summary) == 500 and keyed.form == "call_note" and keyed.key == "submission:api-3-k1"


def test_racing_writers_with_the_same_key_make_one_entry(platform):
    """The second writer waits for the first, loses on the unique key and returns the winner's entry."""
    results: dict[str, int] = {}
    first_inserted = threading.Event()

    def slow_first():
        with platform.begin() as conn:
            results["first"] = add_history(conn, "company", 7, "task", "Task created", None, None, key="task:wf-9:s1").id
            first_inserted.set()
            time.sleep(0.3)  # hold the transaction open while the second writer arrives

    def second():
        first_inserted.wait(5)
        with platform.begin() as conn:
            results["second"] = add_history(conn, "company", 7, "task", "Task created", None, None, key="task:wf-9:s1").id

    threads = [threading.Thread(target=slow_first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    with platform.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(contact_history)).scalar()
    assert results["first"] == results["second"] and count == 1


def test_a_kind_is_a_short_name(platform):
    with platform.begin() as conn, pytest.raises(ValueError, match="a history kind is a short lower-case name"):
        add_history(conn, "company", 7, "Phone Call!", "x", None, None)
