"""Definition changes as plans, on SQLite and PostgreSQL: each test applies a 'before' pack,
changes it to an 'after' pack, and compares the whole plan (printed in full on failure)."""
from __future__ import annotations

import textwrap

import pytest
import sqlalchemy as sa

from engine.compiler import CompiledModel, compile_model
from engine.errors import MigrationError
from engine.loader import load
from runtime import records as R
from runtime.db import upgrade
from runtime.plan import AddField, MigrationRefused, apply, describe, diff, index_names, plan, read_state
from tests.runtime.conftest import add_user

BASE = """
kind: entity
name: account
title: "{{ record.name }}"
fields:
  name: {type: string, required: true, indexed: true}
  employees: string
  tier: {type: choice, choices: [gold, silver, bronze]}
  notes: text
  parent: {type: reference, entity: org}
"""
ORG = "kind: entity\nname: org\nfields:\n  name: string\n"


class Packs:
    """One pack, rewritten between 'before' and 'after'."""

    def __init__(self, packs):
        self.packs = packs

    def compile(self, account: str, org: str = ORG, **more: str) -> CompiledModel:
        files = {"account.yaml": textwrap.dedent(account).lstrip("\n"), "org.yaml": org,
                 **{f"{k}.yaml": textwrap.dedent(v).lstrip("\n") for k, v in more.items()}}
        folder = self.packs.write("p", files)
        for old in folder.glob("*.yaml"):
            if old.name != "pack.yaml" and old.name not in files:
                old.unlink()
        return compile_model(load([folder]))


@pytest.fixture
def pack(packs) -> Packs:
    return Packs(packs)


@pytest.fixture
def platform(db):
    upgrade(db)
    return db


def assert_plan(ops, expected: list[str]) -> None:
    lines = [line.split(". ", 1)[1] for line in describe(ops)]
    if lines != expected:
        pytest.fail("the plan differs from the expected one\n\nplan:\n" + "\n".join(describe(ops)) +
                    "\n\nexpected:\n" + "\n".join(f"{i}. {e}" for i, e in enumerate(expected, 1)), pytrace=False)


def migrate(engine, compiled: CompiledModel) -> list:
    with engine.begin() as conn:
        ops = plan(conn, compiled)
        apply(conn, compiled, ops)
        assert plan(conn, compiled) == [], "a second plan right after applying must be empty"
    return ops


def raw(engine, table: str, record_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(f"SELECT * FROM {table} WHERE id = :id"), {"id": record_id}).mappings().one())


def data_of(engine, table: str, record_id: int) -> dict:
    import json

    data = raw(engine, table, record_id)["data"]
    return json.loads(data) if isinstance(data, str) else data


def accounts(engine, compiled, rows: list[dict]) -> list[int]:
    with engine.begin() as conn:
        org = R.create_record(conn, compiled, "org", {"name": "Parent"}, None).id
        return [R.create_record(conn, compiled, "account", {"parent": org, **row}, None).id for row in rows]


# -- creating ------------------------------------------------------------------------------------


def test_a_new_database_gets_every_table_referenced_ones_first(platform, pack):
    compiled = pack.compile(BASE)
    ops = migrate(platform, compiled)
    assert_plan(ops, ["create table org (1 fields)",
                      "create table account (5 fields, indexes on name, parent)"])
    with platform.connect() as conn:
        state = read_state(conn)
        assert set(sa.inspect(conn).get_table_names()) >= {"org", "account"}
    assert state["account"].fields["name"] == {"type": "string", "column": False, "index": "index", "scope": "all"}
    assert state["account"].fields["parent"] == {"type": "reference", "column": True, "index": "index", "scope": "all", "entity": "org"}
    assert state["account"].schema == compiled.entity_schemas["account"]


def test_tables_made_without_a_plan_are_adopted(platform, pack):
    compiled = pack.compile(BASE)
    compiled.metadata.create_all(platform)
    assert_plan(migrate(platform, compiled), ["take the existing table org as it is (no state was recorded for it)",
                                              "take the existing table account as it is (no state was recorded for it)"])


def test_an_adopted_table_gets_the_columns_and_indexes_it_lacks(platform, pack):
    pack.compile(BASE).metadata.create_all(platform)  # made by an older version of the definitions, without a plan
    newer = pack.compile(BASE + "  region: {type: string, indexed: true}\n  owner_org: {type: reference, entity: org}\n")
    assert_plan(migrate(platform, newer), [
        "take the existing table org as it is (no state was recorded for it)",
        "take the existing table account as it is (no state was recorded for it)",
        "add index ix_account_region on account.region",
        "add field account.owner_org (reference): a new nullable column",
        "add index ix_account_owner_org on account.owner_org",
    ])


# -- adding ----------------------------------------------------------------------------------------


def test_adding_fields_rewrites_nothing(platform, pack):
    migrate(platform, pack.compile(BASE))
    before = pack.compile(BASE)
    [kept] = accounts(platform, before, [{"name": "Kept", "employees": "12"}])
    row_before = raw(platform, "account", kept)
    after = pack.compile(BASE + """
  region: {type: string, indexed: true}
  website: url
  owner_org: {type: reference, entity: org, label: Owning organisation}
groups:
  big:
    when: "record.tier == 'gold'"
    fields:
      sponsor: string
""")
    ops = migrate(platform, after)
    assert_plan(ops, [
        "add field account.region (string): inside data, no table rewrite",
        "add index ix_account_region on account.region",
        "add field account.website (url): inside data, no table rewrite",
        "add field account.owner_org (reference): a new nullable column",
        "add index ix_account_owner_org on account.owner_org",
        "add field account.sponsor (string): inside data, no table rewrite",
    ])
    assert raw(platform, "account", kept) == {**row_before, "owner_org": None}  # the old row is as it was
    with platform.begin() as conn:
        org = R.create_record(conn, after, "org", {"name": "Owner"}, None).id
        new = R.create_record(conn, after, "account", {"name": "New", "region": "north", "owner_org": org, "tier": "gold",
                                                       "sponsor": "Sam"}, None)
        found = R.search_records(conn, after, "account", {"region": "north"})
    assert [r.id for r in found.items] == [new.id] and new.data["owner_org"] == org


# -- removing --------------------------------------------------------------------------------------


def test_removing_a_field_hides_it_and_adding_it_back_restores_the_values(platform, pack):
    migrate(platform, pack.compile(BASE))
    [acc] = accounts(platform, pack.compile(BASE), [{"name": "Acme", "notes": "Prefers email", "employees": "5"}])
    without = pack.compile(BASE.replace("  notes: text\n", "").replace("required: true, indexed: true", "required: true"))
    assert_plan(migrate(platform, without), [
        "drop index ix_account_name (the values stay)",
        "remove field account.notes: hidden, nothing deleted (its values stay in data; adding the field back restores them)",
    ])
    assert data_of(platform, "account", acc)["notes"] == "Prefers email"
    with platform.begin() as conn:
        hidden = R.get_record(conn, without, "account", acc)
        assert "notes" not in hidden.data
        R.update_record(conn, without, "account", acc, {"employees": "6"}, None)  # hidden values survive updates
    assert data_of(platform, "account", acc)["notes"] == "Prefers email"
    assert_plan(migrate(platform, pack.compile(BASE)), [
        "add index ix_account_name on account.name",
        "add field account.notes (text): inside data, no table rewrite; brings back the values kept when it was removed",
    ])
    with platform.connect() as conn:
        assert R.get_record(conn, pack.compile(BASE), "account", acc).data["notes"] == "Prefers email"


def test_a_removed_entity_keeps_its_table(platform, pack):
    migrate(platform, pack.compile(BASE, extra="kind: entity\nname: legacy\nfields: {code: string}\n"))
    assert_plan(migrate(platform, pack.compile(BASE)),
                ["entity legacy is no longer defined: its table and records are kept, hidden"])
    with platform.connect() as conn:
        assert "legacy" in sa.inspect(conn).get_table_names()


# -- renaming ----------------------------------------------------------------------------------------


def test_a_declared_rename_moves_the_values(platform, pack):
    migrate(platform, pack.compile(BASE))
    ids = accounts(platform, pack.compile(BASE), [{"name": "Acme", "notes": "A"}, {"name": "Beta", "tier": "gold"},
                                                   {"name": "Gamma"}])
    renamed = pack.compile(BASE.replace("  name: {type: string, required: true, indexed: true}",
                                        "  full_name: {type: string, required: true, indexed: true, renamed_from: name}")
                               .replace("  parent: {type: reference, entity: org}",
                                        "  holding: {type: reference, entity: org, renamed_from: parent}")
                               .replace('"{{ record.name }}"', '"{{ record.full_name }}"'))
    assert_plan(migrate(platform, renamed), [
        "drop index ix_account_name (the values stay)",
        "drop index ix_account_parent (the values stay)",
        "rename field account.name to full_name (declared with renamed_from): move each record's value to the new key (one UPDATE)",
        "rename field account.parent to holding (declared with renamed_from): rename the column",
        "add index ix_account_full_name on account.full_name",
        "add index ix_account_holding on account.holding",
    ])
    assert data_of(platform, "account", ids[0]) == {"full_name": "Acme", "notes": "A"}
    with platform.connect() as conn:
        found = R.search_records(conn, renamed, "account", {"full_name": "Beta"})
        assert [r.id for r in found.items] == [ids[1]]
        assert found.items[0].data == {"full_name": "Beta", "tier": "gold", "holding": found.items[0].data["holding"]}
        indexes = index_names(conn, "account")
    assert {"ix_account_full_name", "ix_account_holding"} <= indexes and not {"ix_account_name", "ix_account_parent"} & indexes


# -- changing types -------------------------------------------------------------------------------------


def test_a_type_change_converts_every_value(platform, pack):
    migrate(platform, pack.compile(BASE))
    ids = accounts(platform, pack.compile(BASE), [{"name": "A", "employees": "12"}, {"name": "B", "employees": " 40 "},
                                                  {"name": "C"}])
    typed = pack.compile(BASE.replace("  employees: string", "  employees: {type: integer, indexed: true}"))
    assert_plan(migrate(platform, typed), [
        "change the type of account.employees from string to integer: convert each value; refused if any does not convert",
        "add index ix_account_employees on account.employees",
    ])
    assert [data_of(platform, "account", i).get("employees") for i in ids] == [12, 40, None]
    with platform.connect() as conn:
        assert [r.data["name"] for r in R.search_records(conn, typed, "account", {"employees": {"gt": 20}}).items] == ["B"]


def test_a_type_change_is_refused_naming_the_records_that_do_not_convert(platform, pack):
    migrate(platform, pack.compile(BASE))
    ids = accounts(platform, pack.compile(BASE), [{"name": "A", "employees": "12"}, {"name": "B", "employees": "about 40"},
                                                  {"name": "C", "employees": "1.5"}])
    typed = pack.compile(BASE.replace("  employees: string", "  employees: integer"))
    with platform.connect() as conn, pytest.raises(MigrationRefused) as caught:
        plan(conn, typed)
    assert caught.value.reasons == [
        f"account.employees: 2 records have values that do not convert to integer: ids {ids[1]}, {ids[2]} "
        f"(e.g. id {ids[1]}: 'about 40': not a whole number); change those records first or keep the old definition"]
    assert isinstance(caught.value, MigrationError) and str(caught.value).startswith("1 change cannot be applied:\n  - account.employees")
    with platform.begin() as conn:  # fix one record, the other is still named
        R.update_record(conn, pack.compile(BASE), "account", ids[1], {"employees": "40"}, None)
    with platform.connect() as conn, pytest.raises(MigrationRefused, match=rf"1 record has values .*: ids {ids[2]} "):
        plan(conn, typed)


def test_removing_a_choice_still_in_use_is_refused(platform, pack):
    migrate(platform, pack.compile(BASE))
    ids = accounts(platform, pack.compile(BASE), [{"name": "A", "tier": "gold"}, {"name": "B", "tier": "bronze"}])
    fewer = pack.compile(BASE.replace("[gold, silver, bronze]", "[gold, silver]"))
    with platform.connect() as conn, pytest.raises(MigrationRefused) as caught:
        plan(conn, fewer)
    assert caught.value.reasons == [f"account.tier: 1 record has a value that is no longer a choice: ids {ids[1]} "
                                    f"(e.g. id {ids[1]}: 'bronze': must be one of: Gold, Silver); "
                                    f"change those records first or keep the old definition"]
    with platform.begin() as conn:
        R.update_record(conn, pack.compile(BASE), "account", ids[1], {"tier": "silver"}, None)
    assert_plan(migrate(platform, fewer), [
        "restrict the choices of account.tier (no longer: bronze); refused if a record still has one"])


def test_making_a_field_unique_is_refused_while_values_repeat(platform, pack):
    migrate(platform, pack.compile(BASE))
    ids = accounts(platform, pack.compile(BASE), [{"name": "Same"}, {"name": "Other"}, {"name": "Same"}])
    unique = pack.compile(BASE.replace("required: true, indexed: true", "required: true, unique: true"))
    with platform.connect() as conn, pytest.raises(MigrationRefused) as caught:
        plan(conn, unique)
    assert caught.value.reasons == [f"account.name cannot become unique: 2 records share values: ids {ids[0]}, {ids[2]}; "
                                    f"make their values different first"]


def test_moving_a_field_into_its_own_column_is_refused(platform, pack):
    migrate(platform, pack.compile(BASE))
    moved = pack.compile(BASE.replace("  notes: text", "  notes: {type: text, column: true}"))
    with platform.connect() as conn, pytest.raises(MigrationRefused, match="account.notes: moving a field between its own column"):
        plan(conn, moved)


def test_the_diff_is_pure_and_names_every_refusal_at_once(pack):
    before = pack.compile(BASE)
    from runtime.plan import entity_state

    states = {n: entity_state(before, n) for n in before.model.entities}
    after = pack.compile(BASE.replace("  notes: text", "  notes: {type: text, column: true}")
                         .replace("  parent: {type: reference, entity: org}", "  parent: {type: reference, entity: account}"))
    with pytest.raises(MigrationRefused) as caught:
        diff(states, after)
    assert [r.split(":")[0] for r in caught.value.reasons] == ["account.notes", "account.parent"]
    assert diff(states, before) == []
    assert diff({}, before)[0].describe() == "create table org (1 fields)"
    assert AddField("account", "x", "string").describe() == "add field account.x (string): inside data, no table rewrite"


def test_the_crm_pack_migrates_and_then_has_nothing_to_do(platform, crm, crm_acme):
    migrate(platform, crm)
    with platform.begin() as conn:
        user = add_user(conn, "carol")
        co = R.create_record(conn, crm, "company", {"name": "Hospital", "industry": "healthcare", "owner": user}, user)
    ops = migrate(platform, crm_acme)  # the client pack adds two healthcare fields
    assert_plan(ops, ["add field company.cqc_location_id (string): inside data, no table rewrite",
                      "add field company.beds (integer): inside data, no table rewrite"])
    with platform.begin() as conn:
        up = R.update_record(conn, crm_acme, "company", co.id, {"beds": 120}, user)
    assert up.data["beds"] == 120
