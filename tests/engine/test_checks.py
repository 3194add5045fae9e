"""Every class of definition error, with its exact location and message."""
import pytest

from engine.loader import load, load_model
from engine.errors import DefinitionError

ENTITY = """
kind: entity
name: company
fields:
  name: {type: string, required: true}
  industry: {type: choice, choices: [healthcare, retail]}
  owner: user
"""


def problems(*folders) -> list[str]:
    model, found = load_model(folders)
    assert (model is None) == bool(found)
    return [str(p) for p in found]


def test_a_good_pack_loads(packs):
    model = load([packs.write("base", {"company.yaml": ENTITY})])
    assert [f.name for f in model.entities["company"].fields] == ["name", "industry", "owner"]
    assert model.entities["company"].fields[1].label == "Industry"


def test_all_problems_are_reported_at_once_sorted_by_place(packs):
    base = packs.write("base", {
        "a.yaml": "kind: entity\nname: a\nfields: {x: strng}\n",
        "b.yaml": "kind: form\nname: b\nfields: {y: string}\nentity: nowhere\n",
        "c.yaml": "kind: role\nname: c\npermissions: [fly]\n",
    })
    with pytest.raises(DefinitionError) as err:
        load([base])
    assert str(err.value).splitlines() == [
        "3 problems in the definitions:",
        "base/a.yaml:3:13: expected one of string, text, integer, decimal, money, boolean, date, datetime, email, phone, url, "
        "choice, multichoice, reference, user, group in 'x', found 'strng' [schema.enum]",
        "base/b.yaml:4:9: unknown entity 'nowhere' (known: a) [reference.entity]",
        "base/c.yaml:3:15: expected one of access, generate_tasks, approve_tasks, set_alerts, manage_own_tasks, monitor_tasks, "
        "project_access, edit_records, delete_records, add_record_fields, export, admin, portal in 'permissions', found 'fly' [schema.enum]",
    ]


@pytest.mark.parametrize("doc, expected", [
    ("kind: entity\nname: company\nfields: {name: string}\ncolour: red\n",
     "x.yaml:4:1: unknown key 'colour' (expected one of: customer, description, fields, groups, kind, label, links, name, "
     "pages, plural, record_fields, title) [schema.unknown-key]"),
    ("kind: entity\nname: company\n", "x.yaml:1:1: missing required key 'fields' [schema.missing-key]"),
    ("kind: entity\nname: Company\nfields: {name: string}\n",
     "x.yaml:2:7: expected a lower_snake_case name (a-z, 0-9 and _, starting with a letter) in 'name', found 'Company' [schema.pattern]"),
    ("kind: widget\nname: w\n", "x.yaml:1:7: unknown kind 'widget' (expected one of: pack, entity, form, process, role, group, "
                                "calendar, report, dashboard, overlay, labels) [schema.unknown-kind]"),
    ("- just\n- a list\n", "x.yaml:1:1: expected a mapping with 'kind:' and 'name:', found a list [schema.not-a-definition]"),
    ("kind: entity\nname: e\nfields:\n  bad name: string\n",
     "x.yaml:4:3: invalid name 'bad name' in 'fields': use lower_snake_case (a-z, 0-9 and _, starting with a letter) [schema.bad-name]"),
    ("kind: entity\nname: e\nfields:\n  n: {type: string, colour: red}\n",
     "x.yaml:4:21: unknown key 'colour' in 'n' (expected one of: choices, column, currency, default, entity, help, indexed, label, "
     "max, max_length, min, min_length, pattern, placeholder, renamed_from, required, type, unique) [schema.unknown-key]"),
    ("kind: entity\nname: e\nfields:\n  n: {type: string, required: maybe}\n",
     "x.yaml:4:31: expected true or false in 'required', found 'maybe' [schema.type]"),
    ("kind: process\nname: p\nsteps:\n  - id: a\n", "x.yaml:4:5: missing required key 'title' in 'steps' [schema.missing-key]"),
    ("kind: process\nname: p\nsteps:\n  - {id: a, title: A, escalate: [{at: due}]}\n",
     "x.yaml:4:34: expected at least one of the keys alert, reassign in 'escalate' [schema.shape]"),
], ids=["unknown-key", "missing-key", "bad-name", "unknown-kind", "not-a-mapping", "bad-field-name", "unknown-field-option",
        "wrong-type", "missing-title", "empty-escalation"])
def test_shape_errors(packs, doc, expected):
    folder = packs.write("p", {"x.yaml": doc})
    assert [p.replace("p/", "", 1) for p in problems(folder)] == [expected]


def test_field_errors(packs):
    folder = packs.write("p", {"e.yaml": """
        kind: entity
        name: company
        fields:
          id: string
          parent: reference
          sector: {type: choice}
          size: {type: integer, min: 10, max: 5, choices: [a]}
          code: {type: string, pattern: "([a-z"}
          founded: {type: date, default: yesterday}
          partner: {type: reference, entity: nobody}
        """})
    assert problems(folder) == [
        "p/e.yaml:4:3: 'id' is a reserved field name in entity 'company' (reserved: created_at, created_by, data, deleted_at, id, "
        "record_fields, row_version, title, updated_at, updated_by) [field.reserved]",
        "p/e.yaml:5:3: field 'parent' in entity 'company': a reference needs 'entity:' (one of: company) [field.entity]",
        "p/e.yaml:6:3: field 'sector' in entity 'company': a choice needs 'choices:' [field.choices]",
        "p/e.yaml:7:3: field 'size' in entity 'company': 'choices' does not apply to type integer [field.option]",
        "p/e.yaml:7:3: field 'size' in entity 'company': min 10 is greater than max 5 [field.range]",
        "p/e.yaml:8:3: field 'code' in entity 'company': invalid pattern: unterminated character set at position 1 [field.pattern]",
        "p/e.yaml:9:3: field 'founded' in entity 'company': default 'yesterday' is not a valid date: 'yesterday' is not a 'date' "
        "[field.default]",
        "p/e.yaml:10:3: unknown entity 'nobody' in field 'partner' (known: company) [reference.entity]",
    ]


def test_duplicate_definitions_and_group_fields(packs):
    folder = packs.write("p", {
        "a.yaml": ENTITY,
        "b.yaml": ENTITY + """
groups:
  health:
    when: "record.industry == 'healthcare'"
    fields: {name: string}
""",
    })
    assert problems(folder) == [
        "p/b.yaml:2:7: entity 'company' is already defined at p/a.yaml:2:7 [definition.duplicate]",
    ]
    folder = packs.write("q", {"a.yaml": ENTITY + "groups:\n  health:\n    when: \"record.industry == 'x'\"\n    fields: {name: string}\n"})
    assert problems(folder) == [
        "q/a.yaml:10:14: field 'name' of group 'health' is already a field of entity 'company' (q/a.yaml:4:3) [field.duplicate]",
    ]


def test_expressions_are_checked_with_their_location(packs):
    folder = packs.write("p", {"a.yaml": ENTITY + """
title: "{{ record.nme }}"
groups:
  health:
    when: "record.industry = 'healthcare'"
links:
  erp: {url: "https://erp.example.com/{{ customer.id }}"}
"""})
    assert problems(folder) == [
        "p/a.yaml:8:8: 'record.nme' in entity 'company' title template: 'record' has no field 'nme' (known: created_at, created_by, "
        "id, industry, name, owner, title, updated_at, updated_by) [expression.unknown-field]",
        "p/a.yaml:11:11: invalid condition in entity 'company' group 'health': expected token ')', got '=' [expression.syntax]",
        "p/a.yaml:13:14: unknown name 'customer' in entity 'company' link 'erp' template (available: record) [expression.unknown-name]",
    ]


def test_form_layout_and_mapping_errors(packs):
    folder = packs.write("p", {"company.yaml": ENTITY, "f.yaml": """
        kind: form
        name: enquiry
        entity: company
        contact: true
        fields:
          company_name: {type: string, required: true}
          notes: text
          budget: money
          kind: {type: choice, choices: [a, b]}
        layout:
          - section: Who
            fields: [company_name, nobody]
          - section: What
            fields: [notes, notes]
        on_submit:
          - create: company
            set:
              name: budget
              industry: kind
              owner: "{{ form.notes }}"
          - update: record
            set: {nme: notes}
          - start: nowhere
        """})
    assert problems(folder) == [
        "p/f.yaml:8:3: field 'budget' of form 'enquiry' is in no section of its layout [form.layout]",
        "p/f.yaml:9:3: field 'kind' of form 'enquiry' is in no section of its layout [form.layout]",
        "p/f.yaml:11:5: section 'Who' of form 'enquiry' lists 'nobody', which is not a field of the form [form.layout]",
        "p/f.yaml:13:5: field 'notes' appears twice in the layout of form 'enquiry' [form.layout]",
        "p/f.yaml:19:17: type mismatch: form field 'kind' is a choice of a, b but 'industry' is a choice of healthcare, retail [mapping.type]",
        "p/f.yaml:20:14: type mismatch: a template gives text but 'owner' is a user [mapping.type]",
        "p/f.yaml:22:16: entity 'company' has no field 'nme' (known: industry, name, owner) [mapping.target]",
        "p/f.yaml:23:5: unknown process 'nowhere' in 'start' (known: none defined) [reference.process]",
    ]


PROCESS = """
kind: process
name: follow_up
entity: company
calendar: office
steps:
  - id: call
    title: "Call {{ record.name }}"
    assign: group:sales
    due: 2 business days
    escalate:
      - {at: due, alert: manager}
      - {at: due + 1 business day, alert: role:director, reassign: group:leads}
  - id: check
    title: Check
    assign: completer:call
    due: {in: 4 hours, from: call}
"""
PEOPLE = """
kind: role
name: director
permissions: [access, approve_tasks]
---
kind: group
name: sales
roles: [director]
---
kind: group
name: leads
---
kind: calendar
name: office
timezone: Europe/London
working_hours: {mon-fri: "09:00-17:30"}
holidays: {country: GB, subdivision: ENG, dates: ["2026-12-24"]}
"""


def test_a_good_process_loads(packs):
    model = load([packs.write("p", {"company.yaml": ENTITY, "people.yaml": PEOPLE, "proc.yaml": PROCESS})])
    call = model.processes["follow_up"].steps[0]
    assert call.due.duration.unit == "business_days" and call.due.duration.amount == 2
    assert [str(p) for e in call.escalate for p in e.alert] == ["manager", "role:director"]


def test_process_errors(packs):
    folder = packs.write("p", {"company.yaml": ENTITY, "people.yaml": PEOPLE, "proc.yaml": """
        kind: process
        name: follow_up
        entity: company
        steps:
          - id: call
            title: "Call {{ record.name }} about {{ inputs.topic }}"
            assign: completer:check
            due: 2 fortnights
            form: nothing
            escalate:
              - {at: due + 1 day, alert: role:boss}
              - {at: due, alert: project_manager}
          - id: call
            title: Again
            due: {in: 1 business day, from: later}
          - id: later
            title: Later
            reminders: [1 hour]
        triggers:
          - {schedule: "FREQ=SOMETIMES"}
          - {form: missing_form}
        """})
    assert problems(folder) == [
        "p/proc.yaml:6:12: 'inputs.topic' in step 'call' title template: 'inputs' has no field 'topic' (known: none) "
        "[expression.unknown-field]",
        "p/proc.yaml:7:13: 'completer:check' in step 'call' assignee: step 'check' does not finish before this one "
        "(earlier steps: none) [reference.step]",
        "p/proc.yaml:8:10: expected e.g. '2 business days', '4 business hours', '3 days', '30 minutes' or ISO 8601 'P2D'/'PT4H', "
        "found '2 fortnights' [duration.invalid]",
        "p/proc.yaml:9:11: unknown form 'nothing' in step 'call' (known: none defined) [reference.form]",
        "p/proc.yaml:11:34: unknown role 'boss' in step 'call' escalation (known: director) [reference.role]",
        "p/proc.yaml:12:9: escalation levels of step 'call' must be in time order, each later than the one before [escalation.order]",
        "p/proc.yaml:12:26: 'project_manager' in step 'call' escalation, but process 'follow_up' has no 'project:' [party.project]",
        "p/proc.yaml:13:9: step id 'call' is used twice in process 'follow_up' (first at p/proc.yaml:5:9) [step.duplicate]",
        "p/proc.yaml:15:10: '1 business day' counts business time, but process 'follow_up' names no 'calendar:' "
        "(and no calendar is named 'default') [duration.calendar]",
        "p/proc.yaml:15:10: step 'call' is due from step 'later', which does not finish before it (earlier steps: call) [step.due-from]",
        "p/proc.yaml:16:9: step 'later' has reminders or escalations but no 'due:' [step.no-due]",
        "p/proc.yaml:20:16: process 'follow_up' runs on a company; a schedule needs 'for_each: company' [trigger.entity]",
        "p/proc.yaml:20:16: recurrence 'FREQ=SOMETIMES': FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY, found 'SOMETIMES' "
        "[trigger.rrule]",
        "p/proc.yaml:21:5: unknown form 'missing_form' in trigger (known: none defined) [reference.form]",
    ]


def test_calendar_and_group_errors(packs):
    folder = packs.write("p", {"people.yaml": """
        kind: calendar
        name: office
        timezone: Mars/Olympus
        working_hours:
          mon-fri: "17:00-09:00"
          funday: "09:00-12:00"
        holidays: {country: XX}
        ---
        kind: group
        name: sales
        roles: [ghost]
        calendar: nowhere
        ---
        kind: process
        name: p
        steps:
          - id: split
            parallel: {only: [{id: a, title: A}]}
        """})
    assert problems(folder) == [
        "p/people.yaml:2:7: calendar 'office' has no working hours at all [calendar.hours]",
        "p/people.yaml:3:11: calendar 'office': unknown time zone 'Mars/Olympus' (expected an IANA name like 'Europe/London') "
        "[calendar.timezone]",
        "p/people.yaml:5:12: expected working hours like '09:00-17:30' (start before end) or 'closed', found '17:00-09:00' "
        "[calendar.hours]",
        "p/people.yaml:6:3: expected a day or day range like 'mon' or 'mon-fri', found 'funday' [calendar.days]",
        "p/people.yaml:7:11: calendar 'office': no public holidays are known for country 'XX' [calendar.country]",
        "p/people.yaml:11:9: unknown role 'ghost' in group 'sales' (known: none defined) [reference.role]",
        "p/people.yaml:12:11: unknown calendar 'nowhere' in group 'sales' (known: office) [reference.calendar]",
        "p/people.yaml:18:15: needs at least 2 entries in 'parallel' [schema.empty]",
    ]


def test_literal_values_in_actions_are_type_checked(packs):
    folder = packs.write("p", {"company.yaml": ENTITY, "f.yaml": """
        kind: form
        name: quick
        fields: {title: string}
        on_submit:
          - create: company
            set:
              name: title
              industry: {value: retail}
          - create: company
            as: second
            set:
              name: {value: 42}
              industry: {value: farming}
        """})
    assert problems(folder) == [
        "p/f.yaml:12:21: type mismatch for 'name': 42 is not a valid string: 42 is not of type 'string' [mapping.type]",
        "p/f.yaml:13:25: type mismatch for 'industry': 'farming' is not a valid choice: 'farming' is not one of "
        "['healthcare', 'retail'] [mapping.type]",
    ]


def test_templates_may_read_earlier_steps_form_data_only_by_real_field_names(packs):
    folder = packs.write("p", {"company.yaml": ENTITY, "people.yaml": PEOPLE, "f.yaml": """
        kind: form
        name: call_form
        fields: {result: {type: choice, choices: [won, lost]}}
        ---
        kind: process
        name: p
        entity: company
        steps:
          - {id: call, title: Call, form: call_form}
          - id: next
            title: "{{ steps.call.data.result }} / {{ steps.call.data.reslt }} / {{ steps.call.outcome }} / {{ steps.cal.outcome }}"
        """})
    assert problems(folder) == [
        "p/f.yaml:11:12: 'steps.cal' in step 'next' title template: 'steps' has no field 'cal' (known: call, next) "
        "[expression.unknown-field]",
        "p/f.yaml:11:12: 'steps.call.data.reslt' in step 'next' title template: 'steps.call.data' has no field 'reslt' "
        "(known: result) [expression.unknown-field]",
    ]


def test_entity_page_options_name_real_fields(packs):
    base = packs.write("base", {"company.yaml": ENTITY + """
pages:
  columns: [industry, colour]
  stages: owner
  sections:
    - section: Main
      fields: [name, name]
"""})
    assert problems(base) == [
        "base/company.yaml:8:1: field 'industry' of entity 'company' is in no section of pages.sections [entity.pages]",
        "base/company.yaml:8:1: field 'owner' of entity 'company' is in no section of pages.sections [entity.pages]",
        "base/company.yaml:9:23: entity 'company' pages.columns names 'colour', which is not a field of the entity "
        "(fields: name, industry, owner) [entity.pages]",
        "base/company.yaml:10:11: entity 'company' pages.stages must name a choice field; 'owner' is a user field [entity.pages]",
        "base/company.yaml:12:7: field 'name' appears twice in the sections of entity 'company' [entity.pages]",
    ]


def test_entity_pages_default_to_good_choices(packs):
    from engine import pages

    model = load([packs.write("base", {"company.yaml": ENTITY})])
    company = model.entities["company"]
    assert [f.name for f in pages.columns(company)] == ["name", "industry", "owner"]
    assert [f.name for f in pages.filters(company)] == ["industry", "owner"]
    assert pages.search_fields(company) == ("title",)
    assert [s.fields for s in pages.edit_sections(company)] == [("name", "industry", "owner")]
    assert pages.stages(company) is None and [e.name for e in pages.navigation(model)] == ["company"]


def test_parties_that_can_never_name_anyone_are_located_problems(packs):
    """A step's assignee and fallback, and the process's fallback, must be able to name someone when a task is new."""
    folder = packs.write("p", {"company.yaml": ENTITY, "people.yaml": PEOPLE, "note.yaml": """
        kind: entity
        name: note
        fields: {text: string}
        """, "proc.yaml": """
        kind: process
        name: follow_up
        entity: company
        fallback: completer:call
        steps:
          - id: call
            title: Call
            assign: assignee
            fallback: group:nobody
          - id: chase
            title: Chase
            assign: manager
            fallback: completer:later
          - id: later
            title: Later
            assign: owner
            fallback: project_manager
        ---
        kind: process
        name: loose
        fallback: owner
        steps:
          - {id: a, title: A, assign: role:ghost, fallback: assignee}
        ---
        kind: process
        name: on_notes
        entity: note
        steps:
          - {id: a, title: A, assign: group:sales, fallback: owner}
        """})
    assert problems(folder) == [
        "p/proc.yaml:4:11: 'completer:call' cannot be the fallback of process 'follow_up': it stands in for every step, and the "
        "steps up to 'call' have no completer of it yet; give the steps after it a 'fallback:' of their own [party.never]",
        "p/proc.yaml:8:13: 'assignee' cannot be the step 'call' assignee: a new task has no assignee yet, so it would name nobody "
        "[party.never]",
        "p/proc.yaml:9:15: unknown group 'nobody' in step 'call' fallback (known: leads, sales) [reference.group]",
        "p/proc.yaml:12:13: 'manager' cannot be the step 'chase' assignee: a new task has no assignee or group yet whose manager "
        "it would be; assign it to the group (group:NAME): its managers take what none of its members may [party.never]",
        "p/proc.yaml:13:15: 'completer:later' in step 'chase' fallback: step 'later' does not finish before this one "
        "(earlier steps: call) [reference.step]",
        "p/proc.yaml:17:15: 'project_manager' in step 'later' fallback, but process 'follow_up' has no 'project:' [party.project]",
        "p/proc.yaml:21:11: 'owner' in process 'loose' fallback, but process 'loose' names no 'entity:' whose owner it would be "
        "[party.owner]",
        "p/proc.yaml:23:31: unknown role 'ghost' in step 'a' assignee (known: director) [reference.role]",
        "p/proc.yaml:23:53: 'assignee' cannot be the step 'a' fallback: a new task has no assignee yet, so it would name nobody "
        "[party.never]",
        "p/proc.yaml:29:54: 'owner' in step 'a' fallback: entity 'note' has no 'owner' field of type user [party.owner]",
    ]


def test_a_group_says_whether_its_managers_take_turns(packs):
    base = packs.write("base", {"pack.yaml": "kind: pack\nname: base\nversion: 1.0.0\n", "people.yaml": """
        kind: group
        name: sales
        managers: skip
        ---
        kind: group
        name: support
        ---
        kind: group
        name: night
        managers: sometimes
        """})
    assert problems(base) == ["base/people.yaml:10:11: expected one of take_turns, skip in 'managers', found 'sometimes' [schema.enum]"]
    good = packs.write("good", {"pack.yaml": "kind: pack\nname: good\nversion: 1.0.0\n", "people.yaml": """
        kind: group
        name: sales
        managers: skip
        ---
        kind: group
        name: support
        """})
    client = packs.write("client", {"pack.yaml": "kind: pack\nname: client\nversion: 1.0.0\nextends: {good: '>=1.0'}\n", "o.yaml": """
        kind: overlay
        name: support_managers
        target: group/support
        set: {managers: never}
        """})
    model = load([good])
    assert (model.groups["sales"].managers, model.groups["support"].managers) == ("skip", "take_turns")
    assert problems(good, client) == ["client/o.yaml:4:7: group 'support': 'managers' is take_turns or skip, found 'never' "
                                      "[group.managers]"]
