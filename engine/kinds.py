"""The published JSON Schema of each document kind, and validation against it."""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Iterator

import fastjsonschema
import jsonschema
from fastjsonschema.draft2019 import CodeGeneratorDraft2019
from fastjsonschema.ref_resolver import RefResolver
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from . import patterns, validation
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


# Keywords on which fastjsonschema and jsonschema (Draft 2020-12) agree, given YAML-built data (patterns are
# compiled as ECMA-262 on both paths, see `_YesNoCode.generate_pattern`). Where they differ they differ towards
# "invalid" (`minimum` also checks booleans), which only sends a document down the slow path, whose errors are then the answer.
_FAST_KEYWORDS = frozenset({
    "$schema", "$id", "$defs", "$ref", "title", "description", "type", "enum", "const", "properties", "required",
    "additionalProperties", "propertyNames", "items", "minItems", "uniqueItems", "minProperties", "minLength",
    "minimum", "maximum", "pattern", "oneOf", "anyOf", "if", "then", "else",
})
_SCHEMA_MAPS = ("properties", "$defs")  # their values are subschemas, their keys are names, not keywords


def _fast_safe(schema: Any) -> bool:
    """Whether fastjsonschema can stand in for jsonschema on `schema`: known keywords, and no `$ref`
    beside other checks (fastjsonschema follows draft 7 there and ignores the siblings)."""
    if isinstance(schema, list):
        return all(_fast_safe(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    if not schema.keys() <= _FAST_KEYWORDS or ("$ref" in schema and not schema.keys() <= {"$ref", "title", "description"}):
        return False
    return all(all(_fast_safe(s) for s in v.values()) if k in _SCHEMA_MAPS else _fast_safe(v)
               for k, v in schema.items() if isinstance(v, (dict, list)))


# What a value of each JSON type is in Python, as fastjsonschema's own `type` checks test it.
_IS_TYPE = {
    "null": "{v} is None", "boolean": "isinstance({v}, bool)", "string": "isinstance({v}, str)",
    "number": "(isinstance({v}, (int, float, Decimal)) and not isinstance({v}, bool))",
    "object": "isinstance({v}, dict)", "array": "isinstance({v}, (list, tuple))",
}


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array"}[type(value)]


def _types(schema: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> frozenset[str] | None:
    """The JSON types (integers counted as numbers) of every value `schema` can accept; None if not plain to see."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:  # alone but for annotations: see _fast_safe
        name = schema["$ref"].removeprefix("#/$defs/")
        return _types(defs[name], defs, (*seen, name)) if name in defs and name not in seen else None
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return frozenset("number" if t == "integer" else t for t in types)
    if "enum" in schema or "const" in schema:
        return frozenset(_type_of(v) for v in (schema["enum"] if "enum" in schema else [schema["const"]]))
    return None


class _YesNoCode(CodeGeneratorDraft2019):
    """fastjsonschema's code for Draft 2019+ schemas (what it uses for 2020-12), minus the messages.

    The fast check only answers valid or not (jsonschema then says why), yet the generated code
    formats each value's path (`data.fields.x`) when it calls a shared definition, and builds a
    message when an alternative of a `oneOf` does not match, which is most of the time: that
    formatting cost more than the checks. `detailed_exceptions=False` alone still formats both.
    """

    def __init__(self, definition: dict[str, Any], **kwargs: Any):
        super().__init__(definition, **kwargs)
        self._defs = definition.get("$defs", {})

    def exc(self, msg: str, *args: Any, append_to_msg: str | None = None, rule: str | None = None) -> None:
        self.l('raise JsonSchemaValueException("invalid")')

    def generate_pattern(self) -> None:
        """fastjsonschema's pattern check, with the pattern compiled as ECMA-262 like the slow path's (engine.patterns)."""
        pattern = self._definition["pattern"]
        self._compile_regexps[pattern] = patterns.compile(pattern)
        with self.l("if isinstance({variable}, str):"):
            with self.l("if not REGEX_PATTERNS[{}].search({variable}):", repr(pattern)):
                self.exc("invalid")

    def generate_ref(self) -> None:
        name, self._variable_name = self._variable_name, "data"  # the path is only ever used in messages
        try:
            super().generate_ref()
        finally:
            self._variable_name = name

    def generate_one_of(self) -> None:
        """A `oneOf` whose alternatives take values of different JSON types (`field: string` or a mapping
        of options, ...) as a choice by the value's type: only that alternative can match, so it alone is
        tried, where fastjsonschema tries each and pays an exception for every one that does not match."""
        branches = self._definition["oneOf"]
        types = [_types(b, self._defs) for b in branches]
        if any(t is None for t in types) or sum(len(t) for t in types) != len(frozenset().union(*types)):
            return super().generate_one_of()
        for i, (branch, branch_types) in enumerate(zip(branches, types)):
            test = " or ".join(_IS_TYPE[t].format(v=self._variable) for t in sorted(branch_types))
            with self.l(("if " if i == 0 else "elif ") + test + ":", optimize=False):
                self.l("pass")
                self.generate_func_code_block(branch, self._variable, self._variable_name, clear_variables=True)
        with self.l("else:", optimize=False):
            self.exc("no alternative takes a value of this type")


@lru_cache(maxsize=None)
def fast_check(kind: str) -> Callable[[Any], Any] | None:
    """A compiled yes/no check of the same schema, >20x faster than jsonschema; None if it cannot be trusted.

    Compiling takes well under 0.1 s for all kinds, once per process; valid documents (the usual case) then skip jsonschema.
    """
    schema = _inlined(kind)
    if not _fast_safe(schema):
        return None
    resolver = RefResolver.from_schema(schema, handlers={}, store={})
    # use_default=False: never write schema defaults into the author's data
    code = _YesNoCode(schema, resolver=resolver, use_default=False, use_formats=False, detailed_exceptions=False)
    scope = code.global_state
    exec(code.func_code, scope)  # what fastjsonschema.compile does with its own generator
    return scope[resolver.get_scope_name()]


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
        except fastjsonschema.JsonSchemaValueException:
            pass  # invalid: ask jsonschema what exactly is wrong, so messages stay the same
    problems: list[Problem] = []
    for error in validator(schema).iter_errors(doc.data):
        problems.extend(_problems(doc, error))
    return problems
