"""The `tailor` command as a consultant runs it."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ACME, CRM, ROOT

TAILOR = [str(Path(sys.executable).parent / "tailor")]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*TAILOR, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_check_of_the_shipped_packs_passes():
    result = run("check", "definitions/crm", "definitions/examples/acme")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: crm 1.0.0, acme 1.0.0: ")


def test_check_reports_every_problem_with_its_location_and_fails(packs, tmp_path):
    packs.write("broken", {
        "a.yaml": "kind: entity\nname: a\nfields: {x: {type: reference}}\n",
        "b.yaml": "kind: form\nname: b\nfields: [oops\n",
        "c.yaml": "kind: process\nname: c\nsteps:\n  - {id: s, title: '{{ record.x }', due: soon}\n",
    })
    result = run("check", "broken", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "broken/a.yaml:3:10: field 'x' in entity 'a': a reference needs 'entity:' (one of: a) [field.entity]",
        "broken/b.yaml:4:1: invalid YAML: while parsing a flow sequence did not find expected ',' or ']' [yaml.syntax]",
        "broken/c.yaml:4:20: invalid template in step 's' title: unexpected '}' [expression.syntax]",
        "broken/c.yaml:4:42: expected e.g. '2 business days', '4 business hours', '3 days', '30 minutes' or ISO 8601 'P2D'/'PT4H', "
        "found 'soon' [duration.invalid]",
        "4 problems found",
    ]


def test_compile_writes_schemas_specs_and_ddl(tmp_path):
    out = tmp_path / "out"
    result = run("compile", str(CRM), str(ACME), "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packs"] == [{"name": "crm", "version": "1.0.0"}, {"name": "acme", "version": "1.0.0"}]
    for entity in manifest["entities"]:
        assert (out / "entities" / f"{entity}.schema.json").is_file()
    for form in manifest["forms"]:
        assert (out / "forms" / f"{form}.schema.json").is_file() and (out / "forms" / f"{form}.layout.json").is_file()
    for process, version in manifest["processes"].items():
        assert json.loads((out / "processes" / f"{process}.json").read_text())["version"] == version
    assert "CREATE TABLE company" in (out / "ddl" / "postgresql.sql").read_text()


def test_compile_of_a_broken_pack_writes_nothing(packs, tmp_path):
    packs.write("broken", {"a.yaml": "kind: role\nname: r\npermissions: [fly]\n"})
    result = run("compile", "broken", "--out", "out", cwd=tmp_path)
    assert result.returncode == 1 and "broken/a.yaml:3:15:" in result.stderr
    assert not (tmp_path / "out").exists()


def test_user_create_prints_a_working_api_token(tmp_path):
    import os

    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp_path / "var"), "TAILOR_PACKS": str(CRM)}
    result = subprocess.run([*TAILOR, "user", "create", "erp", "--role", "staff", "--token"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    created, token = result.stdout.splitlines()
    assert created == "created user erp (staff)" and token.startswith("tl_")
    again = subprocess.run([*TAILOR, "user", "create", "erp", "--role", "staff"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "The user name 'erp' is taken" in again.stderr
    bad = subprocess.run([*TAILOR, "user", "create", "xy", "--role", "wizard"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "Unknown role: wizard." in bad.stderr


def test_user_list_reset_password_and_tokens_from_the_command_line(tmp_path):
    import os

    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp_path / "var"), "TAILOR_PACKS": str(CRM)}

    def tailor(*args):
        return subprocess.run([*TAILOR, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert tailor("user", "create", "ann", "--name", "Ann Sales", "--role", "staff", "--password", "long enough").returncode == 0
    assert tailor("user", "create", "erp", "--role", "staff").returncode == 0  # no password: an API-only user
    listed = tailor("user", "list").stdout
    assert re.search(r"^ann\s+Ann Sales\s+staff\s+active$", listed, re.M) and re.search(r"^erp\s.*API only$", listed, re.M)
    reset = tailor("user", "reset-password", "ann")
    assert reset.returncode == 0 and len(reset.stdout.strip()) >= 12
    assert re.search(r"^ann\s.*must change password$", tailor("user", "list").stdout, re.M)
    made = tailor("user", "token", "erp")
    assert made.returncode == 0 and made.stdout.startswith("tl_")
    assert "· token" in tailor("user", "list").stdout
    assert tailor("user", "token", "erp", "--revoke").stdout.strip() == "revoked the API token of erp"
    again = tailor("user", "token", "erp", "--revoke")
    assert again.returncode == 1 and "has no API token" in again.stderr
    nobody = tailor("user", "reset-password", "ghost")
    assert nobody.returncode == 1 and "no user named 'ghost'" in nobody.stderr
