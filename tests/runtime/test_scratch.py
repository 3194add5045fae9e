"""The compiled DDL runs on both databases, a cycle of references between entities included, and `tailor check`
tries it in scratch databases: a statement a database refuses is a located problem."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.compiler import compile_model
from engine.loader import load
from runtime.db import upgrade
from runtime.plan import AddForeignKey, apply, plan
from runtime.scratch import try_ddl
from tests.runtime.conftest import DIALECTS, PG_URL, empty_database

# A group field pointing from company to person while every person references their company: the shape of the
# client pack that made `ddl/postgresql.sql` fail with 'relation "person" does not exist'.
CYCLE = {
    "company.yaml": """
        kind: entity
        name: company
        title: "{{ record.name }}"
        fields:
          name: {type: string, required: true}
          kind: {type: choice, choices: [hospital, clinic]}
        groups:
          hospital:
            when: "record.kind == 'hospital'"
            fields:
              head_of_biomedical: {type: reference, entity: person}
        """,
    "person.yaml": """
        kind: entity
        name: person
        fields:
          name: {type: string, required: true}
          company: {type: reference, entity: company, required: true}
        """,
    "visit.yaml": """
        kind: entity
        name: visit
        fields:
          company: {type: reference, entity: company}
        """,
}


@pytest.fixture
def cycle(packs):
    return compile_model(load([packs.write("cycle", CYCLE)]))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_compiled_ddl_of_a_reference_cycle_runs_as_written(cycle, dialect, tmp_path):
    with empty_database(dialect, tmp_path) as engine, engine.begin() as conn:
        for statement in cycle.ddl_statements(dialect):
            conn.exec_driver_sql(statement.sql)
        tables = set(sa.inspect(conn).get_table_names())
    assert tables == {"company", "person", "visit"}


def test_the_postgresql_ddl_adds_the_cycle_s_foreign_keys_after_the_tables(cycle):
    ddl = cycle.ddl("postgresql")
    creates = [i for i, line in enumerate(ddl.splitlines()) if line.startswith("CREATE TABLE")]
    alters = [line for line in ddl.splitlines() if line.startswith("ALTER TABLE")]
    assert alters == [
        "ALTER TABLE company ADD CONSTRAINT fk_company_head_of_biomedical FOREIGN KEY(head_of_biomedical) REFERENCES person (id) ON DELETE RESTRICT;",
        "ALTER TABLE person ADD CONSTRAINT fk_person_company FOREIGN KEY(company) REFERENCES company (id) ON DELETE RESTRICT;",
    ]
    assert ddl.splitlines().index(alters[0]) > max(creates)
    assert "REFERENCES company (id)" in next(s.sql for s in cycle.ddl_statements("postgresql") if s.sql.startswith("CREATE TABLE visit"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_migrate_creates_a_reference_cycle_and_its_foreign_keys_hold(cycle, dialect, tmp_path):
    with empty_database(dialect, tmp_path) as engine:
        with engine.begin() as conn:
            upgrade(conn)
            ops = plan(conn, cycle)
            assert [op for op in ops if isinstance(op, AddForeignKey)] == [
                AddForeignKey("company", "head_of_biomedical", "person"), AddForeignKey("person", "company", "company")]
            apply(conn, cycle, ops)
        with engine.begin() as conn:
            assert plan(conn, cycle) == []  # nothing left to do
        now = "2026-01-01 00:00:00"
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO company (id, title, data, record_fields, created_at, updated_at) "
                                 "VALUES (1, 'Acme', '{}', '{}', :t, :t)"), {"t": now})
        for table, column in (("company", "head_of_biomedical"), ("person", "company")):
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.execute(sa.text(f"INSERT INTO {table} (title, data, record_fields, created_at, updated_at, {column}) "
                                     f"VALUES ('x', '{{}}', '{{}}', :t, :t, 999)"), {"t": now})


def test_nothing_warns_about_the_cycle(packs, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SQLAlchemy's "Cannot correctly sort tables" would raise here
        compiled = compile_model(load([packs.write("cycle", CYCLE)]))
        compiled.ddl("sqlite"), compiled.ddl("postgresql")
        with empty_database("sqlite", tmp_path) as engine, engine.begin() as conn:
            upgrade(conn)
            apply(conn, compiled, plan(conn, compiled))
    result = _tailor("check", "cycle", "--no-postgres", cwd=packs.root)
    assert result.returncode == 0 and result.stderr == ""


def test_check_tries_the_ddl_on_both_databases(cycle):
    problems, trials = try_ddl(cycle, PG_URL)
    assert problems == []
    assert [(t.dialect, t.ran) for t in trials] == [("sqlite", True), ("postgresql", True)]


# Index names are per database (per schema on PostgreSQL): ix_service_visit_date is the index of service.visit_date
# and of service_visit.date alike, which both databases refuse when the second index is made.
CLASH = {
    "service.yaml": """
        kind: entity
        name: service
        fields:
          visit_date: {type: date, indexed: true}
        """,
    "service_visit.yaml": """
        kind: entity
        name: service_visit
        fields:
          date: {type: date, indexed: true}
        """,
}


def test_a_statement_the_databases_refuse_is_a_located_problem_and_no_traceback(packs):
    packs.write("clash", CLASH)
    result = _tailor("check", "clash", "--postgres", PG_URL, cwd=packs.root)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "clash/service_visit.yaml:4:3: the compiled SQLite DDL for field 'date' of entity 'service_visit' fails: index "
        "ix_service_visit_date already exists (in: CREATE INDEX ix_service_visit_date ON service_visit "
        "(CAST(JSON_EXTRACT(data, '$.\"date\"') AS VARCHAR))) [ddl.sqlite]",
        "clash/service_visit.yaml:4:3: the compiled PostgreSQL DDL for field 'date' of entity 'service_visit' fails: relation "
        "\"ix_service_visit_date\" already exists (in: CREATE INDEX ix_service_visit_date ON service_visit "
        "((CAST(data ->> 'date' AS VARCHAR)))) [ddl.postgresql]",
        "2 problems found",
    ]


def test_names_too_long_for_the_database_are_refused_by_check_before_any_ddl(packs):
    long = "serial_number_of_the_device_as_printed_on_the_plate_at_the_back"
    packs.write("long", {"device.yaml": f"""
        kind: entity
        name: device
        fields:
          {long}: {{type: string, indexed: true}}
          {long}_of_it_all: text
        """})
    result = _tailor("check", "long", "--no-postgres", cwd=packs.root)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"long/device.yaml:4:3: field name '{long}' of entity 'device' is too long for the database: its index 'ix_device_{long}' "
        f"has 73 characters, at most 63 fit (use at most 53 for the field name) [field.name-length]",
        "1 problem found",
    ]


def test_check_says_when_postgresql_is_not_reachable(packs):
    packs.write("cycle", CYCLE)
    result = _tailor("check", "cycle", "--postgres", "postgresql://nobody@127.0.0.1:9/none", cwd=packs.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "  SQLite DDL ran in an in-memory database",
        "  PostgreSQL DDL not run: no server reachable at postgresql://nobody@127.0.0.1:9/none (connection failed: connection to "
        "server at \"127.0.0.1\", port 9 failed: Connection refused)"]


def _tailor(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "tailor"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_tailor_migrate_on_postgresql_creates_the_cycle_without_a_traceback(packs):
    import uuid

    from runtime.db import make_engine
    from tests.runtime.conftest import postgres_unreachable

    assert postgres_unreachable() is None
    packs.write("cycle", CYCLE)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        result = _tailor("migrate", "cycle", "--database-url", url, cwd=packs.root)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert result.stdout.splitlines()[-3:] == [
            "4. add the foreign key company.head_of_biomedical -> person (a cycle of references: once both tables exist)",
            "5. add the foreign key person.company -> company (a cycle of references: once both tables exist)",
            "applied 5 change(s)",
        ]
        again = _tailor("migrate", "cycle", "--database-url", url, "--check", cwd=packs.root)
        assert again.returncode == 0 and again.stdout.strip() == "the database matches the definitions: nothing to do"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
