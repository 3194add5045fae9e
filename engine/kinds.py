"""The published JSON Schema of each document kind, and validation against it."""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Iterator

import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from . import fastcheck, validation
from .errors import Problem
from .source import Document, pointer_join

KINDS = ("pack", "entity", "form", "process", "role", "group", "calendar", "report", "dashboard", "overlay", "labels")


def schema_text(kind: str) -> str:
    return resources.files("engine").joinpath("schemas", f"{kind}.schema.json").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def registry() -> Registry:
    """Schemas keyed by file name: their relative `$ref`s resolve here and, for editors, next to the file."""
    return Registry().with_resources(
        (f"{name}.schema.json", Resource.from_contents(json.loads(schema_text(name)))) for name in ("common", *KINDS))


def _local_refs(node: Any) -> Any:
    """Point `common.schema.json#/$defs/x` at `#/$defs/x`: local refs resolve several times faster."""
    if isinstance(node, dict):
        return {k: (v.replace("common.schema.json#", "#") if k == "$ref" else _local_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_local_refs(v) for v in node]
    return node


def _inlined(kind: str) -> dict[str, Any]:
    """The kind's published schema, with the shared definitions inlined for speed."""
    schema = _local_refs(json.loads(schema_text(kind)))
    schema["$defs"] = {**_local_refs(json.loads(schema_text("common")))["$defs"], **schema.get("$defs", {})}
    return schema


@lru_cache(maxsize=None)
def validator(kind: str) -> jsonschema.Draft202012Validator:
    """The kind's published schema as a jsonschema validator: the reference, and the source of every message."""
    return validation.validator(_inlined(kind))


@lru_cache(maxsize=None)
def fast_check(kind: str) -> Callable[[Any], Any] | None:
    """A compiled yes/no check of the kind's schema (engine.fastcheck), >20x faster than jsonschema; None if it cannot be
    trusted. Compiling takes well under 0.1 s for all kinds, once per process; valid documents (the usual case) then skip
    jsonschema."""
    return fastcheck.compile_check(_inlined(kind))


def _pointer(path) -> str:
    p = ""
    for part in path:
        p = pointer_join(p, part)
    return p


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{value}'" if len(value) < 60 else f"'{value[:57]}...'"
    return repr(value)


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "nothing"}


def _where(error: ValidationError) -> str:
    for part in reversed(list(error.absolute_path)):
        if isinstance(part, str):
            return f" in '{part}'"
    return ""


_DISCRIMINATING = ("type", "enum", "const", "required")


def _leaves(error: ValidationError) -> list[ValidationError]:
    """For a oneOf/anyOf failure, the errors of the alternative the author most likely meant.

    An alternative whose type, enum, const or required keys already fail at the
    top is probably not the one meant; among the others, the one with fewest errors.
    """
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def score(errs: list[ValidationError]) -> tuple[int, int]:
        # a wrong JSON type at the top rules an alternative out more surely than a wrong value
        top = sum(2 if e.validator == "type" else 1 for e in errs if not e.relative_path and e.validator in _DISCRIMINATING)
        return (top, len(errs))

    ranked = sorted(branches.values(), key=score)
    best = ranked[0]
    if len(ranked) > 1 and score(ranked[0]) == score(ranked[1]) and score(best)[0] > 0:
        return [error]  # nothing tells the alternatives apart: say what the choices are
    return [leaf for sub in best for leaf in _leaves(sub)]


def _problems(doc: Document, error: ValidationError) -> Iterator[Problem]:
    for leaf in _leaves(error):
        yield from _problem(doc, leaf)


def _problem(doc: Document, error: ValidationError) -> Iterator[Problem]:
    ptr = _pointer(error.absolute_path)
    v, inst, schema = error.validator, error.instance, error.schema
    if v == "additionalProperties" and isinstance(inst, dict):
        known = set(schema.get("properties", {}))
        for key in sorted(set(inst) - known):
            expected = ", ".join(sorted(known))
            yield Problem(doc.key_loc(pointer_join(ptr, key)), "schema.unknown-key",
                          f"unknown key '{key}'{_where(error)} (expected one of: {expected})", pointer_join(ptr, key))
        return
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield Problem(doc.loc(ptr), "schema.missing-key", f"missing required key '{missing}'{_where(error)}", ptr)
        return
    if "propertyNames" in error.relative_schema_path or v == "propertyNames":
        key = str(inst) if not isinstance(inst, dict) else "?"
        yield Problem(doc.key_loc(pointer_join(ptr, key)), "schema.bad-name",
                      f"invalid name '{key}'{_where(error)}: use lower_snake_case (a-z, 0-9 and _, starting with a letter)", ptr)
        return
    if v == "enum":
        options = ", ".join(str(x) for x in schema["enum"])
        yield Problem(doc.loc(ptr), "schema.enum", f"expected one of {options}{_where(error)}, found {_describe(inst)}", ptr)
        return
    if v == "const":
        yield Problem(doc.loc(ptr), "schema.const", f"expected {_describe(schema['const'])}{_where(error)}, found {_describe(inst)}", ptr)
        return
    if v == "type":
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        yield Problem(doc.loc(ptr), "schema.type", f"expected {words}{_where(error)}, found {_describe(inst)}", ptr)
        return
    if v == "pattern":
        desc = schema.get("description")
        if schema.get("pattern") == r"^[a-z][a-z0-9_]*$" or desc == "lower_snake_case identifier":
            desc = "a lower_snake_case name (a-z, 0-9 and _, starting with a letter)"
        expected = desc or f"text matching {schema['pattern']}"
        yield Problem(doc.loc(ptr), "schema.pattern", f"expected {expected}{_where(error)}, found {_describe(inst)}", ptr)
        return
    if v in ("minItems", "minProperties", "minLength"):
        limit = error.validator_value
        text = "must not be empty" if limit <= 1 else f"needs at least {limit} entries"
        yield Problem(doc.loc(ptr), "schema.empty", f"{text}{_where(error)}", ptr)
        return
    if v in ("oneOf", "anyOf") and isinstance(inst, dict):
        keys = ", ".join(sorted({k for s in schema.get(v, []) for k in s.get("required", [])}))
        many = "exactly one" if v == "oneOf" else "at least one"
        yield Problem(doc.loc(ptr), "schema.shape", f"expected {many} of the keys {keys}{_where(error)}", ptr)
        return
    if v == "uniqueItems" and isinstance(inst, list):
        repeated = next((x for i, x in enumerate(inst) if x in inst[:i]), None)
        yield Problem(doc.loc(ptr), "schema.repeated", f"{_describe(repeated)} is listed twice{_where(error)}", ptr)
        return
    code = re.sub(r"(?<!^)(?=[A-Z])", "-", v).lower()
    yield Problem(doc.loc(ptr), f"schema.{code}", f"{error.message}{_where(error)}", ptr)


def validate_document(doc: Document) -> list[Problem]:
    """Problems with a document's shape, checked against its kind's JSON Schema."""
    if not isinstance(doc.data, dict):
        return [Problem(doc.loc(""), "schema.not-a-definition",
                        f"expected a mapping with 'kind:' and 'name:', found {_describe(doc.data)}")]
    kind = doc.data.get("kind")
    if kind is None:
        return [Problem(doc.loc(""), "schema.missing-kind", f"missing 'kind:' (expected one of: {', '.join(KINDS)})")]
    if kind not in KINDS:
        return [Problem(doc.loc("/kind"), "schema.unknown-kind", f"unknown kind {_describe(kind)} (expected one of: {', '.join(KINDS)})", "/kind")]
    return check_shape(doc, kind)


def check_shape(doc: Document, schema: str) -> list[Problem]:
    """Problems with a document's shape against the published schema `schema` (a kind, or another file format of a pack
    such as `scenario`), each at its line and column."""
    check = fast_check(schema)
    if check is not None:
        try:
            check(doc.data)
            return []
        except fastcheck.Invalid:
            pass  # invalid: ask jsonschema what exactly is wrong, so messages stay the same
    problems: list[Problem] = []
    for error in validator(schema).iter_errors(doc.data):
        problems.extend(_problems(doc, error))
    return problems
