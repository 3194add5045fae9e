"""The fast yes/no schema check never lets through a document that the published JSON Schema rejects."""
from __future__ import annotations

import copy

import fastjsonschema
from hypothesis import given, settings, strategies as st

from engine.kinds import fast_check, validator
from engine.source import read_file
from tests.conftest import ACME, CRM

# (the schema a shipped document is written to, the document): definitions by their kind, a pack's tests/ as scenarios
# (a pack's demo/ is data, checked by admin/demo.py, not a definition)
DOCS = [("scenario" if p.relative_to(root).parts[0] == "tests" else d.data["kind"], d.data)
        for root in (CRM, ACME) for p in sorted(root.rglob("*.yaml")) if p.relative_to(root).parts[0] != "demo"
        for d in read_file(p)[0] if d.data is not None]
ODD_VALUES = st.sampled_from([None, True, False, 0, 7, 1.5, 2.0, "", "Bad Name", "x", "due", "owner", "role:x", [], ["x"], [{}], {}, {"x": 1}, {"value": 1}])


def _fast_says_valid(kind: str, data) -> bool:
    try:
        fast_check(kind)(data)
        return True
    except fastjsonschema.JsonSchemaValueException:  # its "invalid"; anything else would be a crash in `tailor check`
        return False


def test_every_shipped_document_passes_both_checks():
    assert {schema for schema, _ in DOCS} >= {"entity", "form", "process", "overlay", "scenario"}
    for schema, data in DOCS:
        assert not list(validator(schema).iter_errors(data)), data.get("name") or data.get("scenario")
        assert _fast_says_valid(schema, data), data.get("name") or data.get("scenario")


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


@st.composite
def edited(draw):
    """A shipped document with one value replaced, one key dropped or one unknown key added somewhere: (its schema, it)."""
    schema, data = draw(st.sampled_from(DOCS))
    data = copy.deepcopy(data)
    path = draw(st.sampled_from(list(_paths(data))[1:]))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    op = draw(st.sampled_from(["replace", "drop", "add"]))
    if op == "replace":
        parent[path[-1]] = draw(ODD_VALUES)
    elif op == "drop":
        parent.pop(path[-1])
    elif isinstance(parent, dict):
        parent[draw(st.sampled_from(["extra", "kind", "fields", "x"]))] = draw(ODD_VALUES)
    return schema, data


@settings(max_examples=300, deadline=None)
@given(doc=edited())
def test_fast_check_agrees_with_the_published_schema(doc):
    schema, data = doc
    if schema == "scenario":
        kind = "scenario"  # scenarios have no kind: their folder says what they are
    else:
        kind = data["kind"] if isinstance(data.get("kind"), str) and data["kind"] in ("pack", "entity", "form", "process", "role",
                                                                                         "group", "calendar", "overlay") else None
    if kind is None:
        return  # validate_document refuses an unknown kind before any schema is asked
    errors = list(validator(kind).iter_errors(data))
    if _fast_says_valid(kind, data):  # the other way round only costs time: jsonschema then finds no problem
        assert not errors, [e.message for e in errors]
