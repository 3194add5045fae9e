"""`tailor pack export`: the console's changes (the active release's local pack) as a client pack, which checks, builds
and, installed into a fresh installation of the same base, gives the same model."""
from __future__ import annotations

import yaml

from admin.packtool.export import outputs_of
from engine import localpack
from runtime import releases
from tests.admin.test_pack_install import Installation
from tests.conftest import ACME, CRM

# what an admin does in the console: a field on the company, one on the enquiry form, and a contact form of their own
SITE_VISIT = {"kind": "form", "name": "site_visit", "label": "Site visit", "entity": "company", "contact": True,
              "fields": {"visited_on": {"type": "date", "required": True}, "notes": "text"}}
COMPANY = localpack.overlay_document("entity", "company", {"add_fields": {"vat_number": {"type": "string", "label": "VAT number"}},
                                                                "add_to_sections": {"Company": ["vat_number"]}})
ENQUIRY = localpack.overlay_document("form", "lead_enquiry", {"add_fields": {"referral": {"type": "string", "label": "Referred by"}}})


def _installation(tmp_path, name: str, *packs) -> Installation:
    inst = Installation(tmp_path / name)
    made = inst.tailor("release", "create", *packs, "--activate", "--reason", "the packs")
    assert made.exit_code == 0, made.output
    return inst


def _console_changes(inst: Installation) -> None:
    """The local pack as the console's editors write it, activated as the console activates a draft."""
    engine = inst.engine()
    root = inst.root / "var" / "releases"
    with engine.begin() as conn:
        row = releases.active(conn)[0]
        files = {"pack.yaml": releases.local_manifest(releases.compile_release(row, root).model)}
        files = localpack.put(files, "entity", "company", COMPANY, overlay=True).files
        files = localpack.put(files, "form", "lead_enquiry", ENQUIRY, overlay=True).files
        files = localpack.put(files, "form", "site_visit", SITE_VISIT, overlay=False).files
        all_files, packs = releases.with_local(row["files"], row["packs"], files)
        releases.switch_to(conn, releases.create(conn, all_files, packs), root, reason="the admins' changes")
    engine.dispose()


def test_the_console_changes_exported_built_and_installed_elsewhere_give_the_same_model(tmp_path):
    site = _installation(tmp_path, "site", CRM)
    _console_changes(site)
    out = tmp_path / "st_marys"
    result = site.tailor("pack", "export", "--out", out, "--name", "st_marys", "--version", "1.0.0")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"exported the local changes of release 2 as st_marys 1.0.0 (extends crm >=1.0,<2) into {out}: "
                                    "3 definitions and overlays")
    head = yaml.safe_load((out / "pack.yaml").read_text())
    assert (head["kind"], head["name"], head["version"], head["extends"]) == ("pack", "st_marys", "1.0.0", {"crm": ">=1.0,<2"})
    # laid out as `tailor pack new` lays a pack out, each file with the comment that lets an editor check it
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "README.md", "demo/.gitkeep", "entities/.gitkeep", "forms/site_visit.yaml", "overlays/entities/company.yaml", "overlays/forms/lead_enquiry.yaml",
        "pack.yaml", "processes/.gitkeep", "tests/.gitkeep"]
    assert (out / "forms/site_visit.yaml").read_text().startswith("# yaml-language-server: $schema=")
    assert "overlay.schema.json" in (out / "overlays/forms/lead_enquiry.yaml").read_text().splitlines()[0]

    checked = site.tailor("check", CRM, out, "--no-postgres")
    assert checked.exit_code == 0, checked.output
    archive = tmp_path / "st_marys-1.0.0.zip"
    built = site.tailor("pack", "build", out, "--out", archive)
    assert built.exit_code == 0, built.output

    fresh = _installation(tmp_path, "fresh", CRM)
    installed = fresh.tailor("pack", "install", archive, "--apply")
    assert installed.exit_code == 0, installed.output
    assert "added form site_visit" in installed.output and "added field referral to form lead_enquiry" in installed.output
    assert outputs_of(fresh.compiled(), {}) == outputs_of(site.compiled(), {"local": "st_marys"})


def test_the_exported_pack_extends_every_pack_the_changes_stand_on(tmp_path):
    site = _installation(tmp_path, "site", CRM, ACME)
    _console_changes(site)
    engine = site.engine()
    with engine.begin() as conn:  # an admin's draft, not activated: not part of the export, and the export says so
        row = releases.active(conn)[0]
        releases.save_draft(conn, row["id"], {**releases.export(row), "forms/draft_only.yaml": "kind: form\nname: draft_only\n"}, None)
    engine.dispose()
    result = site.tailor("pack", "export", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "note: the console has a draft that is not active; it is not part of the pack" in result.output
    assert not (tmp_path / "out" / "forms" / "draft_only.yaml").exists()
    head = yaml.safe_load((tmp_path / "out" / "pack.yaml").read_text())
    assert (head["name"], head["version"], head["extends"]) == ("site_changes", "0.1.0", {"acme": ">=1.0,<2"})


def test_nothing_to_export_says_so_and_writes_nothing(tmp_path):
    site = _installation(tmp_path, "site", CRM)
    result = site.tailor("pack", "export", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output == ("error: release 1 has no local changes (the console's changes live in its local pack, and it holds "
                             "nothing): nothing to export\n")
    assert not (tmp_path / "out").exists()


def test_a_name_or_folder_that_is_taken_is_refused(tmp_path):
    site = _installation(tmp_path, "site", CRM)
    _console_changes(site)
    assert site.tailor("pack", "export", "--name", "crm", "--out", tmp_path / "a").output.startswith("error: 'crm' is already a pack's name")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    result = site.tailor("pack", "export", "--out", tmp_path / "full")
    assert result.exit_code == 1 and "already exists and is not empty" in result.output
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def test_an_installation_that_never_started_is_told_so(tmp_path):
    inst = Installation(tmp_path / "none")
    (tmp_path / "none" / "var").mkdir(parents=True)
    result = inst.tailor("pack", "export")
    assert result.exit_code == 1
    assert result.output.startswith("error: there is no installation at sqlite:///")
