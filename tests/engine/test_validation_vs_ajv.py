"""Tailor's verdicts agree with a second implementation: ajv (Draft 2020-12, strict) with ajv-formats, run in node.

Browsers check Tailor's published form schemas with ajv (RJSF's validator); the server checks them with
`engine.validation`. Hypothesis generates values near the edges where the two used to differ (formats,
`$` before a final newline, Unicode digits, money bounds) for every field of every shipped form, and whole
submissions of every form; both must say the same.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import validation
from engine.compiler import compile_model
from engine.loader import load
from tests import npm
from tests.conftest import ACME, CRM

VOCABULARY = Path(__file__).resolve().parents[2] / "engine" / "schemas" / "x-tailor.vocabulary.json"
PACKS = {"crm": (CRM,), "crm+acme": (CRM, ACME)}


class Ajv:
    """One long-lived node process running tests/js/ajv_server.js: a JSON line in, a JSON line out."""

    def __init__(self):
        env = {**os.environ, "NODE_PATH": str(npm.packages() / "node_modules")}
        self.proc = subprocess.Popen([npm.node(), str(npm.JS / "ajv_server.js"), str(VOCABULARY)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, encoding="utf-8")
        self.known: set[str] = set()

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        assert "error" not in reply, reply["error"]
        return reply

    def valid(self, key: str, schema: dict, data) -> bool:
        request = {"op": "validate", "key": key, "data": data}
        if key not in self.known:
            request["schema"] = schema
            self.known.add(key)
        return self.ask(request)["valid"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def ajv():
    server = Ajv()
    yield server
    server.close()


COMPILED = {name: compile_model(load(paths)) for name, paths in PACKS.items()}
FORMS = sorted((pack, name) for pack, c in COMPILED.items() for name in c.form_schemas)
FIELDS = sorted({json.dumps(prop, sort_keys=True) for c in COMPILED.values() for s in c.form_schemas.values()
                 for prop in s["properties"].values()})


def shipped_schemas():
    for pack, c in COMPILED.items():
        yield from ((f"{pack} entity {n}", s) for n, s in c.entity_schemas.items())
        yield from ((f"{pack} group {e}.{g}", s) for (e, g), s in c.group_schemas.items())
        yield from ((f"{pack} form {n}", s) for n, s in c.form_schemas.items())
        yield from ((f"{pack} process {n} inputs", s["inputs"]) for n, s in c.process_specs.items())


# -- strategies: values at the edges of each kind of field ------------------------------------------------

EDGY = st.sampled_from(["", " ", "\n", "\r", "\u2028", "\u0663", "\u00a0", "\ufeff", "T", "t", "Z", ":", "-", "+", ".", "/", "@", "%", "x"])
DIGITS = st.text(st.sampled_from("0123456789\u0663"), min_size=1, max_size=4)


def _join(parts) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


def _date():
    return _join([st.sampled_from(["2024", "2025", "1900", "2000", "\u0662\u0660\u0662\u0664", "99"]), st.sampled_from(["-", "/", ""]),
                  st.sampled_from(["01", "02", "12", "13", "00", "1"]), st.just("-"),
                  st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]), st.sampled_from(["", "", "", "\n", " ", "Z"])])


def _date_time():
    time = _join([st.sampled_from(["09", "23", "24", "00"]), st.just(":"), st.sampled_from(["30", "59", "60"]),
                  st.sampled_from([":00", ":59", ":60", ":61", ".5", ""]), st.sampled_from(["", ".123", ".", ".5"]),
                  st.sampled_from(["Z", "z", "+01:00", "-05:30", "+0100", "+01", "", "+24:00", "-00:60", "Z\n"])])
    return _join([_date(), st.sampled_from(["T", "t", " ", "\n", "", "TT", "x"]), time]) | st.sampled_from(
        ["yesterday", "2025-05-01T09:30:00", "2025-05-01T09:30:00Z", "2016-12-31T23:59:60Z", "2016-12-31T18:59:60-05:00"])


def _uri():
    return _join([st.sampled_from(["http", "https", "mailto", "urn", "", "1http", "h t"]), st.sampled_from(["://", ":", ":/", "//", ""]),
                  st.sampled_from(["example.com", "a b.com", "[::1]", "ex%41mple.org", "ex%4mple.org", "user@host", ""]),
                  st.sampled_from(["", "/", "/a b", "/p?q=1#f", "/ü", "\n", ":8080/x"])])


def _email():
    return _join([st.sampled_from(["ann", "a.b", ".a", "a..b", "a b", "Ann+tag", "ü", ""]), st.sampled_from(["@", "@@", ""]),
                  st.sampled_from(["example.com", "example", "ex-ample.co.uk", "-x.com", "x-.com", "a.b.", "EXAMPLE.COM"]),
                  st.sampled_from(["", "\n", " "])])


def _text(prop: dict) -> st.SearchStrategy[str]:
    strategies = [st.text(max_size=12), _join([st.text(max_size=4), EDGY, st.text(max_size=4)])]
    if "pattern" in prop:
        pattern = prop["pattern"]
        # Python's reading of the pattern makes strings that ECMA-262's may refuse (a final newline, Unicode digits)
        strategies.append(st.from_regex(pattern))
        strategies.append(st.from_regex(pattern).map(lambda s: s + "\n"))
    if "maxLength" in prop:
        n = prop["maxLength"]
        strategies.append(st.sampled_from(["a" * n, "a" * (n + 1), "\U0001f600" * n, "\U0001f600" * (n + 1)]))
    strategies += {"date": [_date()], "date-time": [_date_time()], "uri": [_uri()], "email": [_email()]}.get(prop.get("format"), [])
    if prop.get("x-tailor-type") == "money":
        strategies.append(st.sampled_from(["-1.00", "-0.01", "0", "0.00", "-0", "12.5", "12.345", " 1", "1e3", "1_000"]))
    return st.one_of(strategies)


OTHER_TYPES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-2, 2, allow_nan=False), st.just([]), st.just({}))


def values(prop: dict) -> st.SearchStrategy:
    """Values for one property: mostly of its own kind, near its edges, sometimes of another JSON type."""
    if "oneOf" in prop:
        own = st.sampled_from([o["const"] for o in prop["oneOf"]]) | _text({})
    elif prop.get("type") == "string":
        own = _text(prop)
    elif prop.get("type") == "integer":
        own = st.integers(-2, 10**6) | st.sampled_from([1.0, 1.5, 0])
    elif prop.get("type") == "array":
        item = prop["items"]
        own = st.lists(st.sampled_from([o["const"] for o in item["oneOf"]]) | st.just("nope"), max_size=3)
    else:
        own = st.booleans()
    return st.one_of(own, own, own, OTHER_TYPES)


@st.composite
def submissions(draw, schema: dict):
    doc = {}
    for name, prop in schema["properties"].items():
        if draw(st.integers(0, 3)):  # mostly given; sometimes left out, which a required field refuses
            doc[name] = draw(values(prop))
    if draw(st.integers(0, 9)) == 0:
        doc[draw(st.sampled_from(["colour", "id", "x"]))] = "extra"
    return doc


# -- the comparisons ------------------------------------------------------------------------------------------


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_field_verdicts_agree_with_ajv(ajv, data):
    """Every distinct field of the shipped forms: Tailor and ajv give one verdict on each generated value."""
    prop = json.loads(data.draw(st.sampled_from(FIELDS), label="field schema"))
    value = data.draw(values(prop), label="value")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {"v": prop}}
    tailor = validation.validator(schema).is_valid({"v": value})
    assert tailor == ajv.valid(json.dumps(prop, sort_keys=True), schema, {"v": value}), \
        f"Tailor says {'valid' if tailor else 'invalid'}, ajv the opposite, for {value!r} against {prop}"


@pytest.mark.parametrize("pack, form", FORMS, ids=[f"{p}:{f}" for p, f in FORMS])
def test_submission_verdicts_agree_with_ajv(ajv, pack, form):
    """Whole submissions of every shipped form (required, unknown keys and all): one verdict from both."""
    schema = COMPILED[pack].form_schemas[form]
    validator = validation.validator(schema)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(submissions(schema))
    def agree(doc):
        tailor = validator.is_valid(doc)
        assert tailor == ajv.valid(f"{pack}:{form}", schema, doc), \
            f"{form}: Tailor says {'valid' if tailor else 'invalid'}, ajv the opposite, for {doc!r}"

    agree()


@pytest.mark.parametrize("prop, value", [
    ({"type": "string", "format": "date-time"}, "yesterday"),
    ({"type": "string", "format": "date-time"}, "2025-05-01T09:30:00"),
    ({"type": "string", "format": "uri"}, "https://example.com/a b"),
    ({"type": "string", "pattern": "^[A-Z]{3}[0-9]{4}$"}, "ACM0001\n"),
    ({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}, "\u0662\u0660\u0662\u0664-01-01"),
    ({"type": "string", "format": "date"}, "2025-02-29"),
    ({"type": "string", "format": "email"}, "ann@example"),
])
def test_values_other_validators_refuse_are_refused(ajv, prop, value):
    """The disagreements the probe found: each is now invalid for Tailor, as it is for ajv."""
    schema = {"type": "object", "properties": {"v": prop}}
    assert not ajv.valid(json.dumps(prop), schema, {"v": value})
    assert not validation.validator(schema).is_valid({"v": value})


def test_every_shipped_schema_compiles_in_strict_ajv_with_the_x_tailor_vocabulary(ajv):
    """Strict validators refuse unknown keywords; registering the published vocabulary is all they need."""
    schemas = list(shipped_schemas())
    assert len(schemas) > 60
    refused = {name: reply["message"] for name, s in schemas if not (reply := ajv.ask({"op": "compile", "schema": s}))["ok"]}
    assert refused == {}
    # ...and it is the vocabulary that makes them acceptable: without it strict mode refuses the x-tailor keywords
    bare = ajv.ask({"op": "compile", "schema": COMPILED["crm"].form_schemas["lead_enquiry"], "vocabulary": False})
    assert not bare["ok"] and "x-tailor" in bare["message"]
