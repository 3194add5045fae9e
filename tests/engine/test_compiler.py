"""The compiled model: golden files, valid JSON Schemas, DDL that really runs, stable versions."""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from engine.compiler import compile_model, data_expression, outputs
from engine.loader import load
from tests.conftest import ACME, CRM

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
PACKS = {"crm": (CRM,), "crm+acme": (CRM, ACME)}


@pytest.fixture(scope="module")
def compiled():
    return {name: compile_model(load(paths)) for name, paths in PACKS.items()}


@pytest.mark.parametrize("name", sorted(PACKS))
def test_compiled_output_matches_the_golden_files(compiled, name):
    """Any change to compiled output shows up here as a reviewable diff (TAILOR_UPDATE_GOLDEN=1 rewrites)."""
    files = outputs(compiled[name])
    folder = GOLDEN / name
    if os.environ.get("TAILOR_UPDATE_GOLDEN"):
        for old in folder.rglob("*"):
            if old.is_file():
                old.unlink()
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
    expected = {str(p.relative_to(folder)): p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file()}
    assert sorted(files) == sorted(expected)
    for rel in files:
        assert files[rel] == expected[rel], f"{name}/{rel} differs from the golden file"


def test_compiling_twice_gives_identical_bytes():
    assert outputs(compile_model(load([CRM, ACME]))) == outputs(compile_model(load([CRM, ACME])))


def test_every_compiled_schema_is_valid_draft_2020_12(compiled):
    c = compiled["crm+acme"]
    schemas = [*c.entity_schemas.values(), *c.group_schemas.values(), *c.form_schemas.values(),
               *(s["inputs"] for s in c.process_specs.values())]
    assert len(schemas) > 30
    for schema in schemas:
        jsonschema.Draft202012Validator.check_schema(schema)


def test_published_kind_schemas_are_valid_draft_2020_12():
    folder = Path(__file__).resolve().parent.parent.parent / "engine" / "schemas"
    files = sorted(folder.glob("*.schema.json"))
    assert [f.name.split(".")[0] for f in files] == sorted(
        ["calendar", "common", "dashboard", "entity", "form", "group", "labels", "overlay", "pack", "process", "report", "role", "scenario"])
    for f in files:
        jsonschema.Draft202012Validator.check_schema(json.loads(f.read_text()))


def test_form_schema_accepts_a_good_submission_and_names_each_bad_field(compiled):
    schema = compiled["crm+acme"].form_schemas["lead_enquiry"]
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    required = schema["required"]
    assert required, "a lead enquiry requires something"
    good = {}
    for name in required:
        prop = schema["properties"][name]
        good[name] = prop["oneOf"][0]["const"] if "oneOf" in prop else 1 if prop.get("type") == "integer" else "2026-11-23" if prop.get("format") == "date" else "x"
    assert list(validator.iter_errors(good)) == []
    bad = {**good, "no_such_field": 1}
    bad.pop(required[0])
    messages = sorted(e.message for e in validator.iter_errors(bad))
    assert any(required[0] in m for m in messages) and any("no_such_field" in m for m in messages)


def test_acme_overlays_show_in_compiled_output(compiled):
    base, client = compiled["crm"], compiled["crm+acme"]
    assert set(client.form_schemas["lead_enquiry"]["properties"]) > set(base.form_schemas["lead_enquiry"]["properties"])
    base_steps = [s["id"] for s in base.process_specs["lead_follow_up"]["steps"]]
    client_steps = [s["id"] for s in client.process_specs["lead_follow_up"]["steps"]]
    assert len(client_steps) > len(base_steps) and set(base_steps) <= set(client_steps)
    # a changed process is a new version; unchanged ones keep theirs
    assert client.process_specs["lead_follow_up"]["hash"] != base.process_specs["lead_follow_up"]["hash"]
    assert client.process_specs["support_sla"]["hash"] == base.process_specs["support_sla"]["hash"]


def test_process_version_changes_with_a_due_date_only(packs):
    def spec(due: str) -> dict:
        folder = packs.write(f"p_{due.replace(' ', '_')}", {"p.yaml": f"kind: process\nname: p\nsteps:\n  - {{id: a, title: A, due: {due}}}\n"})
        return compile_model(load([folder])).process_specs["p"]

    one, again, two = spec("2 days"), spec("2 days"), spec("3 days")
    assert one["hash"] == again["hash"] and one["hash"] != two["hash"]
    assert one["steps"][0]["due"] == {"duration": {"amount": 172800, "unit": "seconds", "text": "2 days"}, "from": "start"}


def test_a_fallback_travels_in_the_spec_only_where_it_is_given(packs):
    """Specs (and versions) of processes without a fallback stay as they were; a step's and a process's fallback are in it."""
    plain = "kind: process\nname: p\nsteps:\n  - {id: a, title: A, assign: 'user:ann'}\n  - {id: b, title: B}\n"
    given = ("kind: process\nname: p\nfallback: 'user:mia'\nsteps:\n  - {id: a, title: A, assign: 'user:ann', fallback: 'group:sales'}\n"
             "  - {id: b, title: B}\n---\nkind: group\nname: sales\n")
    before = compile_model(load([packs.write("plain", {"p.yaml": plain})])).process_specs["p"]
    after = compile_model(load([packs.write("given", {"p.yaml": given})])).process_specs["p"]
    assert "fallback" not in before and all("fallback" not in s for s in before["steps"])
    assert after["fallback"] == {"kind": "user", "name": "mia"}
    assert [s.get("fallback") for s in after["steps"]] == [{"kind": "group", "name": "sales"}, None]


def engine_for(dialect: str) -> sa.Engine:
    """A real database of the dialect: in-memory SQLite, or the PostgreSQL server (skipped, saying why, if unreachable)."""
    if dialect == "sqlite":
        return sa.create_engine("sqlite://")
    url = os.environ.get("TAILOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    engine = sa.create_engine(url)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {url}: {exc.orig}")
    return engine


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_compiled_tables_create_and_filter_on_indexed_variable_fields(compiled, dialect):
    engine = engine_for(dialect)
    c = compiled["crm+acme"]
    schema_name = None
    if dialect == "postgresql":
        schema_name = "tailor_compile_test"
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {schema_name}"))
        engine = engine.execution_options(schema_translate_map={None: schema_name})
    try:
        c.metadata.create_all(engine)
        company = c.metadata.tables["company"]
        now = dt.datetime.now(dt.timezone.utc)
        row = {"title": "", "record_fields": {}, "created_at": now, "updated_at": now}
        with engine.begin() as conn:
            conn.execute(company.insert(), [
                {**row, "title": "Acme Health", "data": {"name": "Acme Health", "industry": "healthcare", "account_number": "A-1"}},
                {**row, "title": "Shop", "data": {"name": "Shop", "industry": "retail", "account_number": "A-2"}},
            ])
        industry = c.model.entities["company"].field("industry")
        with engine.connect() as conn:
            names = conn.execute(sa.select(company.c.title).where(data_expression(company, industry) == "healthcare")).scalars().all()
        assert names == ["Acme Health"]
        # the unique variable field is enforced by the database itself
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(company.insert(), [{**row, "data": {"name": "Dup", "account_number": "A-1"}}])
    finally:
        if schema_name:
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE"))
