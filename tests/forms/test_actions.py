"""On-submit actions beyond create and update of the form's record: find or create by a unique field, conditions
(`when:`), and updates of the record a reference field or an earlier action names; all in the submission's one
transaction, once per submission id, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.compiler import compile_model
from engine.loader import load, load_model
from forms.submit import SubmissionInvalid, submit
from runtime import records
from runtime.db import upgrade
from runtime.plan import apply, plan
from tests.runtime.conftest import DIALECTS, add_user, empty_database

ENTITIES = {
    "company.yaml": """
        kind: entity
        name: company
        title: "{{ record.name }}"
        fields:
          name: {type: string, required: true}
        """,
    "installation.yaml": """
        kind: entity
        name: installation
        title: "{{ record.serial_number }}"
        fields:
          serial_number: {type: string, required: true, unique: true}
          company: {type: reference, entity: company, required: true}
          model: string
          visits: integer
          status: {type: choice, choices: [running, replaced], default: running}
          notes: text
        """,
}

VISIT = """
    kind: form
    name: service_visit
    label: Service visit
    entity: company
    contact: true
    fields:
      serial_number: {type: string, required: true}
      model: string
      visits: integer
      outcome: {type: choice, choices: [serviced, replaced], required: true}
    on_submit:
      - create: installation
        as: device
        match: serial_number
        set:
          serial_number: serial_number
          company: record
          model: model
          visits: visits
      - update: device
        when: "form.outcome == 'replaced'"
        set:
          status: {value: replaced}
    """

FOLLOW_UP = """
    kind: form
    name: follow_up
    label: Follow-up
    entity: company
    fields:
      installation: {type: reference, entity: installation}
      notes: text
      urgent: boolean
    on_submit:
      - update: installation
        set:
          notes: notes
      - create: installation
        as: spare
        when: "form.urgent"
        set:
          serial_number: "SPARE-{{ record.name }}"
          company: record
    """


@pytest.fixture(params=DIALECTS)
def site(request, packs, tmp_path):
    """A database with the pack's tables, a company and a user: (engine, compiled, company id, user)."""
    compiled = compile_model(load([packs.write("p", {**ENTITIES, "visit.yaml": VISIT, "follow_up.yaml": FOLLOW_UP})]))
    with empty_database(request.param, tmp_path) as engine:
        with engine.begin() as conn:
            upgrade(conn)
            apply(conn, compiled, plan(conn, compiled))
            uid = add_user(conn, "ann")
            company = records.create_record(conn, compiled, "company", {"name": "St Mary's"}, uid).id
        yield engine, compiled, company, {"id": uid, "name": "Ann", "email": "ann@example.com"}


def installations(engine, compiled) -> list[dict]:
    with engine.connect() as conn:
        return [{"id": r.id, **r.data} for r in records.search_records(conn, compiled, "installation", sort="id").items]


def visit(site, submission: str, **values):
    engine, compiled, company, user = site
    with engine.begin() as conn:
        return submit(conn, compiled, "service_visit", {"outcome": "serviced", **values}, submission_id=submission, user=user,
                      record_id=company)


def test_a_repeat_visit_to_the_same_device_updates_it_instead_of_failing(site):
    engine, compiled, company, _ = site
    first = visit(site, "s-1", serial_number="HX-204711", model="HX 2", visits=1)
    second = visit(site, "s-2", serial_number="HX-204711", visits=2)
    assert list(first.created) == ["device"] and first.updated == {}
    assert second.created == {} and second.updated == {"device": ["installation", first.created["device"][1]]}
    assert installations(engine, compiled) == [
        {"id": first.created["device"][1], "serial_number": "HX-204711", "company": company, "model": "HX 2", "visits": 2,
         "status": "running"}]
    visit(site, "s-3", serial_number="HX-999", visits=1)
    assert [i["serial_number"] for i in installations(engine, compiled)] == ["HX-204711", "HX-999"]


def test_without_match_the_repeat_visit_is_refused_as_a_duplicate(site, packs):
    engine, _, company, user = site
    compiled = compile_model(load([packs.write("q", {**ENTITIES, "visit.yaml": VISIT.replace("match: serial_number", "")})]))
    with engine.begin() as conn:
        submit(conn, compiled, "service_visit", {"serial_number": "HX-1", "outcome": "serviced"}, submission_id="a", user=user, record_id=company)
    with pytest.raises(SubmissionInvalid) as refused, engine.begin() as conn:
        submit(conn, compiled, "service_visit", {"serial_number": "HX-1", "outcome": "serviced"}, submission_id="b", user=user, record_id=company)
    assert refused.value.errors == {"serial_number": "Serial number 'HX-1' is already used by installation 'HX-1'"}


def test_a_submission_runs_its_actions_once_however_often_it_is_sent(site):
    engine, compiled, _, _ = site
    first = visit(site, "s-1", serial_number="HX-1", visits=1)
    again = visit(site, "s-1", serial_number="HX-1", visits=5)
    assert again.replayed and again.created == first.created
    assert installations(engine, compiled)[0]["visits"] == 1
    with engine.connect() as conn:
        history = conn.execute(sa.text("SELECT count(*) FROM contact_history WHERE entity = 'installation'")).scalar()
    assert history == 1  # created once, never updated by the repeat


def test_a_conditional_action_runs_only_when_its_condition_holds(site):
    engine, compiled, _, _ = site
    visit(site, "s-1", serial_number="HX-1")
    assert installations(engine, compiled)[0]["status"] == "running"
    visit(site, "s-2", serial_number="HX-1", outcome="replaced")
    assert installations(engine, compiled)[0]["status"] == "replaced"


def test_an_update_changes_the_record_a_reference_field_of_the_form_names(site):
    engine, compiled, company, user = site
    device = visit(site, "s-1", serial_number="HX-1").created["device"][1]
    with engine.begin() as conn:
        done = submit(conn, compiled, "follow_up", {"installation": device, "notes": "Fan noisy"}, submission_id="f-1", user=user,
                      record_id=company)
    assert done.created == {}  # not urgent: no spare
    assert installations(engine, compiled)[0]["notes"] == "Fan noisy"
    with engine.begin() as conn:  # no installation named: nothing to update; urgent: the spare is made
        done = submit(conn, compiled, "follow_up", {"notes": "Send a spare", "urgent": True}, submission_id="f-2", user=user,
                      record_id=company)
    assert list(done.created) == ["spare"]
    assert [(i["serial_number"], i.get("notes")) for i in installations(engine, compiled)] == [("HX-1", "Fan noisy"), ("SPARE-St Mary's", None)]


def test_a_reference_to_no_record_refuses_the_submission_and_keeps_nothing(site):
    engine, compiled, company, user = site
    with pytest.raises(SubmissionInvalid) as refused, engine.begin() as conn:
        submit(conn, compiled, "follow_up", {"installation": 999, "notes": "x", "urgent": True}, submission_id="f-1", user=user,
               record_id=company)
    assert refused.value.errors == {"installation": "there is no installation 999"}
    assert installations(engine, compiled) == []


# -- what check says ------------------------------------------------------------------------------------------------


def problems(packs, form: str) -> list[str]:
    _, found = load_model([packs.write("p", {**ENTITIES, "f.yaml": form})])
    return [str(p).replace("p/f.yaml:", "") for p in found]


FORM = """
kind: form
name: f
entity: company
fields:
  serial_number: string
  model: string
  company: {type: reference, entity: company}
on_submit:
"""


@pytest.mark.parametrize("actions, expected", [
    ("  - {create: installation, match: model, set: {serial_number: serial_number, company: record, model: model}}\n",
     "9:35: 'match: model' must name a unique field of installation, to find the one record with that value; 'model' is not unique "
     "(unique fields: serial_number) [action.match]"),
    ("  - {create: installation, match: colour, set: {serial_number: serial_number, company: record}}\n",
     "9:35: 'match: colour' must name a unique field of installation, to find the one record with that value; 'colour' is not a field "
     "of installation (unique fields: serial_number) [action.match]"),
    ("  - {create: installation, match: serial_number, set: {serial_number: '{{ form.model }}', company: record}}\n"
     "  - {create: installation, as: other, match: serial_number, set: {company: record, model: model}}\n",
     ["10:5: creating a installation needs 'serial_number' (required, no default); add it to 'set' [action.required]",
      "10:46: 'match: serial_number' finds the installation by the value 'set' gives 'serial_number', but 'set' gives it none [action.match]"]),
    ("  - {update: record, when: 'form.colour == 1', set: {name: model}}\n",
     "9:28: 'form.colour' in form 'f' on_submit when condition: 'form' has no field 'colour' (known: company, model, serial_number) "
     "[expression.unknown-field]"),
    ("  - {update: serial_number, set: {model: model}}\n",
     "9:14: 'update: serial_number' names form field 'serial_number', which is a string; only a reference field points at a record "
     "to update [action.update]"),
    ("  - {update: installation, set: {model: model}}\n",
     "9:14: 'update: installation' names no reference field of form 'f' and no earlier create action (possible: record, company) "
     "[action.update]"),
    ("  - {create: company, as: company, set: {name: model}}\n  - {update: company, set: {name: model}}\n",
     "10:14: 'update: company' is ambiguous: form 'f' has a field 'company' and an earlier create action is named 'company'; rename "
     "one (the action's 'as:') [action.update]"),
    ("  - {update: company, set: {serial_number: model}}\n",
     "9:44: entity 'company' has no field 'serial_number' (known: name) [mapping.target]"),
], ids=["match-not-unique", "match-unknown", "match-not-set", "when-unknown-name", "update-not-a-reference", "update-unknown",
        "update-ambiguous", "update-maps-to-the-referenced-entity"])
def test_action_problems_are_located(packs, actions, expected):
    assert problems(packs, FORM + actions) == (expected if isinstance(expected, list) else [expected])


def test_a_good_find_or_create_with_conditions_checks_clean(packs):
    assert problems(packs, VISIT) == []
    assert problems(packs, FOLLOW_UP) == []
