"""Demo data per pack (`demo/*.yaml`), loaded by `tailor run --demo`: every active pack's, in pack order, each once per
version; a broken demo file is reported at its lines and loads nothing."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admin import demo
from engine.compiler import compile_model
from engine.loader import load
from runtime.history import list_history
from runtime.schema import group_members, idempotency_keys, users
from runtime.schema import metadata as platform
from tests.admin.test_cli import TAILOR
from tests.conftest import ACME, CRM, ROOT


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch):
    """Demo passwords hashed cheaply (the log-in verifies with each hash's own parameters)."""
    monkeypatch.setattr(demo, "PasswordHasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def installation(*packs):
    compiled = compile_model(load(packs))
    engine = sa.create_engine("sqlite://")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    return engine, compiled


def counts(engine, compiled) -> dict[str, int]:
    with engine.connect() as conn:
        out = {"users": conn.execute(sa.select(sa.func.count()).select_from(users)).scalar()}
        for entity in ("company", "opportunity", "person"):
            out[entity] = conn.execute(sa.select(sa.func.count()).select_from(compiled.metadata.tables[entity])).scalar()
    return out


def company(engine, compiled, title: str):
    table = compiled.metadata.tables["company"]
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.title == title)).mappings().one()


def test_the_demo_of_every_pack_is_loaded_in_pack_order_and_once(tmp_path):
    engine, compiled = installation(CRM, ACME)
    loaded = demo.load_demo(engine, compiled)
    assert loaded.packs == ["crm 1.0.0", "acme 1.0.0"]
    assert len(loaded.starts) == 2  # the CRM demo's lead follow-up, and what its support request's trigger starts
    hospital = company(engine, compiled, "St Mary's Hospital")
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
        credit = conn.execute(sa.select(group_members.c.user_id, group_members.c.manager)
                              .where(group_members.c.group_name == "credit_control")).all()
        history = [h.summary for h in list_history(conn, "company", hospital["id"])]
    # acme's hospital has acme's healthcare fields and is owned by the CRM demo's Ann
    assert (hospital["data"]["beds"], hospital["data"]["cqc_location_id"], hospital["data"]["owner"]) == (420, "1-1234567890", ids["ann"])
    assert sorted(credit) == [(ids["carl"], False), (ids["fay"], True)]
    assert "Phone call: tender for ward monitors" in history
    before = counts(engine, compiled)
    assert before == {"users": 12, "company": 4, "opportunity": 9, "person": 2}

    again = demo.load_demo(engine, compiled)
    assert again == demo.Loaded([], [])
    assert counts(engine, compiled) == before


def test_a_pack_added_later_loads_its_demo_on_the_demo_loaded_before(tmp_path):
    engine, crm = installation(CRM)
    assert demo.load_demo(engine, crm).packs == ["crm 1.0.0"]
    _, both = installation(CRM, ACME)
    assert demo.load_demo(engine, both).packs == ["acme 1.0.0"]
    assert counts(engine, both)["users"] == 12


def test_a_new_version_of_a_packs_demo_adds_what_is_new_and_duplicates_nothing(tmp_path):
    engine, compiled = installation(CRM, ACME)
    demo.load_demo(engine, compiled)
    before = counts(engine, compiled)
    newer = shutil.copytree(ACME, tmp_path / "acme")
    (newer / "pack.yaml").write_text((newer / "pack.yaml").read_text().replace("version: 1.0.0", "version: 1.1.0"))
    text = (newer / "demo" / "acme.yaml").read_text()
    (newer / "demo" / "acme.yaml").write_text(text.replace("contacts:", "  person:\n    - {key: nurse, first_name: Nia, last_name: Nurse, "
                                                                        "company: st_marys}\ncontacts:"))
    _, compiled = installation(CRM, newer)
    assert demo.load_demo(engine, compiled).packs == ["acme 1.1.0"]
    assert counts(engine, compiled) == {**before, "person": before["person"] + 1}
    with engine.connect() as conn:
        markers = sorted(conn.execute(sa.select(idempotency_keys.c.key).where(idempotency_keys.c.scope == "demo")).scalars())
    assert markers == ["demo:acme:1.0.0", "demo:acme:1.1.0", "demo:crm:1.0.0"]


BROKEN = """\
users:
  - {username: carl, roles: [staff, wizard]}
groups:
  credit_control: {members: [carl, nobody]}
records:
  company:
    - {key: clinic, name: Northgate Clinic, industry: healthcare, owner: zed, bed: 3}
  opportunity:
    - {key: deal, name: Deal, company: nowhere}
  spaceship: []
processes:
  - {process: lead_follow_up, record: deal}
"""


def broken_acme(tmp_path):
    pack = shutil.copytree(ACME, tmp_path / "acme")
    (pack / "demo" / "acme.yaml").write_text(BROKEN)
    return pack


def test_a_broken_demo_file_is_reported_at_its_lines_all_at_once_and_nothing_is_loaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine, compiled = installation(CRM, broken_acme(tmp_path))
    with pytest.raises(demo.DemoError) as err:
        demo.load_demo(engine, compiled)
    users = "admin, ann, bob, carl, dave, jane, lee, mia, pam, raj, sue"
    assert [str(p) for p in err.value.problems] == [
        f"acme/demo/acme.yaml:2:37: no role 'wizard' (known: {', '.join(sorted(compiled.model.roles))}) [demo.role]",
        f"acme/demo/acme.yaml:4:36: no user 'nobody' (known: {users}) (users come from this or an earlier pack's demo) [demo.user]",
        f"acme/demo/acme.yaml:7:74: no user 'zed' (known: {users}) (users come from this or an earlier pack's demo) [demo.user]",
        "acme/demo/acme.yaml:7:79: company has no field 'bed' (fields: "
        + ", ".join(f.name for f in compiled.model.entities["company"].all_fields()) + ") [demo.field]",
        "acme/demo/acme.yaml:9:40: no company record with key 'nowhere' made before this (keys: acme, clinic, globex, northwind) [demo.key]",
        f"acme/demo/acme.yaml:10:3: no entity 'spaceship' (known: {', '.join(sorted(compiled.model.entities))}) [demo.entity]",
        "acme/demo/acme.yaml:12:5: 'started_by' is missing [demo.missing]",
    ]
    assert counts(engine, compiled) == {"users": 0, "company": 0, "opportunity": 0, "person": 0}  # the CRM pack's neither


def test_a_value_the_record_refuses_is_reported_at_its_line_and_nothing_is_loaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pack = shutil.copytree(ACME, tmp_path / "acme")
    text = (pack / "demo" / "acme.yaml").read_text()
    (pack / "demo" / "acme.yaml").write_text(text.replace("beds: 420", "beds: -4"))
    engine, compiled = installation(CRM, pack)
    with pytest.raises(demo.DemoError) as err:
        demo.load_demo(engine, compiled)
    (problem,) = err.value.problems
    assert str(problem).startswith("acme/demo/acme.yaml:13:47: company 'st_marys': beds: ")
    assert counts(engine, compiled)["users"] == 0


def test_tailor_check_reports_the_problems_of_a_demo_file(tmp_path):
    result = subprocess.run([*TAILOR, "check", str(CRM), str(broken_acme(tmp_path)), "--no-postgres"], check=False, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "acme/demo/acme.yaml:2:37: no role 'wizard'" in result.stderr
    assert result.stderr.rstrip().endswith("7 problems found")


def test_the_demo_loaded_before_demos_came_per_pack_is_not_loaded_again():
    engine, compiled = installation(CRM)
    with engine.begin() as conn:
        conn.execute(idempotency_keys.insert().values(key="demo:crm", scope="demo", result={"processes": []},
                                                      created_at=sa.func.current_timestamp()))
    assert demo.load_demo(engine, compiled).packs == []
    assert counts(engine, compiled)["users"] == 0


def test_the_crm_demo_lives_in_the_crm_pack():
    assert sorted(p.name for p in (ROOT / "definitions" / "crm" / "demo").iterdir()) == ["crm.yaml", "history.yaml"]


@st.composite
def mutated_demo(draw):
    """A CRM demo file with one to three hand edits gone wrong."""
    path = draw(st.sampled_from(sorted((CRM / "demo").glob("*.yaml"))))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "indent", "dedent", "junk", "replace-token"]))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip(" ")
        elif op == "junk":
            col = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:col] + draw(st.sampled_from(["", ":", "- ", "{", "[", "'", "&a", "*a", "{x: 1}", "[]", "~", "-4"])) + lines[i][col:]
        elif op == "replace-token":
            words = re.findall(r"[A-Za-z_]+", lines[i])
            if words:
                lines[i] = lines[i].replace(draw(st.sampled_from(words)), draw(st.sampled_from(["x", "42", "true", "[]", "{}"])), 1)
    return path.name, "".join(lines)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutated_demo())
def test_a_demo_file_edited_wrongly_gives_located_problems_never_a_traceback(tmp_path_factory, mutation):
    name, text = mutation
    pack = tmp_path_factory.mktemp("pack") / "crm"
    shutil.copytree(CRM, pack)
    (pack / "demo" / name).write_text(text, encoding="utf-8")
    engine, compiled = installation(pack)
    try:
        loaded = demo.load_demo(engine, compiled)  # must not raise anything but the problems
    except demo.DemoError as err:
        assert err.problems
        for p in err.problems:
            assert re.match(r"^[^:]+:\d+:\d+: .+ \[[a-z.-]+\]$", str(p).replace("\n", " ")), str(p)
        assert counts(engine, compiled)["users"] == 0  # nothing was loaded
    else:
        assert loaded.packs == ["crm 1.0.0"]
