"""Index builds in a schema plan: on PostgreSQL they run concurrently after the plan's transaction (record writes go on),
an index a build left invalid or missing is built again by the next plan; on SQLite the plan says how long a build will
take (it blocks writers there)."""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from engine.compiler import CompiledModel, compile_model
from engine.loader import load
from runtime import records as R
from runtime.db import upgrade
from runtime.plan import (
    IndexBuildFailed,
    apply,
    build_indexes,
    describe,
    index_names,
    invalid_indexes,
    plan,
)
from tests.runtime.conftest import empty_database

BEFORE = """\
kind: entity
name: account
title: "{{ record.name }}"
fields:
  name: {type: string, required: true}
  region: string
"""
INDEXED = BEFORE.replace("  region: string", "  region: {type: string, indexed: true}")
UNIQUE = BEFORE.replace("  region: string", "  region: {type: string, unique: true}")


def compiled(packs, text: str) -> CompiledModel:
    return compile_model(load([packs.write("p", {"account.yaml": text})]))


def lines(ops) -> list[str]:
    return [line.split(". ", 1)[1] for line in describe(ops)]


def migrate(engine: sa.Engine, model: CompiledModel) -> list:
    """What `tailor migrate` does: the plan in one transaction, then the index builds left for after it."""
    later: list = []
    with engine.begin() as conn:
        ops = plan(conn, model)
        apply(conn, model, ops, later=later)
    build_indexes(engine, later)
    return ops


def add_accounts(engine: sa.Engine, model: CompiledModel, regions: list[str | None]) -> None:
    with engine.begin() as conn:
        for i, region in enumerate(regions):
            R.create_record(conn, model, "account", {"name": f"Account {i}", **({"region": region} if region else {})}, None)


def bulk_accounts(engine: sa.Engine, n: int) -> None:
    """n accounts in one statement (the plan's estimate only needs rows to count and sample)."""
    data = "'{\"name\": \"Account ' || x || '\", \"region\": \"r' || (x - x / 50 * 50) || '\"}'"
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            data = f"CAST({data} AS jsonb)"
        conn.exec_driver_sql(
            f"INSERT INTO account (title, data, record_fields, row_version, created_at, updated_at) SELECT 'Account ' || x, {data}, "
            "'{}', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
            f"WHERE x < {n}) SELECT x FROM n) AS numbers")


@pytest.fixture
def pg(tmp_path):
    with empty_database("postgresql", tmp_path) as engine:
        with engine.begin() as conn:
            upgrade(conn)
        yield engine


@pytest.fixture
def lite(tmp_path):
    with empty_database("sqlite", tmp_path) as engine:
        with engine.begin() as conn:
            upgrade(conn)
        yield engine


def _waiting_build(engine: sa.Engine) -> bool:
    """Whether an index build on this schema's account table is running and waiting for a lock."""
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity a WHERE a.query LIKE 'CREATE %INDEX%' "
            "AND a.wait_event_type = 'Lock' AND a.pid IN (SELECT pid FROM pg_locks WHERE relation = to_regclass('account'))"
        )).scalar())


def test_postgresql_builds_an_index_while_records_are_written(pg, packs):
    """The build waits for a writer that was there before it; meanwhile another session writes a record, within a lock
    timeout that a build holding its lock (a plain CREATE INDEX) would make it hit."""
    before, after = compiled(packs, BEFORE), compiled(packs, INDEXED)
    migrate(pg, before)
    add_accounts(pg, before, ["north", "south"])
    early = pg.connect()
    early_tx = early.begin()  # a writer that began before the build: the build waits for it to finish
    R.create_record(early, before, "account", {"name": "Early"}, None)
    later: list = []
    with pg.begin() as conn:
        ops = plan(conn, after)
        apply(conn, after, ops, later=later)
    assert [b.name for b in later] == ["ix_account_region"]
    errors: list[BaseException] = []

    def build():
        try:
            build_indexes(pg, later)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    try:
        deadline = time.monotonic() + 30
        while not _waiting_build(pg) and builder.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_build(pg), "the build should be running, waiting for the earlier writer"
        with pg.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '3s'")
            written = R.create_record(conn, after, "account", {"name": "During", "region": "east"}, None).id
        assert builder.is_alive() and _waiting_build(pg), "the record was written while the index was being built"
        with pg.connect() as conn:  # the field can be searched without its index
            assert [r.id for r in R.search_records(conn, after, "account", {"region": "east"}).items] == [written]
    finally:
        early_tx.commit()
        early.close()
        builder.join()
    assert errors == []
    with pg.connect() as conn:
        assert "ix_account_region" in index_names(conn, "account") and invalid_indexes(conn, "account") == set()
        assert plan(conn, after) == []


def test_an_invalid_index_left_by_a_failed_build_is_dropped_and_rebuilt(pg, packs):
    model = compiled(packs, INDEXED)
    migrate(pg, model)
    add_accounts(pg, model, ["north", "north", "south"])
    with pg.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("DROP INDEX ix_account_region")
        with pytest.raises(sa.exc.IntegrityError):  # a concurrent build that fails leaves its index behind, invalid
            conn.exec_driver_sql("CREATE UNIQUE INDEX CONCURRENTLY ix_account_region ON account ((data ->> 'region'))")
        assert invalid_indexes(conn, "account") == {"ix_account_region"}
    with pg.connect() as conn:
        assert lines(plan(conn, model)) == [
            "index ix_account_region is invalid (an earlier build did not finish): will rebuild index ix_account_region on account.region"]
    migrate(pg, model)
    with pg.connect() as conn:
        assert invalid_indexes(conn, "account") == set() and "ix_account_region" in index_names(conn, "account")
        assert plan(conn, model) == []
        assert R.search_records(conn, model, "account", {"region": "north"}).total == 2


def test_a_failed_concurrent_build_leaves_nothing_invalid_and_the_next_plan_retries(pg, packs):
    before, unique = compiled(packs, BEFORE), compiled(packs, UNIQUE)
    migrate(pg, before)
    add_accounts(pg, before, ["north", "south"])
    later: list = []
    with pg.begin() as conn:
        apply(conn, unique, plan(conn, unique), later=later)
    with pg.begin() as conn:  # a duplicate written between the plan's check and the build
        conn.exec_driver_sql("UPDATE account SET data = jsonb_set(data, '{region}', '\"north\"')")
    with pytest.raises(IndexBuildFailed) as failed:
        build_indexes(pg, later)
    message = str(failed.value)
    assert "index ix_account_region on account.region: could not create unique index" in message
    assert "its invalid leftover is dropped" in message and "retries" in message
    with pg.connect() as conn:
        assert invalid_indexes(conn, "account") == set() and "ix_account_region" not in index_names(conn, "account")
        with pytest.raises(Exception, match="cannot become unique: 2 records share values"):
            plan(conn, unique)  # the retry, refused until the values differ
    with pg.begin() as conn:
        conn.exec_driver_sql("UPDATE account SET data = jsonb_set(data, '{region}', to_jsonb(title))")
    with pg.connect() as conn:
        assert lines(plan(conn, unique)) == [
            "index ix_account_region is missing (an earlier build did not finish): will build unique index ix_account_region on account.region"]
    migrate(pg, unique)
    with pg.connect() as conn:
        assert "ix_account_region" in index_names(conn, "account") and plan(conn, unique) == []


def test_the_sqlite_plan_says_how_long_an_index_build_takes_and_that_writers_wait(lite, packs):
    before, after = compiled(packs, BEFORE), compiled(packs, INDEXED)
    migrate(lite, before)
    bulk_accounts(lite, 2000)
    with lite.connect() as conn:
        ops = plan(conn, after)
    assert lines(ops) == [("add index ix_account_region on account.region: 2,000 records, under a second to build, "
                          "during which record writes wait (SQLite has one writer)")]
    migrate(lite, after)
    with lite.connect() as conn:
        assert "ix_account_region" in index_names(conn, "account") and plan(conn, after) == []
        assert R.search_records(conn, after, "account", {"region": "r7"}).total == 40


def test_the_postgresql_plan_says_the_build_runs_concurrently(pg, packs):
    before, after = compiled(packs, BEFORE), compiled(packs, INDEXED)
    migrate(pg, before)
    bulk_accounts(pg, 2000)
    with pg.begin() as conn:
        conn.exec_driver_sql("ANALYZE account")  # the plan counts records from the planner's statistics
        ops = plan(conn, after)
    assert lines(ops) == [("add index ix_account_region on account.region: 2,000 records, under a second to build, concurrently "
                          "after the other changes commit (record writes go on; queries on region work without it, only "
                          "slower, until it is built)")]


def test_tailor_migrate_on_postgresql_builds_the_index_after_the_commit_and_check_sees_an_invalid_one(pg, packs, monkeypatch):
    from click.testing import CliRunner

    from admin.cli import main

    monkeypatch.delenv("TAILOR_PACKS", raising=False)
    with pg.connect() as conn:  # the test's own schema, which the command must use too
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    assert schema.startswith("t_")
    url = f"{pg.url.render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}"
    folder = packs.write("p", {"account.yaml": BEFORE})

    def tailor(*args: str):
        return CliRunner().invoke(main, ["migrate", str(folder), "--database-url", url, *args], catch_exceptions=False)

    assert tailor().exit_code == 0
    packs.write("p", {"account.yaml": INDEXED})
    applied = tailor()
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines() == ["1. add index ix_account_region on account.region",
                                           "building 1 index concurrently (record writes go on) ...", "applied 1 change(s)"]
    with pg.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert "ix_account_region" in index_names(conn, "account") and invalid_indexes(conn, "account") == set()
        conn.exec_driver_sql("UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass('ix_account_region')")
    drifted = tailor("--check")
    assert drifted.exit_code == 1 and drifted.stdout.splitlines() == [
        "1. index ix_account_region is invalid (an earlier build did not finish): will rebuild index ix_account_region on account.region"]
    assert tailor().exit_code == 0 and tailor("--check").exit_code == 0
