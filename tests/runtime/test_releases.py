"""Configuration releases: content-addressed, adopted from disk at start (keeping the console's local pack), activated
with their schema plan, followed by every node within a poll — on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import shutil
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from admin.app import create_app
from engine.errors import DefinitionError
from engine.loader import load
from runtime import releases
from runtime.db import upgrade
from runtime.schema import release_log
from tests.conftest import CRM

NEW_FORM = """
kind: form
name: site_visit
label: Site visit
entity: company
contact: true
fields:
  visited_on: {type: date, required: true}
  notes: text
"""
LOCAL_FIELD = """
kind: overlay
name: beds
target: entity/contract
add_fields:
  bed_count: {type: integer, label: Beds}
"""


@pytest.fixture
def store(db):
    with db.begin() as conn:
        upgrade(conn)
    return db


def crm_copy(tmp_path):
    folder = tmp_path / "packs" / "crm"
    shutil.copytree(CRM, folder)
    return folder


def test_the_same_files_are_the_same_release_and_a_start_adopts_the_packs_on_disk_once(store, tmp_path):
    crm = crm_copy(tmp_path)
    root = tmp_path / "releases"
    with store.begin() as conn:
        first, compiled, new = releases.adopt_disk(conn, [crm], root)
    assert new and "company" in compiled.model.entities
    with store.begin() as conn:
        again, _, new_again = releases.adopt_disk(conn, [crm], root)  # a restart with the same packs: nothing new
        assert not new_again and again["id"] == first["id"] and releases.version(conn) == 1
    (crm / "forms" / "contact" / "site_visit.yaml").write_text(NEW_FORM)  # a consultant edits the pack on disk
    with store.begin() as conn:
        second, compiled, new = releases.adopt_disk(conn, [crm], root)
        assert new and second["id"] != first["id"] and releases.version(conn) == 2
    assert "site_visit" in compiled.model.forms
    files, packs = releases.snapshot([crm])
    with store.begin() as conn:
        assert releases.create(conn, files, packs) == second["id"]  # content-addressed


def test_a_local_pack_survives_a_new_version_of_the_base_packs(store, tmp_path):
    crm = crm_copy(tmp_path)
    root = tmp_path / "releases"
    with store.begin() as conn:
        base, compiled, _ = releases.adopt_disk(conn, [crm], root)
        local = {"pack.yaml": releases.local_manifest(compiled.model), "overlays/beds.yaml": LOCAL_FIELD}
        files, packs = releases.with_local(base["files"], base["packs"], local)
        edited = releases.create(conn, files, packs, reason="beds for hospitals")
        releases.switch_to(conn, edited, root, reason="beds for hospitals")
    (crm / "forms" / "contact" / "site_visit.yaml").write_text(NEW_FORM)  # then the base pack changes on disk
    with store.begin() as conn:
        row, compiled, new = releases.adopt_disk(conn, [crm], root)
    assert new and row["packs"] == ["crm", releases.LOCAL]
    assert "site_visit" in compiled.model.forms and compiled.model.entities["contract"].field("bed_count") is not None


def test_a_broken_release_is_refused_before_anything_changes(store, tmp_path):
    crm = crm_copy(tmp_path)
    root = tmp_path / "releases"
    with store.begin() as conn:
        base, compiled, _ = releases.adopt_disk(conn, [crm], root)
        files, packs = releases.with_local(base["files"], base["packs"], {
            "pack.yaml": releases.local_manifest(compiled.model), "overlays/bad.yaml": LOCAL_FIELD.replace("integer", "integr")})
        broken = releases.create(conn, files, packs)
    with pytest.raises(DefinitionError) as refused, store.begin() as conn:
        releases.switch_to(conn, broken, root)
    assert "integr" in str(refused.value)
    with store.connect() as conn:
        assert releases.active(conn)[0]["id"] == base["id"] and conn.execute(sa.select(sa.func.count()).select_from(release_log)).scalar() == 1


def test_the_summary_says_what_changed_in_words(tmp_path):
    crm = crm_copy(tmp_path)
    old = load([crm])
    (crm / "forms" / "contact" / "site_visit.yaml").write_text(NEW_FORM)
    local = tmp_path / "mine"
    local.mkdir()
    (local / "pack.yaml").write_text(releases.local_manifest(old))
    (local / "beds.yaml").write_text(LOCAL_FIELD)
    new = load([crm, local])
    assert releases.summary(old, new) == ["added form site_visit", "added field bed_count to contract"]
    changes = releases.file_changes(*(releases.snapshot(p)[0] for p in ([CRM], [crm, local])))
    assert [(c.path, c.change) for c in changes] == [("crm/forms/contact/site_visit.yaml", "added"), ("mine/beds.yaml", "added"),
                                                     ("mine/pack.yaml", "added")]
    assert "+  visited_on: {type: date, required: true}" in changes[0].diff


def test_two_web_apps_and_two_workers_follow_an_activation_without_a_restart(store, tmp_path):
    crm = crm_copy(tmp_path)
    root = tmp_path / "releases"
    with store.begin() as conn:
        base, compiled, _ = releases.adopt_disk(conn, [crm], root)
    apps = [create_app(store, compiled, None, secret_key="s", releases_root=root) for _ in range(2)]
    switched: dict[str, float] = {}

    async def workers_follow(activate):
        followers = [releases.Follower(store, root, lambda c, row, n=n: switched.__setitem__(n, time.monotonic()), seen=1, poll=0.2,
                                       name=n) for n in ("worker 1", "worker 2")]
        tasks = [asyncio.create_task(f.run()) for f in followers]
        await asyncio.sleep(0.3)
        activate()
        for _ in range(100):
            if {"worker 1", "worker 2"} <= set(switched):
                break
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()

    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        for app in apps:
            assert "site_visit" not in app.state.compiled.model.forms

        def activate():
            (crm / "forms" / "contact" / "site_visit.yaml").write_text(NEW_FORM)
            files, packs = releases.snapshot([crm])
            with store.begin() as conn:
                releases.switch_to(conn, releases.create(conn, files, packs), root, reason="a site visit form")
            switched["activated"] = time.monotonic()

        asyncio.run(workers_follow(activate))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all("site_visit" in a.state.compiled.model.forms for a in apps):
            time.sleep(0.1)
        assert all("site_visit" in a.state.compiled.model.forms for a in apps)  # both web apps, no restart
        assert {"worker 1", "worker 2"} <= set(switched)  # both workers
        del one, two


def test_a_node_keeps_its_release_when_the_new_one_does_not_load(store, tmp_path):
    crm = crm_copy(tmp_path)
    root = tmp_path / "releases"
    with store.begin() as conn:
        base, compiled, _ = releases.adopt_disk(conn, [crm], root)
        files, packs = releases.with_local(base["files"], base["packs"], {"pack.yaml": "kind: pack\nname: local\n"})  # no version
        bad = releases.create(conn, files, packs)
        releases.activate(conn, bad, reason="activated behind the checks' back")
    seen = []
    follower = releases.Follower(store, root, lambda c, row: seen.append(row["id"]), seen=1)
    assert asyncio.run(follower.step()) is False and seen == [] and follower.failed == 2
    assert asyncio.run(follower.step()) is False  # tried once, not on every poll
