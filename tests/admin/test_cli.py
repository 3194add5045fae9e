"""The `tailor` command as a consultant runs it."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


# -- business time and schedules, as the engine computes them ----------------------------------------------------


def tailor(*args: str):
    from click.testing import CliRunner

    from admin.cli import main

    return CliRunner().invoke(main, [*args, "--pack", str(CRM)])


def test_calendar_due_counts_business_time_as_a_step_s_due_does():
    # after hours on Tuesday: counting starts at Wednesday's opening, and one business day later is Thursday's opening
    result = tailor("calendar", "due", "office", "2026-12-01 18:00", "1 business day")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "due Thursday 3 December 2026, 09:00 (Europe/London)",
        "    2026-12-03T09:00:00+00:00",
        "1 business day from Tuesday 1 December 2026, 18:00 on calendar 'office' (Office hours (London))",
    ]
    # over Christmas: the 24th and 29th-31st are closed days of the calendar, the rest English bank holidays
    assert tailor("calendar", "due", "office", "2026-12-23 18:00", "1 business day").output.splitlines()[0] == \
        "due Tuesday 5 January 2027, 09:00 (Europe/London)"
    assert tailor("calendar", "due", "office", "2026-06-02T16:30:00+01:00", "4 business hours").output.splitlines()[:2] == [
        "due Wednesday 3 June 2026, 12:00 (Europe/London)", "    2026-06-03T12:00:00+01:00"]


def test_the_due_time_is_the_workflow_s_own():
    """The CLI answers with the interpreter's Calendar on the compiled calendar spec, the object the workflow counts with."""
    import datetime as dt

    from engine.compiler import calendar_spec
    from engine.loader import load
    from runtime.interpreter import Calendar
    from runtime.preview import due

    model = load([CRM])
    start = dt.datetime(2026, 3, 27, 16, 0, tzinfo=dt.timezone.utc)  # a Friday before the clocks change
    for text, unit, amount in (("3 business days", "business_days", 3), ("10 business hours", "business_hours", 10)):
        expected = Calendar(calendar_spec(model.calendars["office"])).add(start, {"amount": amount, "unit": unit})
        assert due(model, "office", start.isoformat(), text).at == expected


@pytest.mark.parametrize("args, message", [
    (("calendar", "due", "ofice", "2026-12-01 18:00", "1 business day"), "error: unknown calendar 'ofice' (known: around_the_clock, office)"),
    (("calendar", "due", "office", "next tuesday", "1 business day"),
     "error: 'next tuesday' is not a date and time: expected e.g. '2026-12-01 18:00' (in Europe/London) or '2026-12-01T18:00:00+01:00'"),
    (("calendar", "due", "office", "2026-12-01 18:00", "1 busines day"),
     "error: expected e.g. '2 business days', '4 business hours', '3 days', '30 minutes' or ISO 8601 'P2D'/'PT4H', found '1 busines day'"),
    (("schedule", "preview", "renewals"),
     "error: unknown process 'renewals' (known: account_review, callback, contract_renewal, lead_follow_up, meeting_follow_up, onboarding, support_sla)"),
    (("schedule", "preview", "lead_follow_up"), "error: process 'lead_follow_up' has no schedule trigger (its triggers: manual)"),
    (("schedule", "preview", "account_review", "--from", "soon"),
     "error: 'soon' is not a date and time: expected e.g. '2026-12-01 18:00' (in Europe/London) or '2026-12-01T18:00:00+01:00'"),
], ids=["unknown-calendar", "bad-date", "bad-duration", "unknown-process", "no-schedule", "bad-from"])
def test_bad_input_is_told_in_one_line_without_a_traceback(args, message):
    result = tailor(*args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert result.output.splitlines() == [message]


def test_schedule_preview_lists_the_next_runs_as_the_sweep_starts_them():
    result = tailor("schedule", "preview", "account_review", "--count", "3", "--from", "2026-01-01 00:00")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "process 'account_review' (Quarterly account review): FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO;BYHOUR=9 in Europe/London, "
        "for each company where record.status == 'customer'",
        "   1. Monday 5 January 2026, 09:00  2026-01-05T09:00:00+00:00",
        "   2. Monday 6 April 2026, 09:00  2026-04-06T09:00:00+01:00",
        "   3. Monday 6 July 2026, 09:00  2026-07-06T09:00:00+01:00",
    ]


def test_each_previewed_run_is_an_occurrence_the_sweep_keeps():
    """The preview and the sweep's filter (engine.recurrence.is_occurrence) read the rule with the same code."""
    from engine.compiler import compile_model
    from engine.loader import load
    from engine.recurrence import is_occurrence
    from runtime.preview import schedules

    compiled = compile_model(load([CRM]))
    (found,) = schedules(compiled, "account_review", 8, "2026-01-01")
    assert len(found.runs) == 8 and all(is_occurrence(found.rule, found.starts, found.timezone, at) for at in found.runs)
    later = [at for at in found.runs if at.month not in (1, 4, 7, 10)]
    assert later == []
