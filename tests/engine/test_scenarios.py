"""Reading and checking scenario files: every problem at its line, before anything runs."""
from __future__ import annotations

import datetime as dt
import textwrap

from engine.loader import load
from engine.scenarios import Act, Advance, Expect, Submit, check_scenario, moment, read_scenario, scenario_files
from tests.conftest import ACME, CRM


def _read(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text))
    return read_scenario(path, "s.yaml")


def test_a_scenario_reads_into_typed_steps(tmp_path):
    scenario, problems = _read(tmp_path, """\
        scenario: Typed
        start: Fri 2030-03-01 15:00
        given:
          users: [{username: ann, roles: [staff]}]
          records:
            company: [{key: acme, name: Acme}]
        steps:
          - submit: lead_enquiry
            on: acme
            by: ann
            values: {summary: Beds}
            creates: {opportunity: deal}
          - advance: 4 business hours
          - advance: {to: Mon 2030-03-04 09:00}
          - approve: discount_approval
            by: ann
          - expect:
              tasks: [{step: qualify, assignee: null, due: 2030-03-05 09:00}]
        """)
    assert problems == []
    assert scenario.start == dt.datetime(2030, 3, 1, 15, 0) and scenario.users[0].email == "ann@example.com"
    submit, by_time, to_time, decide, expect = scenario.steps
    assert isinstance(submit, Submit) and submit.creates == (("opportunity", "deal"),) and submit.loc.line == 8
    assert isinstance(by_time, Advance) and by_time.duration.unit == "business_hours" and by_time.to is None
    assert isinstance(to_time, Advance) and to_time.to == dt.datetime(2030, 3, 4, 9, 0)
    assert isinstance(decide, Act) and decide.verb == "approve"
    assert isinstance(expect, Expect) and expect.alerts is None
    [task] = expect.tasks
    assert task.assignee is None and task.assignee_given and not task.group_given and task.due == dt.datetime(2030, 3, 5, 9, 0)


def test_shape_problems_are_located(tmp_path):
    scenario, problems = _read(tmp_path, """\
        scenario: Broken
        start: 2030-03-01
        steps:
          - complete: qualify
          - expect:
              tasks: [{step: qualify, owner: ann}]
        """)
    assert scenario is None
    assert [str(p) for p in problems] == [
        "s.yaml:2:8: expected a local time like 'Fri 2030-03-01 15:00' (the weekday is optional, and checked when given) in 'start', "
        "found '2030-03-01' [schema.pattern]",
        "s.yaml:4:5: missing required key 'by' in 'steps' [schema.missing-key]",
        "s.yaml:6:31: unknown key 'owner' in 'tasks' (expected one of: assignee, due, group, process, record, status, step, title) "
        "[schema.unknown-key]",
    ]
    _, problems = _read(tmp_path, "scenario: Later\nstart: 2030-03-01 15:00\nsteps:\n  - advance: soon\n")
    assert [str(p) for p in problems] == [
        "s.yaml:4:14: expected e.g. '2 business days', '4 business hours', '3 days', '30 minutes' or ISO 8601 'P2D'/'PT4H', found 'soon' "
        "[scenario.duration]"]


def test_moments_check_their_weekday():
    assert moment("2030-03-01 15:00") == (dt.datetime(2030, 3, 1, 15, 0), None)
    assert moment("Fri 2030-03-01T15:00:30") == (dt.datetime(2030, 3, 1, 15, 0, 30), None)
    assert moment("Mon 2030-03-01 15:00") == (None, "2030-03-01 is a Friday, not a Monday")
    assert moment("2030-02-30 15:00")[1].startswith("'2030-02-30 15:00' is not a date and time")


def test_names_are_checked_against_the_definitions_and_the_scenarios_own_people_and_records(tmp_path):
    model = load([CRM, ACME])
    scenario, problems = _read(tmp_path, """\
        scenario: Names
        calendar: office
        start: Mon 2030-03-04 09:30
        given:
          users: [{username: ann, roles: [staff]}]
          groups:
            sales: {members: [ann, zed]}
          records:
            company:
              - {key: acme, name: Acme, owner: bob, colour: red}
            opportunity:
              - {key: deal, name: Deal, company: nowhere}
        steps:
          - submit: lead_enquiry
            by: ann
            values: {summary: Beds, budgett: 5}
            creates: {deal: big}
          - submit: credit_check
            on: acme
            by: ann
          - complete: nonesuch
            by: ann
          - expect:
              records:
                later: {stage: lost}
                deal: {size: 3}
        """)
    assert problems == []
    assert [str(p) for p in check_scenario(scenario, model)] == [
        "s.yaml:7:5: no user 'zed' in given: users (known: ann) [scenario.user]",
        "s.yaml:10:33: no user 'bob' in given: users (known: ann) [scenario.user]",
        f"s.yaml:10:45: company has no field 'colour' (known: {', '.join(sorted(f.name for f in model.entities['company'].all_fields()))}) "
        "[scenario.field]",
        "s.yaml:12:33: no record 'nowhere' yet (known: acme): give it in given: records or name it with a submission's creates: "
        "[scenario.record]",
        "s.yaml:14:5: form 'lead_enquiry' is recorded on a company: say which with on: KEY [scenario.on]",
        "s.yaml:14:5: form 'lead_enquiry' creates no 'deal' (its create actions: opportunity) [scenario.creates]",
        f"s.yaml:16:29: form 'lead_enquiry' has no field 'budgett' (known: "
        f"{', '.join(sorted(f.name for f in model.forms['lead_enquiry'].fields))}) [scenario.field]",
        "s.yaml:18:5: form 'credit_check' is recorded on an opportunity; 'acme' is a company [scenario.on]",
        "s.yaml:21:5: no step 'nonesuch' in any process [scenario.step]",
        "s.yaml:25:9: no record 'later' yet (known: acme, deal): give it in given: records or name it with a submission's creates: "
        "[scenario.record]",
        "s.yaml:26:16: opportunity has no field 'size' (known: "
        f"{', '.join(sorted(f.name for f in model.entities['opportunity'].all_fields()))}) [scenario.field]",
    ]


def test_a_packs_scenarios_are_its_tests_folder_and_never_definitions():
    assert [p.name for p in scenario_files(ACME)] == ["credit_check_over_the_weekend.yaml", "lead_not_called_back.yaml", "lead_to_proposal.yaml"]
    assert scenario_files(CRM) == []
    load([CRM, ACME])  # the loader does not read tests/ as definitions (it would refuse a document without kind:)
