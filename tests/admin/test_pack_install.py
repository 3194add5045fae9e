"""`tailor pack build / install / upgrade`: versioned archives, installed into an installation's configuration releases
with a dry run first; an upgrade of the CRM pack under the acme pack merged 3-way, conflicts reported before anything
changes."""
from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from admin.cli import main
from engine.compiler import compile_model
from runtime import records, releases
from runtime.db import make_engine
from runtime.schema import process_instances, release_log
from tests.admin.packfixtures import crm_1_1
from tests.admin.test_cli import run
from tests.conftest import ACME, CRM


class Installation:
    """An installation's data folder and database (SQLite), driven through the `tailor` command."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {"TAILOR_DATA_DIR": str(root / "var"), "TAILOR_DATABASE_URL": f"sqlite:///{root / 'var' / 'tailor.db'}"}

    def tailor(self, *args: str):
        return CliRunner().invoke(main, [str(a) for a in args], env=self.env, catch_exceptions=False)

    def engine(self) -> sa.Engine:
        return make_engine(self.env["TAILOR_DATABASE_URL"])

    def active(self) -> dict:
        engine = self.engine()
        with engine.connect() as conn:
            row = releases.active(conn)[0]
        engine.dispose()
        return row

    def activations(self) -> int:
        engine = self.engine()
        with engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(release_log)).scalar()
        engine.dispose()
        return n

    def compiled(self):
        return releases.compile_release(self.active(), self.root / "var" / "releases")


@pytest.fixture
def crm_only(tmp_path) -> Installation:
    inst = Installation(tmp_path / "site")
    made = inst.tailor("release", "create", CRM, "--activate", "--reason", "the CRM pack")
    assert made.exit_code == 0, made.output
    return inst


@pytest.fixture
def crm_and_acme(tmp_path) -> Installation:
    inst = Installation(tmp_path / "site")
    made = inst.tailor("release", "create", CRM, ACME, "--activate", "--reason", "CRM with Acme's pack")
    assert made.exit_code == 0, made.output
    return inst


def test_build_writes_a_versioned_archive_with_checksums_and_the_same_bytes_twice(tmp_path):
    out = tmp_path / "acme.zip"
    result = CliRunner().invoke(main, ["pack", "build", str(ACME), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(rf"built acme 1\.0\.0 \(extends crm >=1\.0,<2\): {re.escape(str(out))}, 11 files, sha256 [0-9a-f]{{64}}\n", result.output)
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read("tailor-pack.json"))
        names = sorted(z.namelist())
    assert (manifest["format"], manifest["name"], manifest["version"], manifest["extends"]) == (1, "acme", "1.0.0", {"crm": ">=1.0,<2"})
    assert sorted(manifest["files"]) == [n for n in names if n != "tailor-pack.json"]
    assert "tests/lead_to_proposal.yaml" in manifest["files"] and "overlays/company.yaml" in manifest["files"]
    assert "demo/acme.yaml" in manifest["files"]  # the pack's demo data travels with it
    assert "locales/de.yaml" in manifest["files"]  # and so do its translations
    first = out.read_bytes()
    CliRunner().invoke(main, ["pack", "build", str(ACME), "--out", str(out)])
    assert out.read_bytes() == first


def test_a_pack_with_problems_is_not_built(tmp_path, packs):
    broken = packs.write("broken", {"forms/f.yaml": "kind: form\nname: f\nfields: {x: strin}\n"}, extends="crm: '>=1.0'")
    result = CliRunner().invoke(main, ["pack", "build", str(broken), "--out", str(tmp_path / "b.zip")])
    assert result.exit_code == 1 and "broken/forms/f.yaml:3:13: expected one of string" in result.output and not (tmp_path / "b.zip").exists()


def test_install_is_a_dry_run_until_applied_then_a_new_release_with_the_pack(crm_only, tmp_path):
    archive = tmp_path / "acme-1.0.0.zip"
    assert CliRunner().invoke(main, ["pack", "build", str(ACME), "--out", str(archive)]).exit_code == 0
    before, count = crm_only.active(), crm_only.activations()
    dry = crm_only.tailor("pack", "install", archive)
    assert dry.exit_code == 0, dry.output
    out = dry.output
    assert out.startswith(f"install acme 1.0.0 (from {archive}) into release {before['id']} (crm 1.0.0)\nwhat changes:\n")
    for line in ("  added form credit_check", "  added group credit_control", "  added field tender_reference to form lead_enquiry",
                 "  added step credit_check to process lead_follow_up", "  added field cqc_location_id to company (group healthcare)",
                 "  changed due of step qualify of process lead_follow_up: 2 business days → 1 business day",
                 "  changed label of field phone of company: 'Phone' → 'Switchboard'", "  added link cqc to company",
                 "  changed when of step proposal of process lead_follow_up: \"steps.qualify.data.outcome == 'qualified'\" → "
                 "\"steps.qualify.data.outcome == 'qualified' and steps.credit_check.data.approved\""):
        assert line + "\n" in out
    assert ("database:\n  1. add field company.cqc_location_id (string): inside data, no table rewrite\n"
            "  2. add field company.beds (integer): inside data, no table rewrite\nrunning processes:\n  none\n") in out
    assert out.endswith("this was a dry run: nothing was changed (add --apply to do it)\n")
    assert crm_only.active()["id"] == before["id"] and crm_only.activations() == count

    done = crm_only.tailor("pack", "install", archive, "--apply", "--reason", "Acme goes live")
    assert done.exit_code == 0, done.output
    assert re.search(r"done: release \d+ is active \(activation 2\)", done.output)
    after = crm_only.active()
    assert after["packs"] == ["crm", "acme"] and after["reason"] == "Acme goes live"
    assert "credit_check" in crm_only.compiled().model.forms

    again = crm_only.tailor("pack", "install", archive)
    assert (again.exit_code, again.output) == (1, "error: acme is installed already (acme 1.0.0): use `tailor pack upgrade`\n")


def test_an_archive_changed_after_it_was_built_or_one_whose_ranges_are_not_met_is_refused(crm_only, tmp_path, packs):
    archive = tmp_path / "acme-1.0.0.zip"
    CliRunner().invoke(main, ["pack", "build", str(ACME), "--out", str(archive)])
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data.replace(b"Switchboard", b"Main line") if info.filename == "overlays/company.yaml" else data)
    result = crm_only.tailor("pack", "install", tampered)
    assert result.exit_code == 1
    assert result.output == (f"error: {tampered}: refused: the checksum of overlays/company.yaml does not match its manifest "
                             f"(the archive was changed after it was built, or damaged)\n")
    future = packs.write("future", {"forms/f.yaml": "kind: form\nname: f\nfields: {x: string}\n"}, extends="crm: '>=2.0,<3'")
    result = crm_only.tailor("pack", "install", future)
    assert (result.exit_code, result.output) == (1, "error: future 1.0.0 needs crm >=2.0,<3, but this installation has crm 1.0.0: "
                                                    "upgrade crm first (or with it), or use a version of future made for crm 1.0.0\n")
    orphan = packs.write("orphan", {}, extends="erp: '>=1'")
    result = crm_only.tailor("pack", "install", orphan)
    assert (result.exit_code, result.output) == (1, "error: orphan 1.0.0 extends erp, which this installation does not have "
                                                    "(it has crm 1.0.0): install erp first\n")
    assert crm_only.activations() == 1


def _records_and_running(inst: Installation) -> dict:
    """Records (a company with a phone number and a healthcare field, an opportunity) and running process instances."""
    compiled = inst.compiled()
    engine = inst.engine()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        company = records.create_record(conn, compiled, "company", {"name": "St Mary's", "industry": "healthcare", "phone": "+44 20 7946 0000",
                                                                    "cqc_location_id": "1-123456789"}, None)
        deal = records.create_record(conn, compiled, "opportunity", {"name": "Monitors", "company": company.id}, None)
        for process, n in (("onboarding", 2), ("lead_follow_up", 1)):
            for i in range(n):
                conn.execute(process_instances.insert().values(
                    workflow_id=f"{process}/{i}", process=process, version=compiled.process_specs[process]["version"], entity="company",
                    record_id=company.id, status="running", inputs={}, started_at=now))
    engine.dispose()
    return {"company": company.id, "deal": deal.id, "versions": {p: compiled.process_specs[p]["version"] for p in ("onboarding", "lead_follow_up")}}


def test_upgrading_crm_under_acme_keeps_every_overlay_and_record_and_acmes_scenarios_pass(crm_and_acme, tmp_path):
    inst = crm_and_acme
    kept = _records_and_running(inst)
    new_crm = crm_1_1(tmp_path)
    before, count = inst.active(), inst.activations()

    dry = inst.tailor("pack", "upgrade", new_crm)
    assert dry.exit_code == 0, dry.output
    out = dry.output
    assert out.startswith(f"upgrade crm 1.0.0 → 1.1.0 (from {new_crm}) into release {before['id']} (acme 1.0.0)\nwhat changes:\n")
    for line in ("added form site_visit", "removed step training from process onboarding",
                 "renamed field phone of company to telephone (its values are kept)",
                 "changed due of step kickoff of process onboarding: 3 business days → 2 business days"):
        assert f"\n  {line}\n" in out
    assert ("the client's changes (3-way merge): 10 carry over to crm 1.1.0\n"
            "  acme's change of the label of field phone of entity company follows its rename to telephone "
            "(acme-1.0.0/overlays/company.yaml:24:3)\nconflicts: none\n") in out
    assert ("database:\n  1. rename field company.phone to telephone (declared with renamed_from): move each record's value to the new key "
            "(one UPDATE)\n") in out
    assert ("running processes:\n  lead_follow_up (Lead follow-up): 1 running on crm 1.0.0, which the new release runs too\n"
            "  onboarding (Customer onboarding): 2 running on crm 1.0.0 stay on it; new ones start on crm 1.1.0\n") in out
    assert out.endswith("this was a dry run: nothing was changed (add --apply to do it)\n")
    assert inst.active()["id"] == before["id"] and inst.activations() == count

    done = inst.tailor("pack", "upgrade", new_crm, "--apply")
    assert done.exit_code == 0, done.output
    after = inst.active()
    assert after["id"] != before["id"] and after["reason"] == "tailor pack upgrade crm 1.1.0"
    assert after["files"]["acme"] == before["files"]["acme"]  # the client's pack, as it was
    model = inst.compiled().model
    company = model.entities["company"]
    assert company.field("phone") is None and company.field("telephone").label == "Switchboard"  # acme's overlay, followed through
    assert {"cqc_location_id", "beds"} <= {f.name for f in company.all_fields()} and "cqc" in {link.name for link in company.links}
    lead = model.processes["lead_follow_up"]
    assert [s.id for s in lead.steps] == ["qualify", "credit_check", "proposal", "discount_approval", "chase"]
    assert lead.steps[0].due.duration.text == "1 business day" and model.forms["lead_enquiry"].field("tender_reference") is not None
    assert "site_visit" in model.forms and "training" not in [s.id for s in model.processes["onboarding"].steps]
    engine = inst.engine()
    with engine.connect() as conn:
        compiled = compile_model(model)
        mary = records.get_record(conn, compiled, "company", kept["company"]).data
        deal = records.get_record(conn, compiled, "opportunity", kept["deal"]).data
        running = conn.execute(sa.select(process_instances.c.process, process_instances.c.version).where(process_instances.c.status == "running")
                               .order_by(process_instances.c.workflow_id)).all()
    engine.dispose()
    assert mary["telephone"] == "+44 20 7946 0000" and "phone" not in mary and mary["cqc_location_id"] == "1-123456789"
    assert deal["name"] == "Monitors" and deal["company"] == kept["company"]
    assert [v for p, v in running if p == "onboarding"] == [kept["versions"]["onboarding"]] * 2  # still on the version they started on

    # acme's own scenarios pass on the upgraded base, as they do on 1.0.0 (test_pack_test.py)
    tested = run("pack", "test", "definitions/examples/acme", "--base", str(new_crm), "--min-coverage", "100")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.startswith("3 scenarios of acme on crm 1.1.0, acme 1.0.0\n")

    again = inst.tailor("pack", "upgrade", new_crm)
    assert (again.exit_code, again.output) == (1, "error: crm 1.1.0 is installed already, with exactly these files: nothing to upgrade\n")


def test_a_conflicting_upgrade_is_reported_at_both_places_and_changes_nothing(crm_and_acme, tmp_path):
    inst = crm_and_acme
    new_crm = crm_1_1(tmp_path, conflict=True)
    before, count = inst.active(), inst.activations()
    lead = (ACME / "overlays" / "lead_follow_up.yaml").read_text().splitlines()
    qualify = next(i for i, t in enumerate(lead, 1) if t == "  qualify:")
    proposal = next(i for i, t in enumerate(lead, 1) if t == "  proposal:")
    for extra in ((), ("--apply",)):
        result = inst.tailor("pack", "upgrade", new_crm, *extra)
        assert result.exit_code == 1
        assert ("2 conflicts (nothing changes until they are resolved):\n"
                "  option due of step qualify of process lead_follow_up:\n"
                f"      crm 1.1.0 changes it from 2 business days to 3 business days ({new_crm}/processes/lead_follow_up.yaml:20:10)\n"
                f"      acme sets it to 1 business day (acme-1.0.0/overlays/lead_follow_up.yaml:{qualify}:3)\n"
                "  step proposal of process lead_follow_up:\n"
                "      crm 1.1.0 removes it (it was at crm-1.0.0/processes/lead_follow_up.yaml:34:9)\n"
                f"      acme changes its when (acme-1.0.0/overlays/lead_follow_up.yaml:{proposal}:3)\n") in result.output
        assert result.output.endswith("nothing was changed\n")
        assert inst.active()["id"] == before["id"] and inst.activations() == count


def test_an_upgrade_another_pack_does_not_accept_or_a_downgrade_is_refused(crm_and_acme, tmp_path):
    major = crm_1_1(tmp_path, version="2.0.0")
    result = crm_and_acme.tailor("pack", "upgrade", major)
    assert (result.exit_code, result.output) == (1, "error: acme 1.0.0 (installed) needs crm >=1.0,<2; crm 2.0.0 is outside that range: "
                                                    "upgrade acme together with it\n")
    assert crm_and_acme.tailor("pack", "upgrade", crm_1_1(tmp_path), "--apply").exit_code == 0
    result = crm_and_acme.tailor("pack", "upgrade", CRM)
    assert result.exit_code == 1 and result.output.startswith("error: crm 1.0.0 is older than the installed crm 1.1.0: a downgrade is not an upgrade")


def test_a_start_keeps_a_pack_upgraded_into_the_releases_when_the_disk_has_an_older_one(crm_and_acme, tmp_path):
    inst = crm_and_acme
    assert inst.tailor("pack", "upgrade", crm_1_1(tmp_path), "--apply").exit_code == 0
    upgraded = inst.active()
    engine = inst.engine()
    with engine.begin() as conn:  # a node starts with TAILOR_PACKS still naming crm 1.0.0 and acme on disk
        row, compiled, new = releases.adopt_disk(conn, [CRM, ACME], inst.root / "var" / "releases")
    engine.dispose()
    assert not new and row["id"] == upgraded["id"] and "telephone" in {f.name for f in compiled.model.entities["company"].fields}


LOCAL_KICKOFF = """\
kind: overlay
name: slower_kickoff
target: process/onboarding
change_steps:
  kickoff:
    due: 5 business days
"""


def test_an_admins_change_in_the_local_pack_is_merged_too_and_kept(crm_and_acme, tmp_path):
    """The console's edits live in the installation's local pack: an upgrade keeps it, and merges it like a client pack."""
    inst = crm_and_acme
    engine = inst.engine()
    root = inst.root / "var" / "releases"
    with engine.begin() as conn:
        row = releases.active(conn)[0]
        local = {"pack.yaml": releases.local_manifest(releases.compile_release(row, root).model), "overlays/onboarding.yaml": LOCAL_KICKOFF}
        files, packs = releases.with_local(row["files"], row["packs"], local)
        releases.switch_to(conn, releases.create(conn, files, packs), root, reason="kick-offs take longer")
    engine.dispose()
    before = inst.active()
    result = inst.tailor("pack", "upgrade", crm_1_1(tmp_path))
    assert result.exit_code == 1
    assert ("1 conflict (nothing changes until they are resolved):\n  option due of step kickoff of process onboarding:\n"
            f"      crm 1.1.0 changes it from 3 business days to 2 business days ({tmp_path / 'crm-1.1.0'}/processes/onboarding.yaml:26:10)\n"
            "      local sets it to 5 business days (local/overlays/onboarding.yaml:5:3)\n") in result.output
    assert inst.active()["id"] == before["id"]


def test_a_conflict_is_resolved_by_a_client_version_made_for_the_new_base_upgraded_with_it(crm_and_acme, tmp_path):
    """Acme 1.1.0 is written for CRM 1.1.0 (its range says so): it changes the renamed step and keeps its own due for
    qualifying. Upgraded together, the two are one new set of packs: it loads, and nothing of acme is merged 3-way."""
    import shutil

    inst = crm_and_acme
    new_crm = crm_1_1(tmp_path, conflict=True)
    acme = tmp_path / "acme-1.1.0"
    shutil.copytree(ACME, acme)
    (acme / "pack.yaml").write_text((acme / "pack.yaml").read_text().replace("version: 1.0.0", "version: 1.1.0")
                                    .replace('crm: ">=1.0,<2"', 'crm: ">=1.1,<2"'))
    overlay = acme / "overlays" / "lead_follow_up.yaml"
    overlay.write_text(overlay.read_text().replace("  proposal:\n", "  send_proposal:\n"))
    alone = inst.tailor("pack", "upgrade", acme)
    assert (alone.exit_code, alone.output) == (1, "error: acme 1.1.0 needs crm >=1.1,<2, but this installation has crm 1.0.0: upgrade crm "
                                                  "first (or with it), or use a version of acme made for crm 1.0.0\n")
    result = inst.tailor("pack", "upgrade", new_crm, acme, "--apply", "--reason", "CRM 1.1 with Acme's pack for it")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"upgrade crm 1.0.0 → 1.1.0, acme 1.0.0 → 1.1.0 (from {new_crm}, {acme}) into release ")
    assert "conflicts: none\n" in result.output
    lead = inst.compiled().model.processes["lead_follow_up"]
    assert [s.id for s in lead.steps] == ["qualify", "credit_check", "send_proposal", "discount_approval", "chase"]
    assert lead.steps[0].due.duration.text == "1 business day" and "credit_check" in lead.steps[2].when.source
