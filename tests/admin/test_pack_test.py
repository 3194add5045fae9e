"""`tailor pack test`: a pack's scenario tests on Temporal's time-skipping server, reported like a test runner."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from tests.admin.test_cli import run
from tests.conftest import ACME


def test_the_acme_packs_scenarios_pass_with_full_coverage():
    """What .ci/run runs: the acme pack's own scenarios, the coverage gate at 100%."""
    result = run("pack", "test", "definitions/examples/acme", "--min-coverage", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("3 scenarios of acme on crm 1.0.0, acme 1.0.0\n")
    for name in ("credit_check_over_the_weekend", "lead_not_called_back", "lead_to_proposal"):
        assert f"PASS  definitions/examples/acme/tests/{name}.yaml  " in out
    assert "  lead_follow_up (Lead follow-up): steps 5/5 (100%), escalation levels 5/5 (100%)\n" in out
    assert out.rstrip().endswith("3 scenarios: 3 passed, 0 failed")
    assert "Traceback" not in result.stderr and "Fatal Python error" not in result.stderr


def _acme_copy(tmp_path: Path, keep: tuple[str, ...] | None = None) -> Path:
    folder = tmp_path / "acme"
    shutil.copytree(ACME, folder)
    if keep is not None:
        for p in (folder / "tests").glob("*.yaml"):
            if p.stem not in keep:
                p.unlink()
    return folder


def test_a_broken_scenario_fails_at_its_line_with_the_first_difference_and_the_others_still_run(tmp_path):
    folder = _acme_copy(tmp_path, keep=("lead_to_proposal",))
    scenario = folder / "tests" / "lead_to_proposal.yaml"
    text = scenario.read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "step: credit_check, group: credit_control" in t)
    scenario.write_text(text.replace("assignee: carl, due: Mon 2030-03-04 13:30", "assignee: carl, due: Mon 2030-03-04 14:30"))
    (folder / "tests" / "misspelt.yaml").write_text(textwrap.dedent("""\
        scenario: Names that do not exist are found before anything runs
        start: Mon 2030-03-04 09:30
        given:
          users:
            - {username: ann, roles: [staff, cook]}
        steps:
          - submit: lead_enquirey
            by: ann
          - complete: qualify
            by: nobody
        """))
    (folder / "tests" / "past.yaml").write_text(textwrap.dedent("""\
        scenario: A start that has passed
        start: Wed 2020-01-01 09:00
        steps:
          - advance: 1 hour
        """))
    (folder / "tests" / "weekday.yaml").write_text("scenario: A wrong weekday\nstart: Tue 2030-03-04 09:30\nsteps:\n  - advance: 1 hour\n")
    result = run("pack", "test", str(folder), cwd=tmp_path)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL  acme/tests/lead_to_proposal.yaml  A lead is qualified" in out
    assert (f"      acme/tests/lead_to_proposal.yaml:{line}:11: the task 'Credit check: St Mary's Hospital: Ward monitors for 12 beds' "
            f"is due Mon 2030-03-04 13:30, not Mon 2030-03-04 14:30\n") in out
    assert "FAIL  acme/tests/misspelt.yaml  Names that do not exist are found before anything runs\n" in out
    assert "      acme/tests/misspelt.yaml:5:7: ann: no role 'cook' (known: " in out
    assert "      acme/tests/misspelt.yaml:7:5: no form 'lead_enquirey' (known: " in out
    assert "      acme/tests/misspelt.yaml:9:5: no user 'nobody' in given: users (known: ann) [scenario.user]\n" in out
    assert ("      acme/tests/past.yaml:2:8: the scenario starts at Wed 2020-01-01 09:00, which has passed on the test server's clock") in out
    assert "      acme/tests/weekday.yaml:2:8: 2030-03-04 is a Monday, not a Tuesday [scenario.time]\n" in out
    assert out.rstrip().endswith("4 scenarios: 0 passed, 4 failed")
    assert "Traceback" not in result.stderr


def test_coverage_below_the_minimum_fails_a_run_whose_scenarios_pass(tmp_path):
    folder = _acme_copy(tmp_path, keep=("lead_to_proposal",))
    result = run("pack", "test", str(folder), "--min-coverage", "80", cwd=tmp_path)
    assert result.returncode == 1
    assert "PASS  acme/tests/lead_to_proposal.yaml" in result.stdout
    assert "  lead_follow_up (Lead follow-up): steps 5/5 (100%), escalation levels 1/5 (20%)\n" in result.stdout
    assert ("      not covered: qualify level 1 never fired, qualify level 2 never fired, credit_check level 1 never fired, "
            "credit_check level 2 never fired\n") in result.stdout
    assert result.stdout.rstrip().endswith("1 scenario: 1 passed, 0 failed; coverage 60% is below the minimum of 80%")


def test_a_pack_without_scenarios_or_with_a_missing_base_is_a_clear_refusal(tmp_path, packs):
    lonely = packs.write("lonely", {"forms/f.yaml": "kind: form\nname: f\nfields: {x: string}\n"})
    result = run("pack", "test", str(lonely), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == f"error: no scenario tests in {lonely / 'tests'} (see docs/packs.md for the format)\n"
    orphan = packs.write("orphan", {}, extends="nowhere: '>=1'")
    result = run("pack", "test", str(orphan), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: pack 'orphan' extends 'nowhere', which is not here: give its folder with --base PATH\n"


def test_tailor_check_finds_a_scenarios_problems_too(tmp_path):
    folder = _acme_copy(tmp_path, keep=())
    (folder / "tests" / "typo.yaml").write_text("scenario: A typo\nstart: 2030-03-04 09:30\nsteps:\n  - complete: qualfy\n    by: ann\n")
    result = run("check", str(ACME.parent.parent / "crm"), str(folder), "--no-postgres", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "acme/tests/typo.yaml:4:5: no user 'ann' in given: users (known: none) [scenario.user]",
        "acme/tests/typo.yaml:4:5: no step 'qualfy' in any process [scenario.step]",
        "2 problems found"]
