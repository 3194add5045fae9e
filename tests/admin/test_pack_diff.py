"""`tailor pack diff A B`: what changed between two versions of a pack, in words and as a diff of its files."""
from __future__ import annotations

from click.testing import CliRunner

from admin.cli import main
from tests.admin.packfixtures import crm_1_1
from tests.conftest import ACME, CRM


def test_two_versions_in_words_then_as_a_yaml_diff(tmp_path):
    new = crm_1_1(tmp_path)
    archive = tmp_path / "crm-1.1.0.zip"
    assert CliRunner().invoke(main, ["pack", "build", str(new), "--out", str(archive)]).exit_code == 0
    result = CliRunner().invoke(main, ["pack", "diff", str(CRM), str(archive)])  # a folder and an archive
    assert result.exit_code == 0, result.output
    words, _, files = result.output.partition("files:\n")
    assert words == ("crm 1.0.0 → 1.1.0\nin words:\n  added form site_visit\n  removed step training from process onboarding\n"
                     "  renamed field phone of company to telephone (its values are kept)\n  changed pages of entity company\n"
                     "  changed label of field telephone of company: 'Phone' → 'Telephone'\n"
                     "  changed due of step kickoff of process onboarding: 3 business days → 2 business days\n")
    assert files.startswith("  changed entities/company.yaml\n  added forms/contact/site_visit.yaml\n  changed locales/de.yaml\n  changed pack.yaml\n"
                            "  changed processes/onboarding.yaml\n\n--- before/crm/entities/company.yaml\n+++ after/crm/entities/company.yaml\n")
    assert "\n-  phone: phone\n+  telephone:\n+    type: phone\n+    renamed_from: phone\n" in files
    assert "\n-    due: 3 business days\n+    due: 2 business days\n" in files
    same = CliRunner().invoke(main, ["pack", "diff", str(CRM), str(CRM)])
    assert same.output == "crm 1.0.0 → 1.0.0\nin words:\n  nothing a page or process would notice\nfiles: the same\n"


def test_a_client_pack_is_compared_on_its_base_and_two_different_packs_are_refused(tmp_path):
    import shutil

    newer = tmp_path / "acme"
    shutil.copytree(ACME, newer)
    text = (newer / "pack.yaml").read_text().replace("version: 1.0.0", "version: 1.1.0")
    (newer / "pack.yaml").write_text(text)
    overlay = newer / "overlays" / "lead_follow_up.yaml"
    overlay.write_text(overlay.read_text().replace("due: {in: 4 business hours, from: qualify}", "due: {in: 6 business hours, from: qualify}"))
    result = CliRunner().invoke(main, ["pack", "diff", str(ACME), str(newer)])
    assert result.exit_code == 0, result.output
    assert ("in words:\n  changed due of step credit_check of process lead_follow_up: 4 business hours from qualify → "
            "6 business hours from qualify\n") in result.output
    refused = CliRunner().invoke(main, ["pack", "diff", str(ACME), str(CRM)])
    assert refused.exit_code == 1
    assert refused.output == f"error: {ACME} is pack acme and {CRM} is pack crm: a diff compares two versions of one pack\n"
