"""`tailor migrate` as a consultant runs it: --plan, apply, --check."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from admin.cli import main
from runtime.db import head_revision

ENTITY = "kind: entity\nname: account\nfields:\n  name: {type: string, indexed: true}\n  size: string\n"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("TAILOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("TAILOR_PACKS", raising=False)

    def invoke(*args: str):
        return CliRunner().invoke(main, ["migrate", *args], catch_exceptions=False)

    return invoke


def test_plan_apply_check(run, packs, tmp_path):
    folder = str(packs.write("p", {"account.yaml": ENTITY}))
    result = run(folder, "--check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"1. upgrade the platform tables from nothing to {head_revision()}",
                                          "2. create table account (2 fields, indexes on name)"]
    assert "the database has drifted from the definitions: 2 change(s) to apply" in result.stderr

    planned = run(folder, "--plan")
    assert planned.exit_code == 0 and planned.stdout == result.stdout

    applied = run(folder)
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines() == [f"upgraded the platform tables from nothing to {head_revision()}",
                                           "1. create table account (2 fields, indexes on name)", "applied 1 change(s)"]
    assert (tmp_path / "var" / "tailor.db").exists()

    clean = run(folder, "--check")
    assert clean.exit_code == 0 and clean.stdout == "the database matches the definitions: nothing to do\n"

    packs.write("p", {"account.yaml": ENTITY.replace("  size: string\n", "  size: string\n  region: string\n")})
    drifted = run(folder, "--check")
    assert drifted.exit_code == 1
    assert drifted.stdout == "1. add field account.region (string): inside data, no table rewrite\n"
    assert run(folder).exit_code == 0 and run(folder, "--check").exit_code == 0


def test_refused_changes_and_broken_definitions_exit_1(run, packs, tmp_path):
    from engine.compiler import compile_model
    from engine.loader import load
    from runtime import records
    from runtime.db import make_engine

    folder = packs.write("p", {"account.yaml": ENTITY})
    assert run(str(folder)).exit_code == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'tailor.db'}")
    with engine.begin() as conn:
        rec = records.create_record(conn, compile_model(load([folder])), "account", {"name": "A", "size": "big"}, None)
    engine.dispose()
    packs.write("p", {"account.yaml": ENTITY.replace("size: string", "size: integer")})
    refused = run(str(folder), "--plan")
    assert refused.exit_code == 1
    assert refused.stderr.splitlines() == [
        "1 change cannot be applied:",
        f"  - account.size: 1 record has values that do not convert to integer: ids {rec.id} (e.g. id {rec.id}: 'big': "
        f"not a whole number); change those records first or keep the old definition"]
    assert run(str(folder)).exit_code == 1

    packs.write("p", {"account.yaml": "kind: entity\nname: account\nfields: {x: {type: reference}}\n"})
    broken = run(str(folder))
    assert broken.exit_code == 1 and broken.stderr.endswith("1 problem found\n")
