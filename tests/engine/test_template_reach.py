"""What templates can reach: a record's fields as stored. A reference holds the id of the record it points at and a
user field a user's id; templates do not follow them, and check says so where runtime would otherwise fail."""
from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from engine import expressions
from engine.loader import load_model

PACK = {
    "company.yaml": """
        kind: entity
        name: company
        fields:
          name: {type: string, required: true}
          owner: user
        """,
    "person.yaml": """
        kind: entity
        name: person
        title: "{{ record.first_name }} ({{ record.company.name }})"
        fields:
          first_name: string
          company: {type: reference, entity: company}
        """,
    "visit.yaml": """
        kind: process
        name: visit
        entity: person
        steps:
          - id: call
            title: "Call {{ record.first_name | upper }} of company {{ record.company }}"
            description: "Account manager: {{ record.created_by.name }}"
            form: note
          - id: write
            title: "{{ steps.call.data.contact.email }}"
        """,
    "note.yaml": """
        kind: form
        name: note
        entity: person
        fields:
          contact: {type: reference, entity: person}
          text: string
        on_submit:
          - update: record
            set:
              first_name: "{{ form.contact.first_name }}: {{ form.text }}"
        """,
}


def test_a_template_that_reads_through_a_reference_or_a_user_is_refused_where_written(packs):
    _, found = load_model([packs.write("p", PACK)])
    assert [str(p).replace("p/", "", 1) for p in found] == [
        "note.yaml:10:19: 'form.contact.first_name' in form 'note' on_submit template: 'form.contact' is the id of a person record; "
        "templates do not follow references, so it has no 'first_name' [expression.reference]",
        "person.yaml:3:8: 'record.company.name' in entity 'person' title template: 'record.company' is the id of a company record; "
        "templates do not follow references, so it has no 'name' [expression.reference]",
        "visit.yaml:7:18: 'record.created_by.name' in step 'call' description template: 'record.created_by' is a user's id; "
        "templates do not follow references, so it has no 'name' [expression.reference]",
        "visit.yaml:10:12: 'steps.call.data.contact.email' in step 'write' title template: 'steps.call.data.contact' is the id of a "
        "person record; templates do not follow references, so it has no 'email' [expression.reference]",
    ]


def test_what_check_refuses_is_what_would_fail_at_run_time():
    """A record as templates see it at run time (runtime.records.Record.context): the reference is its id."""
    with pytest.raises(UndefinedError):
        expressions.render("{{ record.company.name }}", {"record": {"first_name": "Ann", "company": 7}})
    assert expressions.render("{{ record.first_name | upper }} of company {{ record.company }}",
                              {"record": {"first_name": "Ann", "company": 7}}) == "ANN of company 7"
