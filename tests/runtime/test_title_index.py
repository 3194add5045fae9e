"""Every entity table has an index on its title (the search box and the global search read it), and `tailor migrate`
adds it to tables made before it existed."""
from __future__ import annotations

import sqlalchemy as sa

from runtime.db import upgrade
from runtime.plan import apply, describe, index_names, plan


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
        records.create_record(conn, crm, "person", {"company": acme, "first_name": "Grace", "last_name": "Okafor"}, None)
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM person" in statement:
            seen.append((statement, parameters))

    with db.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", capture)
        assert [title for _, title in records.quick_search(conn, crm, "person", "OKA")] == ["Grace Okafor"]  # any case
        sa.event.remove(conn, "before_cursor_execute", capture)
        if db.dialect.name == "sqlite":
            statement, parameters = seen[0]
            detail = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
            assert "COVERING INDEX ix_person_title" in detail, detail
