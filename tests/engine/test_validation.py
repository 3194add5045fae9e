"""One validator for every check: ECMA-262 patterns, enforced formats, the published x-tailor vocabulary."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from jsonschema_specifications import REGISTRY as META_SCHEMAS
from referencing import Resource

from engine import fieldtypes, formats, patterns, validation
from engine.compiler import compile_model
from engine.loader import load
from tests.conftest import ACME, CRM

VOCABULARY = json.loads((Path(__file__).resolve().parents[2] / "engine" / "schemas" / "x-tailor.vocabulary.json").read_text())


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM, ACME]))


def every_schema(c):
    return [*c.entity_schemas.values(), *c.group_schemas.values(), *c.form_schemas.values(),
            *(s["inputs"] for s in c.process_specs.values())]


def walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


@pytest.mark.parametrize("pattern, text, matches", [
    ("^[A-Z]{3}[0-9]{4}$", "ACM0001", True),
    ("^[A-Z]{3}[0-9]{4}$", "ACM0001\n", False),  # Python's `$` matches before a final newline; ECMA-262's does not
    (r"^\d{4}$", "\u0662\u0660\u0662\u0664", False),  # Arabic-Indic digits are \d to Python, not to ECMA-262
    (r"^\w+$", "caf\u00e9", False),
    ("^a.b$", "a\rb", False),  # '.' stops at every ECMA line terminator, not only \n
    ("^a.b$", "a\u00e9b", True),
    (r"^\s$", "\ufeff", True),  # ECMA's \s has the byte-order mark, Python's has not
    (r"^\s$", "\x1c", False),  # ... and Python's has the file separator, ECMA's has not
    (r"^[^@\s]+$", "a\u2028b", False),
    (r"^[\S]+$", "ab", True),
    (r"^[^a\S]$", " ", True),
    (r"^[^a\S]$", "a", False),
    ("^[]$", "", False),
    ("^(?<year>[0-9]{4})-\\k<year>$", "2024-2024", True),
    (r"^\u00e9\u{1F600}$", "\u00e9\U0001f600", True),
])
def test_patterns_match_as_ecma_262(pattern, text, matches):
    assert bool(patterns.compile(pattern).search(text)) is matches


@pytest.mark.parametrize("pattern", [r"\Z", r"\A", "(?P<x>a)", "(?i)abc", "a*+", r"\e", "[a"])
def test_patterns_that_are_not_ecma_262_are_refused_with_a_reason(pattern):
    assert patterns.problem(pattern)


def test_a_python_only_pattern_in_a_definition_is_a_problem(packs):
    from engine.errors import DefinitionError

    folder = packs.write("p", {"e.yaml": "kind: entity\nname: thing\nfields:\n  code: {type: string, pattern: '^[A-Z]+\\Z'}\n"})
    with pytest.raises(DefinitionError) as caught:
        load([folder])
    assert "field 'code' in entity 'thing': invalid pattern: '\\Z' is not an escape in an ECMA-262 pattern" in str(caught.value)


@pytest.mark.parametrize("fmt, good, bad", [
    ("date", ["2024-02-29", "2025-12-31"], ["2025-02-29", "2025-13-01", "yesterday", "2025-1-01", "2025-01-01\n"]),
    ("date-time", ["2025-05-01T09:30:00Z", "2025-05-01t09:30:00.25+01:00", "2016-12-31T23:59:60Z"],
     ["yesterday", "2025-05-01T09:30:00", "2025-05-01T24:00:00Z", "2025-05-01T09:30:00+24:00", "2025-05-01T12:59:60Z"]),
    ("uri", ["https://example.com/a?b=c#d", "mailto:ann@example.com", "urn:isbn:0451450523"],
     ["https://example.com/a b", "example.com", "/relative", "http://ex%4mple.com"]),
    ("email", ["ann@example.com", "a.b+c@sub.example.co.uk"], ["ann@example", "a..b@example.com", "ann@@example.com", "ann @example.com"]),
])
def test_formats_are_enforced(fmt, good, bad):
    validator = validation.validator({"type": "string", "format": fmt})
    assert [v for v in good if not validator.is_valid(v)] == []
    assert [v for v in bad if validator.is_valid(v)] == []


def test_every_format_the_published_schemas_use_has_a_checker(compiled):
    used = {node["format"] for schema in every_schema(compiled) for node in walk(schema) if isinstance(node.get("format"), str)}
    assert used and used <= set(formats.CHECKS), f"formats without a checker: {used - set(formats.CHECKS)}"


def test_money_bounds_are_enforced_and_reported_as_bounds():
    from engine.model import Field
    from engine.source import Loc

    f = Field("budget", "money", Loc("t"), "Budget", min=10, max=500)
    validator = validation.validator(fieldtypes.get("money").json_schema(f))
    assert validator.is_valid("10.00") and validator.is_valid("500")
    assert [(e.validator, e.validator_value) for e in validator.iter_errors("9.99")] == [("minimum", 10)]
    assert [(e.validator, e.validator_value) for e in validator.iter_errors("500.01")] == [("maximum", 500)]
    # a minimum of zero is also the unsigned pattern, which any validator enforces without the vocabulary
    zero = fieldtypes.get("money").json_schema(Field("budget", "money", Loc("t"), "Budget", min=0))
    assert not jsonschema.Draft202012Validator(zero).is_valid("-1.00")


def test_labelled_choices_use_one_of_const_title_and_say_what_is_allowed(compiled):
    channel = compiled.form_schemas["lead_enquiry"]["properties"]["channel"]
    assert channel["type"] == "string" and {"const": "phone", "title": "Phone"} in channel["oneOf"] and "enum" not in channel
    errors = list(validation.validator(channel).iter_errors("pigeon"))
    assert [e.message for e in errors] == ["'pigeon' is not one of ['phone', 'email', 'website', 'event', 'visit']"]


def test_the_vocabulary_names_every_x_tailor_keyword_the_schemas_use(compiled):
    used = {k for schema in every_schema(compiled) for node in walk(schema) for k in node if k.startswith("x-tailor-")}
    assert used <= set(VOCABULARY["properties"]), f"keywords missing from the vocabulary: {used - set(VOCABULARY['properties'])}"
    assert VOCABULARY["properties"]["x-tailor-type"]["enum"] == list(fieldtypes.names())
    assert VOCABULARY["$vocabulary"]["tailor:vocab/x-tailor"] is False  # optional: validators that ignore it still validate


def test_every_compiled_schema_is_valid_against_the_x_tailor_meta_schema(compiled):
    registry = META_SCHEMAS.with_resource(VOCABULARY["$id"], Resource.from_contents(VOCABULARY))
    jsonschema.Draft202012Validator.check_schema(VOCABULARY)
    meta = jsonschema.Draft202012Validator(VOCABULARY, registry=registry)
    for schema in every_schema(compiled):
        assert list(meta.iter_errors(schema)) == []
    # the meta-schema reaches into subschemas ($dynamicRef), so a bad keyword value anywhere is caught
    bad = {"type": "object", "properties": {"x": {"type": "string", "x-tailor-currency": "pounds"}}}
    assert [e.message for e in meta.iter_errors(bad)] == ["'pounds' does not match '^[A-Z]{3}$'"]
