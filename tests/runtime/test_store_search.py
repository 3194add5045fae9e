"""The search parts the directory and the global search use, on SQLite and PostgreSQL: the title index (and
`tailor migrate` adding it to older tables), sorting as pages show values, several conditions on one field, a
condition on any of several fields, own fields compared as numbers."""
from __future__ import annotations

import sqlalchemy as sa

from runtime.db import upgrade
from runtime.plan import apply, describe, index_names, plan
from tests.runtime.conftest import add_user


def test_migrate_adds_the_title_index_to_tables_made_without_it_then_has_nothing_to_do(db, crm):
    upgrade(db)
    with db.begin() as conn:
        apply(conn, crm, plan(conn, crm))
        assert "ix_person_title" in index_names(conn, "person")
        # a database migrated before titles were indexed
        conn.exec_driver_sql("DROP INDEX ix_person_title")
        conn.exec_driver_sql("DROP INDEX ix_company_title")
    with db.begin() as conn:
        ops = plan(conn, crm)
        assert [line.split(". ", 1)[1] for line in describe(ops)] == [
            "add index ix_company_title on company.title", "add index ix_person_title on person.title"]
        apply(conn, crm, ops)
    with db.begin() as conn:
        assert {"ix_person_title", "ix_company_title"} <= index_names(conn, "person") | index_names(conn, "company")
        assert plan(conn, crm) == []


def test_the_global_search_reads_the_title_index_not_the_table(db, crm):
    """On SQLite the title search scans the narrow title index (title and id), never the records with their data."""
    from runtime import records

    upgrade(db)
    with db.begin() as conn:
        apply(conn, crm, plan(conn, crm))
        acme = records.create_record(conn, crm, "company", {"name": "Acme"}, None).id
        records.create_record(conn, crm, "person", {"company": acme, "first_name": "Grace", "last_name": "Okafor",
                                                      "email": "grace@okafor.example"}, None)
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM person" in statement:
            seen.append((statement, parameters))

    with db.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", capture)
        # the person's search fields: first_name (no index: left out), last_name (indexed: looked up), email (indexed,
        # but "OKA" is no email address: left out)
        assert [title for _, title in records.quick_search(conn, crm, "person", "OKA", exact=("first_name", "last_name", "email"))
                ] == ["Grace Okafor"]  # any case
        assert [title for _, title in records.quick_search(conn, crm, "person", "grace@okafor.example", exact=("email",))
                ] == ["Grace Okafor"]  # an exact email address: through the email index
        sa.event.remove(conn, "before_cursor_execute", capture)
        if db.dialect.name == "sqlite":
            plans = [" ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
                     for statement, parameters in seen]
            assert "COVERING INDEX ix_person_title" in plans[0], plans
            assert plans[1:] == ["SEARCH person USING INDEX ix_person_last_name (<expr>=?)",
                                 "SCAN person USING COVERING INDEX ix_person_title",
                                 "SEARCH person USING INDEX ix_person_email (<expr>=?)"], plans


def test_sorting_as_shown_orders_users_by_name_references_by_title_and_choices_as_defined(store):
    from runtime import records as R

    with store.begin() as conn:
        zed = add_user(conn, "zed")  # the newest user, so the highest id, yet first in reverse name order
        made = {}
        for name, owner, status in [("B", zed, "customer"), ("C", store.alice, "former"), ("A", store.bob, "prospect")]:
            made[name] = R.create_record(conn, store.compiled, "company", {"name": name, "status": status, "owner": owner}, None).id
        for first, company in [("Pat", "C"), ("Sam", "A"), ("Kim", "B")]:
            R.create_record(conn, store.compiled, "person", {"first_name": first, "last_name": "X", "company": made[company]}, None)

    def order(entity, sort, **kw):
        with store.connect() as conn:
            return [r.title for r in R.search_records(conn, store.compiled, entity, sort=sort, as_shown=True, **kw).items]

    assert order("company", "owner") == ["C", "A", "B"]        # Alice, Bob, Zed
    assert order("company", "-owner") == ["B", "A", "C"]
    assert order("company", "status") == ["A", "B", "C"]       # prospect, customer, former: the definition's order
    assert order("person", "company") == ["Sam X", "Kim X", "Pat X"]  # by the company's name A, B, C
    with store.connect() as conn:
        stored_order = [r.title for r in R.search_records(conn, store.compiled, "company", sort="status").items]
    assert stored_order == ["B", "C", "A"]  # without as_shown: the stored values (customer, former, prospect)


def test_two_conditions_on_one_field_any_of_several_fields_and_own_fields_as_numbers(store):
    from runtime import records as R

    with store.begin() as conn:
        ids = {}
        for name, town, beds in [("North Clinic", "Leeds", 99), ("South Clinic", "Hull", 120), ("Leeds Dental", None, 1000)]:
            ids[name] = R.create_record(conn, store.compiled, "company", {"name": name, "town": town}, None).id
            R.add_record_field(conn, store.compiled, "company", ids[name], "beds", "integer", "Beds", beds, store.alice)
        other = R.create_record(conn, store.compiled, "company", {"name": "Odd One"}, None).id
        R.add_record_field(conn, store.compiled, "company", other, "beds", "string", "Beds", "about 50", store.alice)

    def find(filters):
        with store.connect() as conn:
            return [r.title for r in R.search_records(conn, store.compiled, "company", filters, sort="title").items]

    assert find([("title", {"contains": "clinic"}), ("title", {"contains": "north"})]) == ["North Clinic"]
    assert find([(("title", "town"), {"contains": "leeds"})]) == ["Leeds Dental", "North Clinic"]
    assert find({"record_fields.beds": {"gt": "100"}}) == ["Leeds Dental", "South Clinic"]  # 99 < 100 as numbers, not as text
    assert find({"record_fields.beds": {"lt": 1000}}) == ["North Clinic", "South Clinic"]  # text that is no number: left out
