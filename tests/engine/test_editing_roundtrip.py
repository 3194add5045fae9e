"""Every option a definition can carry survives the console's structured editors: a definition written back as YAML
(`editing.data_of`) and built again is the same definition (source locations aside), for every entity, form and
process of the shipped packs and for a pack that uses every property of the entity, form and process schemas."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine import editing, localpack
from engine.build import BUILDERS, Builder
from engine.errors import Loc
from engine.kinds import validate_document
from engine.loader import load_model
from engine.source import parse_text
from tests.conftest import ACME, CRM, PackWriter

SCHEMAS = Path(__file__).resolve().parents[2] / "engine" / "schemas"

EVERY = {
    "entities/site.yaml": """
        kind: entity
        name: site
        label: Site
        plural: Sites of work
        description: Where the work is done.
        title: "{{ record.name }}"
        customer: true
        fields:
          name: {type: string, label: Site name, help: As on the sign., required: true, unique: true, max_length: 80, min_length: 2,
                 placeholder: e.g. North yard, column: true}
          code: {type: string, pattern: "^[A-Z]{3}$", indexed: true, renamed_from: old_code}
          beds: {type: integer, min: 0, max: 500, default: 10}
          budget: {type: money}
          fee: {type: money, currency: EUR}
          kind:
            type: choice
            choices: [yard, {value: depot, label: The depot}, {value: shop, label: Shop}]
          company: {type: reference, entity: company}
          started: date
          owner: user
          note: text
        groups:
          depots:
            label: Depot sites
            description: Sites that store stock.
            when: "record.kind == 'depot'"
            fields:
              bays: {type: integer, min: 1}
        record_fields: {allowed: true, types: [string, date], max: 5}
        links:
          map: {label: Map, url: "https://maps.example/?q={{ record.name }}"}
          search: {url: "https://search.example/?q={{ record.code }}"}
        pages:
          navigation: false
          columns: [name, kind, beds]
          filters: [kind]
          search: [name, code]
          stages: kind
          sections:
            - {section: Site, columns: 2, help: The basics., fields: [name, code, kind, company]}
            - {section: Numbers, fields: [beds, budget, fee, started, owner, note]}
    """,
    "entities/plain.yaml": """
        kind: entity
        name: plain
        record_fields: {allowed: false}
        fields:
          name: string
    """,
    "forms/site_visit.yaml": """
        kind: form
        name: site_visit
        label: Site visit
        description: A visit to a site, as staff record it.
        portal_description: Tell us when you visited.
        entity: site
        contact: true
        portal: true
        fields:
          notes: {type: text, required: true}
          beds: {type: integer, min: 0}
          visitor: {type: string}
          company: {type: reference, entity: company}
        layout:
          - {section: Visit, columns: 2, help: What you saw., fields: [notes, beds]}
          - {section: Who, fields: [visitor, company]}
        on_submit:
          - {create: site, as: other_site, match: name, when: "form.visitor", set: {name: visitor, code: {value: ABC},
             note: "{{ form.notes }}", kind: {value: depot}}}
          - {update: record, set: {beds: beds, started: {value: "2026-01-05"}}}
          - {update: company, when: "form.company", set: {employees: 12}}
          - {start: site_review, with: {reason: notes, urgent: true}}
    """,
    "forms/quick_note.yaml": """
        kind: form
        name: quick_note
        fields:
          text: text
    """,
    "forms/site_check.yaml": """
        kind: form
        name: site_check
        entity: site
        fields:
          outcome: {type: choice, required: true, choices: [fine, {value: poor, label: Needs work}]}
          amount: {type: integer}
    """,
    "processes/site_review.yaml": """
        kind: process
        name: site_review
        label: Site review
        description: Every site is reviewed, approved and closed.
        entity: site
        calendar: office
        fallback: group:sales
        inputs:
          reason: {type: text, label: Why}
          urgent: boolean
        triggers:
          - form: site_visit
          - {record: site, on: [changed, created], when: "record.beds > 100"}
          - {record: site, on: [created]}
          - {schedule: "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9", starts: 2026-01-01, for_each: site, when: "record.kind == 'depot'"}
          - {schedule: "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9", for_each: site}
          - manual: true
        project:
          title: "Review of {{ record.name }}"
          manager: group:professional_services
        migrate:
          from: ">=1.0,<1.1"
          steps: {inspect_old: check, close_old: close}
        steps:
          - id: check
            title: "Check {{ record.name }}"
            description: Walk the site.
            assign: group:sales
            strategy: least_busy
            form: site_check
            due: 2 business days
            reminders: ["4 business hours", "1 business day"]
            escalate:
              - at: due
                alert: [assignee, manager]
                message: "{{ task.title }} is late."
              - {at: due + 1 business day, alert: role:sales_director, reassign: manager}
              - {at: due + 2 business days, reassign: group:sales}
            fallback: user:mia
          - id: agree
            approve: check
            title: "Agree the check of {{ record.name }}"
            description: Look at what was found.
            when: "steps.check.data.outcome == 'poor'"
            approvers: [role:sales_director, role:sales_manager]
            decide: all
            show: [record.name, check.outcome]
            due: {in: 1 business day, from: check}
            reminders: ["2 business hours"]
            escalate:
              - {at: due, alert: manager, message: "Decide on {{ record.name }}."}
            fallback: group:management
          - id: nod
            approve: check
            title: A nod
            approvers: role:sales_manager
          - id: both
            when: "steps.check.data.outcome == 'poor'"
            parallel:
              fix:
                - {id: fix, title: Fix it, assign: project_manager, due: {in: 3 days, from: check}}
                - {id: retest, title: Test again, assign: completer:fix, when: "steps.fix.outcome == 'done'"}
              tell:
                - {id: tell, title: Tell the company, assign: owner, due: 2 days, reminders: [1 day]}
          - id: close
            title: Close the review
            assign: user:ann
            strategy: round_robin
            approval: {by: role:sales_manager}
    """,
}


def _bare(value, top: bool = True):
    """A definition's value with every source location taken out (what is written, not where), and which pack its parts
    came from (a field an overlay added is the overlay's pack's: where, too)."""
    if isinstance(value, Loc):
        return None
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, tuple((f.name, _bare(getattr(value, f.name), False)) for f in dataclasses.fields(value)
                                            if not (f.name == "loc" or f.name.endswith("_loc") or f.name == "locs"
                                                    or (f.name == "pack" and not top))))
    if isinstance(value, (tuple, list)):
        return tuple(_bare(v, False) for v in value if not isinstance(v, Loc))
    if isinstance(value, dict):
        return {k: _bare(v, False) for k, v in value.items()}
    return value


def _rebuilt(definition, currency: str | None):
    """What the loader builds of the definition's YAML data written out (as the console's editors write it)."""
    text = localpack.dump(editing.data_of(definition))
    docs, problems = parse_text(text, "written.yaml")
    assert problems == [], [str(p) for p in problems]
    (doc,) = docs
    assert validate_document(doc) == [], (definition.name, [str(p) for p in validate_document(doc)], text)
    builder = Builder(doc, definition.pack, currency=currency)
    again = BUILDERS[definition.kind](builder)
    assert builder.problems == [], [str(p) for p in builder.problems]
    return again


def _every(model):
    for table in (model.entities, model.forms, model.processes):
        yield from table.values()


def _assert_round_trip(model) -> int:
    currency = {p.name: p.currency for p in model.packs}
    count = 0
    for d in _every(model):
        again = _rebuilt(d, currency.get(d.pack))
        assert _bare(again) == _bare(d), f"{d.kind} {d.name}: written as\n{localpack.dump(editing.data_of(d))}"
        count += 1
    return count


@pytest.fixture
def every(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = PackWriter(tmp_path).write("every", EVERY, extends="crm: '>=1.0'")
    model, problems = load_model([CRM, folder])
    assert problems == [], [str(p) for p in problems]
    return model


@pytest.mark.parametrize("paths", [[CRM], [CRM, ACME]], ids=["crm", "acme"])
def test_every_definition_of_the_shipped_packs_survives_being_written_back(paths):
    model, problems = load_model(paths)
    assert problems == []
    assert _assert_round_trip(model) > 20


def test_every_option_of_every_kind_survives_being_written_back(every):
    _assert_round_trip(every)
    process = every.processes["site_review"]
    assert str(process.fallback) == "group:sales" and process.migrate.from_ == ">=1.0,<1.1"
    data = editing.data_of(process)
    assert data["fallback"] == "group:sales"
    assert data["migrate"] == {"from": ">=1.0,<1.1", "steps": {"inspect_old": "check", "close_old": "close"}}
    assert editing.data_of(every.forms["site_visit"])["portal_description"] == "Tell us when you visited."
    assert "layout" not in editing.data_of(every.forms["quick_note"])  # no layout written where the pack wrote none


def _properties(node, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        out |= set(node.get("properties") or {})
        for v in node.values():
            _properties(v, out)
    elif isinstance(node, list):
        for v in node:
            _properties(v, out)
    return out


def _keys(node, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        out |= set(node)
        for v in node.values():
            _keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys(v, out)
    return out


def test_the_fixture_uses_every_property_the_schemas_of_entities_forms_and_processes_name():
    """So a new option in a schema fails here until the fixture (and so the round trip) covers it."""
    wanted: set[str] = set()
    for kind in ("entity", "form", "process"):
        _properties(json.loads((SCHEMAS / f"{kind}.schema.json").read_text()), wanted)
    common = json.loads((SCHEMAS / "common.schema.json").read_text())["$defs"]
    for name in ("field", "choice", "group", "link", "section", "source", "action", "due", "escalation", "task", "approval",
                 "parallel", "trigger"):
        _properties(common[name], wanted)
    used: set[str] = set()
    for text in EVERY.values():
        for doc in parse_text(text.replace("\n        ", "\n").strip(), "x.yaml")[0]:
            _keys(doc.data, used)
    assert wanted - used == set()


def test_a_process_fallback_and_a_step_fallback_go_into_an_overlay_and_migrate_is_said_to_be_the_packs(tmp_path):
    from tests.engine.test_editing import BASE, after

    base = editing.data_of(BASE.processes["lead_follow_up"])
    want = {**base, "fallback": "group:sales", "steps": [{**s, "fallback": "user:mia"} if s["id"] == "qualify" else s for s in base["steps"]]}
    ops = editing.overlay("process", base, want)
    assert ops == {"set": {"fallback": "group:sales"}, "change_steps": {"qualify": {"fallback": "user:mia"}}}
    got = after(tmp_path, "process", "lead_follow_up", ops)
    assert editing.differences(want, editing.data_of(got)) == []
    with pytest.raises(editing.CannotExpress, match="how running instances move to a new version \\(migrate\\) comes from its pack"):
        editing.overlay("process", base, {**base, "migrate": {"steps": {"call": "qualify"}}})
    with pytest.raises(editing.CannotExpress, match="cannot take its fallback away"):
        editing.overlay("process", want, base)
