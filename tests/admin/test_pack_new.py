"""`tailor pack new`: a scaffolded client pack that `tailor check` and `tailor pack test` accept as generated."""
from __future__ import annotations

import sqlalchemy as sa

from admin.demo import load_demo
from runtime.schema import users
from tests.admin.test_cli import run
from tests.admin.test_demo import installation, quick_hashes  # noqa: F401 - the fixture: demo passwords hashed cheaply
from tests.conftest import CRM


def test_a_new_pack_checks_and_its_sample_scenario_passes(tmp_path):
    made = run("pack", "new", "hospital_group", "--extends", "crm", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    pack = tmp_path / "hospital_group"
    assert sorted(str(p.relative_to(pack)) for p in pack.rglob("*") if p.is_file()) == [
        "README.md", "demo/hospital_group.yaml", "entities/.gitkeep", "forms/.gitkeep", "overlays/lead_enquiry.yaml", "pack.yaml",
        "processes/.gitkeep", "tests/lead_enquiry.yaml"]
    manifest = (pack / "pack.yaml").read_text()
    assert "name: hospital_group\nversion: 0.1.0\n" in manifest and "extends:\n  crm: '>=1.0,<2'\n" in manifest
    assert "hospital_group_reference:" in (pack / "overlays" / "lead_enquiry.yaml").read_text()
    checked = run("check", "definitions/crm", str(pack), "--no-postgres")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK: crm 1.0.0, hospital_group 0.1.0: ")
    tested = run("pack", "test", str(pack))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "PASS  " in tested.stdout and tested.stdout.rstrip().endswith("1 scenario: 1 passed, 0 failed")
    # its sample demo loads after the CRM pack's: a person to log in as, and a customer with a contact
    engine, compiled = installation(CRM, pack)
    assert load_demo(engine, compiled).packs == ["crm 1.0.0", "hospital_group 0.1.0"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(users.c.name).where(users.c.username == "sam")).scalar() == "Sam Sample"


def test_a_new_pack_is_refused_a_bad_name_a_used_folder_or_an_unknown_base(tmp_path):
    result = run("pack", "new", "Hospital-Group", "--extends", "crm", "--dir", str(tmp_path))
    assert (result.returncode, result.stderr) == (1, "error: 'Hospital-Group' cannot name a pack: use lower_snake_case "
                                                     "(a-z, 0-9 and _, starting with a letter)\n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = run("pack", "new", "taken", "--extends", "crm", "--dir", str(tmp_path))
    assert (result.returncode, result.stderr) == (1, f"error: {tmp_path / 'taken'} already exists and is not empty: choose another name or --dir\n")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    result = run("pack", "new", "client", "--extends", "erp", "--dir", str(tmp_path))
    assert result.returncode == 1 and result.stderr.startswith("error: there is no pack 'erp' (shipped: crm")
    result = run("pack", "new", "crm", "--extends", "crm", "--dir", str(tmp_path))
    assert result.returncode == 1 and "'crm' is already a pack's name" in result.stderr
