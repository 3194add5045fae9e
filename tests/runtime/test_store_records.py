"""The record service on SQLite and PostgreSQL: create, validate, update, search, single-record fields."""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from runtime import records as R
from runtime.history import list_audit, list_history
from tests.runtime.conftest import Store

TODAY = dt.date(2026, 3, 2)


def company(s: Store, conn, **values) -> R.Record:
    return R.create_record(conn, s.compiled, "company", {"name": "Acme Ltd", **values}, s.alice, today=TODAY)


# -- create and read -----------------------------------------------------------------------


def test_create_fills_defaults_title_and_audit_and_reads_back(store: Store):
    with store.begin() as conn:
        rec = company(store, conn, industry="technology", employees=40, owner=store.bob)
        again = R.get_record(conn, store.compiled, "company", rec.id)
        audit = list_audit(conn, "company", rec.id)
    assert rec == dataclasses.replace(again, changed=rec.changed)
    assert rec.title == "Acme Ltd"
    assert rec.data == {"name": "Acme Ltd", "status": "prospect", "industry": "technology", "employees": 40, "owner": store.bob,
                        "country": "United Kingdom"}
    assert (rec.row_version, rec.created_by, rec.updated_by) == (1, store.alice, store.alice)
    assert rec.created_at.tzinfo is not None
    assert [(a.action, a.user_id, a.before) for a in audit] == [("create", store.alice, None)]
    assert audit[0].after == {"title": "Acme Ltd", **rec.data}


def test_reference_fields_live_in_their_own_column_and_titles_may_use_the_id(store: Store):
    with store.begin() as conn:
        co = company(store, conn)
        req = R.create_record(conn, store.compiled, "support_request",
                              {"company": co.id, "summary": "Printer on fire", "description": "Smoke", "category": "question"},
                              store.alice, today=TODAY)
        table = store.compiled.metadata.tables["support_request"]
        row = conn.execute(sa.select(table.c.company, table.c.data, table.c.title).where(table.c.id == req.id)).one()
    assert row.company == co.id and "company" not in row.data
    assert req.data["company"] == co.id
    assert row.title == req.title == f"#{req.id} Printer on fire"


def test_missing_record_and_unknown_entity(store: Store):
    with store.connect() as conn:
        with pytest.raises(R.RecordNotFound, match="there is no company with id 999"):
            R.get_record(conn, store.compiled, "company", 999)
        with pytest.raises(R.UnknownEntity, match=r"unknown entity 'compnay' \(known: company, contract, "):
            R.get_record(conn, store.compiled, "compnay", 1)


# -- validation -----------------------------------------------------------------------------


def test_every_invalid_field_is_reported_in_plain_words(store: Store):
    with store.begin() as conn, pytest.raises(R.RecordInvalid) as caught:
        R.create_record(conn, store.compiled, "company", {
            "name": "x" * 201, "status": "lapsed", "employees": "many", "website": "ftp://acme", "email": "nope",
            "account_number": "12", "owner": 9999, "colour": "red", "phone": "call me",
        }, store.alice, today=TODAY)
    assert caught.value.errors == {
        "account_number": "Account number is not in the expected format (for example ACM0042)",
        "colour": "'colour' is not a field of company",
        "email": "Email must be an email address like name@example.com",
        "employees": "Number of employees must be a whole number",
        "name": "Name must be at most 200 characters",
        "owner": "Account manager: there is no user with id 9999",
        "phone": "Phone must be a phone number (digits, spaces and + ( ) . / -)",
        "status": "Status must be one of: Prospect, Customer, Former customer",
        "website": "Website must be a web address starting with http:// or https://",
    }
    assert str(caught.value).startswith("9 fields of the company are invalid: account_number: Account number is not")


def test_required_fields_bounds_money_dates_and_references(store: Store):
    with store.begin() as conn:
        with pytest.raises(R.RecordInvalid) as caught:
            R.create_record(conn, store.compiled, "opportunity", {"company": 4242, "probability": 140, "value": "12.345",
                                                                 "expected_close": "2026-02-30"}, store.alice, today=TODAY)
        assert caught.value.errors == {
            "company": "Company: there is no company with id 4242",
            "expected_close": "Expected close date must be a date like 2024-05-31",
            "name": "Name is required",
            "probability": "Probability (%) must be at most 100",
            "value": "Value must be an amount like 1250.00",
        }
        co = company(store, conn)
        with pytest.raises(R.RecordInvalid) as caught:
            R.create_record(conn, store.compiled, "opportunity", {"name": "Deal", "company": co.id, "value": -5}, store.alice)
        assert caught.value.errors == {"value": "Value must be at least 0"}
        deal = R.create_record(conn, store.compiled, "opportunity",
                               {"name": "Deal", "company": co.id, "value": 1250, "expected_close": dt.date(2026, 6, 30), "owner": ""},
                               store.alice)
    assert deal.data == {"name": "Deal", "company": co.id, "stage": "lead", "value": "1250.00", "expected_close": "2026-06-30"}


def test_unique_fields_are_checked_with_a_message(store: Store):
    with store.begin() as conn:
        first = company(store, conn, account_number="ACM0001")
        with pytest.raises(R.RecordInvalid) as caught:
            company(store, conn, name="Other", account_number="ACM0001")
        assert caught.value.errors == {"account_number": "Account number 'ACM0001' is already used by company 'Acme Ltd'"}
        # changing other fields of the holder itself is fine
        R.update_record(conn, store.compiled, "company", first.id, {"employees": 3}, store.alice)


# -- groups ------------------------------------------------------------------------------------


def test_group_fields_apply_only_while_the_group_condition_holds(store: Store):
    with store.begin() as conn:
        with pytest.raises(R.RecordInvalid) as caught:
            company(store, conn, industry="retail", ods_code="RJ1", purchase_order_required=True)
        assert caught.value.errors == {
            "ods_code": "ODS code only applies to Healthcare companies (when record.industry == 'healthcare')",
            "purchase_order_required": "Purchase order required before invoicing only applies to Public sector companies "
                                       "(when record.industry in ['public_sector', 'education'])",
        }
        with pytest.raises(R.RecordInvalid) as caught:
            company(store, conn, industry="healthcare", ods_code="X" * 11)
        assert caught.value.errors == {"ods_code": "ODS code must be at most 10 characters"}
        rec = company(store, conn, industry="healthcare", ods_code="RJ1", organisation_type="nhs_trust")
        assert rec.data["ods_code"] == "RJ1"
        # leaving the group drops its fields (the audit log keeps them)
        moved = R.update_record(conn, store.compiled, "company", rec.id, {"industry": "education"}, store.alice)
        assert "ods_code" not in moved.data and "organisation_type" not in moved.data
        assert moved.changed == ("industry", "organisation_type", "ods_code")
        audit = list_audit(conn, "company", rec.id)[-1]
    assert audit.before == {"industry": "healthcare", "ods_code": "RJ1", "organisation_type": "nhs_trust"}
    assert audit.after == {"industry": "education", "ods_code": None, "organisation_type": None}


def test_required_group_fields_and_conditions_on_today(store: Store, packs):
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime.plan import apply, plan

    folder = packs.write("club", {"member.yaml": """
        kind: entity
        name: member
        title: "{{ record.name }} ({{ record.id }})"
        fields:
          name: {type: string, required: true}
          joined: date
        groups:
          veteran:
            when: "record.joined is not none and record.joined | days_since(today) > 365"
            fields:
              badge: {type: string, required: true}
    """})
    compiled = compile_model(load([folder]))
    with store.begin() as conn:
        apply(conn, compiled, plan(conn, compiled))
        new = R.create_record(conn, compiled, "member", {"name": "Ann", "joined": "2026-01-01"}, None, today=TODAY)
        assert new.title == f"Ann ({new.id})"
        with pytest.raises(R.RecordInvalid) as caught:
            R.create_record(conn, compiled, "member", {"name": "Bo", "joined": "2020-01-01"}, None, today=TODAY)
        assert caught.value.errors == {"badge": "Badge is required"}
        old = R.create_record(conn, compiled, "member", {"name": "Bo", "joined": "2020-01-01", "badge": "gold"}, None, today=TODAY)
    assert old.data["badge"] == "gold"


def test_each_compiled_model_checks_records_by_its_own_definitions(store: Store, packs):
    """The record service keeps what it builds per entity (validators, statements) with the compiled model it was built from."""
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime.plan import apply, plan

    loose = compile_model(load([packs.write("loose", {"thing.yaml": "kind: entity\nname: thing\nfields: {name: string, size: integer}\n"})]))
    strict = compile_model(load([packs.write("strict", {"thing.yaml": """
        kind: entity
        name: thing
        fields:
          name: string
          size: {type: integer, required: true, max: 5}
    """})]))
    with store.begin() as conn:
        apply(conn, loose, plan(conn, loose))
        R.create_record(conn, loose, "thing", {"name": "a", "size": 7}, None)
        with pytest.raises(R.RecordInvalid) as big:
            R.create_record(conn, strict, "thing", {"name": "b", "size": 7}, None)
        with pytest.raises(R.RecordInvalid) as missing:
            R.create_record(conn, strict, "thing", {"name": "c"}, None)
        later = R.create_record(conn, loose, "thing", {"name": "d"}, None)
    assert big.value.errors == {"size": "Size must be at most 5"}
    assert missing.value.errors == {"size": "Size is required"}
    assert later.data == {"name": "d"}


# -- update and concurrency -----------------------------------------------------------------------


def test_update_writes_audit_and_optional_history(store: Store):
    with store.begin() as conn:
        rec = company(store, conn)
        up = R.update_record(conn, store.compiled, "company", rec.id, {"status": "customer", "name": "Acme Group"}, store.bob,
                             expected_version=1, history=True)
        same = R.update_record(conn, store.compiled, "company", rec.id, {"status": "customer"}, store.bob)
        history = list_history(conn, "company", rec.id)
        audit = list_audit(conn, "company", rec.id)
    assert (up.row_version, up.updated_by, up.title, up.changed) == (2, store.bob, "Acme Group", ("name", "status"))
    assert same.row_version == 2  # nothing changed: no new version, no audit row
    assert [a.action for a in audit] == ["create", "update"]
    assert audit[1].before == {"name": "Acme Ltd", "status": "prospect", "title": "Acme Ltd"}
    assert audit[1].after == {"name": "Acme Group", "status": "customer", "title": "Acme Group"}
    assert [(h.kind, h.summary, h.user_id) for h in history] == [
        ("change", "Changed Name: Acme Ltd → Acme Group; Status: prospect → customer", store.bob)]


def test_emptying_a_field_and_refusing_an_unknown_one(store: Store):
    with store.begin() as conn:
        rec = company(store, conn, employees=5)
        up = R.update_record(conn, store.compiled, "company", rec.id, {"employees": None}, store.alice)
        assert "employees" not in up.data
        with pytest.raises(R.RecordInvalid) as caught:
            R.update_record(conn, store.compiled, "company", rec.id, {"name": None}, store.alice)
        assert caught.value.errors == {"name": "Name is required"}
        with pytest.raises(R.RecordInvalid, match="'nmae' is not a field of company"):
            R.update_record(conn, store.compiled, "company", rec.id, {"nmae": "x"}, store.alice)


def test_a_stale_version_is_a_conflict(store: Store):
    with store.begin() as conn:
        rec = company(store, conn)
        R.update_record(conn, store.compiled, "company", rec.id, {"employees": 1}, store.alice, expected_version=1)
        with pytest.raises(R.Conflict) as caught:
            R.update_record(conn, store.compiled, "company", rec.id, {"employees": 2}, store.bob, expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert "was changed by someone else (you had version 1, it is now at version 2)" in str(caught.value)


def test_concurrent_writers_one_wins_the_other_gets_a_conflict(store: Store):
    """Two transactions read version 1; the second to write finds the row moved on."""
    with store.begin() as conn:
        rec_id = company(store, conn).id
    with store.begin() as conn:
        R.update_record(conn, store.compiled, "company", rec_id, {"employees": 1}, store.alice, expected_version=1)
    with store.begin() as conn, pytest.raises(R.Conflict):
        R.update_record(conn, store.compiled, "company", rec_id, {"employees": 2}, store.bob, expected_version=1)
    with store.connect() as conn:
        assert R.get_record(conn, store.compiled, "company", rec_id).data["employees"] == 1


def test_concurrent_patches_without_a_version_both_land(store: Store):
    """A patch without expected_version waits for the row and applies to its latest version."""
    with store.begin() as conn:
        rec_id = company(store, conn).id
    first_done = threading.Event()
    errors: list[BaseException] = []

    def first():
        try:
            with store.begin() as conn:
                R.update_record(conn, store.compiled, "company", rec_id, {"employees": 7}, store.alice)
                first_done.set()
                time.sleep(0.3)  # the second patch arrives while this transaction still holds the row
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
            first_done.set()

    def second():
        first_done.wait(5)
        try:
            with store.begin() as conn:
                R.update_record(conn, store.compiled, "company", rec_id, {"status": "customer"}, store.bob)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    with store.connect() as conn:
        rec = R.get_record(conn, store.compiled, "company", rec_id)
    assert (rec.data["employees"], rec.data["status"], rec.row_version) == (7, "customer", 3)


# -- single-record fields ---------------------------------------------------------------------------


def test_single_record_fields_follow_the_entity_rules(store: Store):
    with store.begin() as conn:
        co = company(store, conn)
        person = R.create_record(conn, store.compiled, "person", {"company": co.id, "first_name": "Ann", "last_name": "Lee"},
                                 store.alice)
        rec = R.add_record_field(conn, store.compiled, "person", person.id, "parking", "string", "Parking bay", "B4", store.alice,
                                 expected_version=1)
        assert rec.row_version == 2
        assert {k: v for k, v in rec.record_fields["parking"].items() if k != "added_at"} == {
            "type": "string", "label": "Parking bay", "value": "B4", "added_by": store.alice}
        errors = {}
        for name, ftype, value in [("budget", "money", "1"), ("email", "string", "x"), ("parking", "string", "x"),
                                   ("Bad Name", "string", "x"), ("visited", "date", "tuesday")]:
            with pytest.raises(R.RecordInvalid) as caught:
                R.add_record_field(conn, store.compiled, "person", person.id, name, ftype, None, value, store.alice)
            errors.update(caught.value.errors)
        assert errors == {
            "budget": "a field of its own cannot be of type money (allowed: string, text, date, email, phone, url, boolean)",
            "email": "'email' is already a field of every person",
            "parking": "this person already has a field 'parking'",
            "Bad Name": "a field name starts with a letter and has only lower-case letters, digits and _",
            "visited": "Visited must be a date like 2024-05-31",
        }
        for i in range(9):
            R.add_record_field(conn, store.compiled, "person", person.id, f"extra_{i}", "boolean", None, True, store.alice)
        with pytest.raises(R.RecordInvalid) as caught:
            R.add_record_field(conn, store.compiled, "person", person.id, "one_more", "text", None, "x", store.alice)
        assert caught.value.errors == {"one_more": "a person can have at most 10 fields of its own"}
        changed = R.set_record_field(conn, store.compiled, "person", person.id, "parking", "C1", store.bob)
        removed = R.remove_record_field(conn, store.compiled, "person", person.id, "extra_0", store.bob)
        audit = list_audit(conn, "person", person.id)
    assert changed.record_fields["parking"]["value"] == "C1"
    assert "extra_0" not in removed.record_fields
    assert [a.action for a in audit] == ["create", "add_field"] + ["add_field"] * 9 + ["update", "remove_field"]
    assert audit[-2].before == {"parking": "B4"} and audit[-2].after == {"parking": "C1"}


def test_entities_can_forbid_single_record_fields(store: Store, packs):
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime.plan import apply, plan

    folder = packs.write("strict", {"thing.yaml": "kind: entity\nname: thing\nfields: {name: string}\nrecord_fields: {allowed: false}\n"})
    compiled = compile_model(load([folder]))
    with store.begin() as conn:
        apply(conn, compiled, plan(conn, compiled))
        rec = R.create_record(conn, compiled, "thing", {"name": "x"}, None)
        assert rec.title == f"Thing {rec.id}"
        with pytest.raises(R.RecordInvalid) as caught:
            R.add_record_field(conn, compiled, "thing", rec.id, "note", "string", None, "x", None)
    assert caught.value.errors == {"note": "things cannot have fields of their own"}


# -- search ------------------------------------------------------------------------------------------


@pytest.fixture
def pipeline(store: Store):
    """Three companies and five opportunities to search."""
    with store.begin() as conn:
        acme = company(store, conn, industry="healthcare", status="customer", owner=store.alice)
        beta = company(store, conn, name="Beta Software", industry="technology", owner=store.bob)
        gamma = company(store, conn, name="Gamma 100% Ltd", industry="retail", status="customer")
        R.add_record_field(conn, store.compiled, "company", gamma.id, "parking", "string", None, "Bay 7", store.alice)
        deals = {}
        for name, co, stage, value, close in [("Scanners", acme, "proposal", "99.50", "2026-04-01"),
                                              ("Licences", beta, "lead", 1200, "2026-05-15"),
                                              ("Support", acme, "won", "250.00", "2026-03-01"),
                                              ("Tills", gamma, "lead", None, None),
                                              ("Upgrade", beta, "negotiation", "1000", "2026-04-20")]:
            values = {"name": name, "company": co.id, "stage": stage, "value": value, "expected_close": close,
                      "owner": store.alice if name != "Tills" else store.bob}
            deals[name] = R.create_record(conn, store.compiled, "opportunity", values, store.alice).id
    return {"acme": acme.id, "beta": beta.id, "gamma": gamma.id, **deals}


def names(page: R.Page) -> list[str]:
    return [r.data["name"] for r in page.items]


def test_search_filters_on_variable_fields_columns_and_record_fields(store: Store, pipeline):
    def find(entity, filters=None, sort=None, **kw):
        with store.connect() as conn:
            return names(R.search_records(conn, store.compiled, entity, filters, sort, **kw))

    assert find("company", {"status": "customer"}) == ["Acme Ltd", "Gamma 100% Ltd"]
    assert find("company", {"name": {"contains": "100%"}}) == ["Gamma 100% Ltd"]
    assert find("company", {"name": {"contains": "SOFT"}}) == ["Beta Software"]
    assert find("company", {"name": {"startswith": "ac"}}) == ["Acme Ltd"]
    assert find("company", {"industry": ["retail", "technology"]}, sort="-name") == ["Gamma 100% Ltd", "Beta Software"]
    assert find("company", {"owner": store.bob}) == ["Beta Software"]
    assert find("company", {"owner": None}) == ["Gamma 100% Ltd"]
    assert find("company", {"record_fields.parking": "Bay 7"}) == ["Gamma 100% Ltd"]
    assert find("opportunity", {"company": pipeline["beta"]}, sort="name") == ["Licences", "Upgrade"]
    assert find("opportunity", {"value": {"gte": 250}}, sort="-value") == ["Licences", "Upgrade", "Support"]
    assert find("opportunity", {"value": "1000.00"}) == ["Upgrade"]
    assert find("opportunity", {"value": {"lt": "100"}}) == ["Scanners"]
    assert find("opportunity", {"expected_close": {"gte": "2026-04-01", "lt": dt.date(2026, 5, 1)}}, sort="expected_close") == [
        "Scanners", "Upgrade"]
    assert find("opportunity", {"expected_close": {"empty": True}}) == ["Tills"]
    assert find("opportunity", {"stage": {"ne": "lead"}, "owner": store.alice}, sort=["stage", "-name"]) == [
        "Upgrade", "Scanners", "Support"]
    assert find("opportunity", {"id": {"in": [pipeline["Tills"], pipeline["Support"]]}}) == ["Support", "Tills"]
    assert find("opportunity", sort="-expected_close") == ["Licences", "Upgrade", "Scanners", "Support", "Tills"]  # empty last


def test_search_pages_never_overlap(store: Store, pipeline):
    with store.connect() as conn:
        pages = [R.search_records(conn, store.compiled, "opportunity", {}, "stage", page=p, page_size=2) for p in (1, 2, 3)]
    assert [names(p) for p in pages] == [["Licences", "Tills"], ["Upgrade", "Scanners"], ["Support"]]
    assert (pages[0].total, pages[0].pages) == (5, 3)


def test_search_refuses_unknown_fields_and_operators(store: Store):
    with store.connect() as conn:
        with pytest.raises(R.BadQuery, match=r"cannot search companies by 'colour': no such field \(known: name, "):
            R.search_records(conn, store.compiled, "company", {"colour": "red"})
        with pytest.raises(R.BadQuery, match="unknown operator 'like' for 'name'"):
            R.search_records(conn, store.compiled, "company", {"name": {"like": "x"}})


@pytest.mark.parametrize("entity, filters, index", [
    ("company", {"status": "customer"}, "ix_company_status"),
    ("company", {"owner": 1}, "ix_company_owner"),
    ("opportunity", {"expected_close": {"gte": "2026-04-01", "lt": "2026-05-01"}}, "ix_opportunity_expected_close"),
    ("opportunity", {"company": 1}, "ix_opportunity_company"),
])
def test_filters_on_indexed_fields_use_their_index(store: Store, pipeline, entity, filters, index):
    """The filter's SQL must be spelt like the expression index, or the database reads the whole table."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("SELECT") and "count(" not in statement:
            seen.append((statement, parameters))

    with store.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", capture)
        R.search_records(conn, store.compiled, entity, filters)
        sa.event.remove(conn, "before_cursor_execute", capture)
        statement, parameters = seen[-1]
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: ask whether the index CAN be used
            plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).fetchall()
        else:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
    assert index in " ".join(map(str, plan)), (statement, plan)


def test_fields_in_their_own_columns_and_datetimes_in_any_time_zone(store: Store, packs):
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime.plan import apply, plan

    folder = packs.write("ledger", {"invoice.yaml": """
        kind: entity
        name: invoice
        title: "{{ record.number }}"
        fields:
          number: {type: string, required: true, unique: true, column: true}
          issued: {type: date, column: true, indexed: true}
          total: {type: money, column: true}
          sent_at: datetime
    """})
    compiled = compile_model(load([folder]))
    with store.begin() as conn:
        apply(conn, compiled, plan(conn, compiled))
        rows = [("INV-1", "2026-01-31", 10, "2026-02-01T09:00:00+01:00"), ("INV-2", dt.date(2026, 2, 28), "250.5", "2026-02-01T08:30:00Z"),
                ("INV-3", None, None, None)]
        made = [R.create_record(conn, compiled, "invoice", {"number": n, "issued": i, "total": t, "sent_at": s}, None)
                for n, i, t, s in rows]
        with pytest.raises(R.RecordInvalid) as caught:
            R.create_record(conn, compiled, "invoice", {"number": "INV-1", "sent_at": "2026-02-01T09:00:00"}, None)
        assert caught.value.errors == {"number": "Number 'INV-1' is already used by invoice 'INV-1'",
                                       "sent_at": "Sent at must include a time zone, like 2024-05-31T14:30:00+01:00"}
        table = compiled.metadata.tables["invoice"]
        raw = conn.execute(sa.select(table.c.issued, table.c.total).where(table.c.id == made[1].id)).one()

        def find(filters, sort=None):
            return [r.data["number"] for r in R.search_records(conn, compiled, "invoice", filters, sort).items]

        assert find({"issued": {"gte": "2026-02-01"}}) == ["INV-2"]
        assert find({"total": {"gt": 100}}) == ["INV-2"]
        assert find({}, "-total") == ["INV-2", "INV-1", "INV-3"]
        # 08:00 UTC is 09:00 in Paris: both spellings find the same moment
        assert find({"sent_at": "2026-02-01T08:00:00+00:00"}) == ["INV-1"]
        assert find({"sent_at": {"lt": "2026-02-01T09:15:00+01:00"}}, "sent_at") == ["INV-1"]
    assert made[1].data == {"number": "INV-2", "issued": "2026-02-28", "total": "250.50", "sent_at": "2026-02-01T08:30:00+00:00"}
    assert made[0].data["sent_at"] == "2026-02-01T08:00:00+00:00"
    assert (raw.issued, str(raw.total)) == (dt.date(2026, 2, 28), "250.50")


def test_lists_of_choices_are_searched_by_membership(store: Store, packs):
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime.plan import apply, plan

    folder = packs.write("events", {"event.yaml": """
        kind: entity
        name: event
        title: "{{ record.name }}"
        fields:
          name: string
          topics: {type: multichoice, choices: [sales, support, training]}
          seats: integer
    """})
    compiled = compile_model(load([folder]))
    with store.begin() as conn:
        apply(conn, compiled, plan(conn, compiled))
        for name, topics in [("Kick-off", ["sales", "training"]), ("Clinic", ["support"]), ("Social", None)]:
            R.create_record(conn, compiled, "event", {"name": name, "topics": topics}, None)
        with pytest.raises(R.RecordInvalid) as caught:
            R.create_record(conn, compiled, "event", {"name": "Bad", "topics": ["sales", "golf"]}, None)
        assert caught.value.errors == {"topics": "Topics must be one of: Sales, Support, Training"}

        def find(filters):
            return [r.data["name"] for r in R.search_records(conn, compiled, "event", filters).items]

        assert find({"topics": "training"}) == ["Kick-off"]
        assert find({"topics": {"in": ["support", "training"]}}) == ["Kick-off", "Clinic"]
        assert find({"topics": {"empty": True}}) == ["Social"]
        with pytest.raises(R.BadQuery, match="'seats' is an integer field; 'many' is not a value it can be compared with"):
            find({"seats": {"gte": "many"}})
