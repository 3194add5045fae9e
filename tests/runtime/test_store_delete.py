"""Deleting records on SQLite and PostgreSQL: nothing lost silently, nothing left dangling."""
from __future__ import annotations

import datetime as dt

import pytest

from runtime import records as R
from runtime.history import add_history, list_audit, list_history
from runtime.schema import process_instances, projects, tasks, users
from tests.runtime.conftest import Store

TODAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def company(s: Store, conn, name: str = "Acme Ltd", **values) -> R.Record:
    return R.create_record(conn, s.compiled, "company", {"name": name, **values}, s.alice, today=TODAY)


def person(s: Store, conn, company_id: int, first: str = "Jane") -> R.Record:
    return R.create_record(conn, s.compiled, "person", {"company": company_id, "first_name": first, "last_name": "Doe"}, s.alice,
                           today=TODAY)


def test_a_deleted_record_is_gone_and_its_last_values_and_history_are_kept(store: Store):
    with store.begin() as conn:
        rec = company(store, conn, industry="technology", employees=40)
        R.add_record_field(conn, store.compiled, "company", rec.id, "beds", "integer", "Beds", 120, store.alice)
        add_history(conn, "company", rec.id, "note", "Called about the renewal", None, store.alice)
    with store.begin() as conn:
        gone = R.delete_record(conn, store.compiled, "company", rec.id, store.bob, expected_version=2)
    with store.connect() as conn:
        with pytest.raises(R.RecordNotFound):
            R.get_record(conn, store.compiled, "company", rec.id)
        assert R.search_records(conn, store.compiled, "company").total == 0
        audit = list_audit(conn, "company", rec.id)
        history = list_history(conn, "company", rec.id)
    assert gone.title == "Acme Ltd"
    assert [(a.action, a.user_id) for a in audit] == [("create", store.alice), ("add_field", store.alice), ("delete", store.bob)]
    assert audit[-1].after is None
    assert audit[-1].before == {"title": "Acme Ltd", **rec.data, "row_version": 2,
                                "record_fields": {"beds": {**gone.record_fields["beds"]}}}
    assert audit[-1].before["record_fields"]["beds"]["value"] == 120
    assert [(h.kind, h.summary, h.user_id) for h in history] == [
        ("change", "Company deleted: Acme Ltd", store.bob), ("note", "Called about the renewal", store.alice)]


def test_the_id_of_a_deleted_record_is_never_given_to_a_new_one(store: Store):
    """Otherwise the new record would inherit the deleted one's contact history and audit trail."""
    with store.begin() as conn:
        company(store, conn, "First")
        newest = company(store, conn, "Second")
    with store.begin() as conn:
        R.delete_record(conn, store.compiled, "company", newest.id, store.alice)
    with store.begin() as conn:
        third = company(store, conn, "Third")
        assert third.id > newest.id
        assert [a.action for a in list_audit(conn, "company", third.id)] == ["create"]


def test_a_record_others_refer_to_is_refused_with_what_refers_to_it(store: Store):
    with store.begin() as conn:
        co = company(store, conn)
        jane, joe = person(store, conn, co.id), person(store, conn, co.id, "Joe")
        task = conn.execute(tasks.insert().values(key="wf:call", workflow_id="wf", process="lead_follow_up", step_id="call",
                                                  title="Call back", entity="company", record_id=co.id, status="open",
                                                  created_at=NOW).returning(tasks.c.id)).scalar_one()
        conn.execute(process_instances.insert().values(workflow_id="lead_follow_up/7", process="lead_follow_up", version="v1",
                                                       entity="company", record_id=co.id, status="running", inputs={},
                                                       started_at=NOW))
        conn.execute(projects.insert().values(key="p1", title="Roll-out", entity="company", record_id=co.id, created_at=NOW))
        conn.execute(users.update().where(users.c.id == store.bob).values(company_id=co.id))
    with store.begin() as conn, pytest.raises(R.DeletionRefused) as caught:
        R.delete_record(conn, store.compiled, "company", co.id, store.alice)
    label = store.compiled.model.processes["lead_follow_up"].label
    assert caught.value.referrers == [
        f"people {jane.id} 'Jane Doe', {joe.id} 'Joe Doe' (field Company)",
        f"open task {task} 'Call back'",
        f"running process {label} (lead_follow_up/7)",
        "open project 1 'Roll-out'",
        "portal user bob",
    ]
    assert str(caught.value).startswith(f"Company {co.id} cannot be deleted while these refer to it: people {jane.id} 'Jane Doe'")
    with store.connect() as conn:
        assert R.get_record(conn, store.compiled, "company", co.id).title == "Acme Ltd"
        assert [a.action for a in list_audit(conn, "company", co.id)] == ["create"]


def test_once_nothing_refers_to_it_any_more_it_can_go(store: Store):
    with store.begin() as conn:
        co = company(store, conn)
        jane = person(store, conn, co.id)
        conn.execute(tasks.insert().values(key="wf:call", workflow_id="wf", process="lead_follow_up", step_id="call", title="Call back",
                                           entity="company", record_id=co.id, status="done", created_at=NOW))
        conn.execute(process_instances.insert().values(workflow_id="lead_follow_up/7", process="lead_follow_up", version="v1",
                                                       entity="company", record_id=co.id, status="completed", inputs={},
                                                       started_at=NOW))
    with store.begin() as conn, pytest.raises(R.DeletionRefused, match="people|person"):
        R.delete_record(conn, store.compiled, "company", co.id, store.alice)
    with store.begin() as conn:
        R.delete_record(conn, store.compiled, "person", jane.id, store.alice)
        R.delete_record(conn, store.compiled, "company", co.id, store.alice)
    with store.connect() as conn:
        assert R.search_records(conn, store.compiled, "company").total == 0


def test_deleting_what_changed_meanwhile_is_a_conflict_and_deletes_nothing(store: Store):
    with store.begin() as conn:
        co = company(store, conn)
        R.update_record(conn, store.compiled, "company", co.id, {"employees": 3}, store.bob)
    with store.begin() as conn, pytest.raises(R.Conflict, match="you had version 1, it is now at version 2"):
        R.delete_record(conn, store.compiled, "company", co.id, store.alice, expected_version=1)
    with store.begin() as conn:
        assert R.get_record(conn, store.compiled, "company", co.id).data["employees"] == 3
        with pytest.raises(R.RecordNotFound):
            R.delete_record(conn, store.compiled, "company", co.id + 100, store.alice)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # PostgreSQL sequences never hand an id out twice
def test_a_table_made_before_deletion_existed_keeps_its_newest_record(store: Store):
    """SQLite tables created without AUTOINCREMENT would hand the newest id on: that record is refused, older ones go."""
    with store.begin() as conn:
        conn.exec_driver_sql("DROP TABLE product")
        conn.exec_driver_sql("CREATE TABLE product (id INTEGER NOT NULL PRIMARY KEY, title VARCHAR(500) DEFAULT '' NOT NULL, "
                             "data JSON NOT NULL, record_fields JSON NOT NULL, row_version INTEGER DEFAULT '1' NOT NULL, "
                             "created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, created_by BIGINT, updated_by BIGINT)")
        ids = [R.create_record(conn, store.compiled, "product", {"name": n, "sku": f"SKU-{n}", "kind": "service"}, store.alice).id for n in ("A", "B")]
    with store.begin() as conn, pytest.raises(R.DeletionRefused, match="SQLite would give its id to the next product"):
        R.delete_record(conn, store.compiled, "product", ids[1], store.alice)
    with store.begin() as conn:
        R.delete_record(conn, store.compiled, "product", ids[0], store.alice)


def test_a_record_with_a_process_enqueued_but_not_yet_running_is_refused(store: Store):
    from runtime import outbox
    from runtime.schema import process_starts

    with store.begin() as conn:
        co = company(store, conn)
        req = R.create_record(conn, store.compiled, "support_request", {"company": co.id, "summary": "Printer on fire",
                                                                         "description": "Smoke", "category": "question"}, store.alice,
                              today=TODAY)
    [wid] = req.starts  # its support SLA, enqueued with the record and not started by anyone yet
    label = store.compiled.model.processes["support_sla"].label
    with store.begin() as conn, pytest.raises(R.DeletionRefused) as caught:
        R.delete_record(conn, store.compiled, "support_request", req.id, store.alice)
    assert caught.value.referrers == [f"process about to start {label} ({wid})"]
    with store.begin() as conn:  # started, but its first activity has not registered the instance yet: still refused
        conn.execute(process_starts.update().where(process_starts.c.workflow_id == wid).values(status=outbox.STARTED))
    with store.begin() as conn, pytest.raises(R.DeletionRefused, match="process about to start"):
        R.delete_record(conn, store.compiled, "support_request", req.id, store.alice)
