"""Compiled yes/no checks of JSON Schemas: valid values (the usual case) skip jsonschema, which is the reference.

fastjsonschema turns a schema into Python code that answers "valid or not" many times faster than jsonschema
walks it. It is only trusted on the keywords below, where the two agree (or where it errs towards "invalid", which
just sends the value down the slow path); a schema with any other keyword gets no fast check (`compile_check` gives
None). Whatever the fast check rejects, jsonschema (engine.validation) looks at again: its errors are the answer and
its messages are the ones people see. Used for pack documents (engine.kinds) and for field values (runtime.values).
"""
from __future__ import annotations

from typing import Any, Callable

from fastjsonschema.draft2019 import CodeGeneratorDraft2019
from fastjsonschema.exceptions import JsonSchemaValueException
from fastjsonschema.ref_resolver import RefResolver

from . import patterns
from .formats import FORMAT_CHECKER

Invalid = JsonSchemaValueException
"""What a compiled check raises for a value it does not accept."""


# Keywords on which fastjsonschema and jsonschema (Draft 2020-12) agree, given YAML-built data (patterns are
# compiled as ECMA-262 on both paths, see `_YesNoCode.generate_pattern`). Where they differ they differ towards
# "invalid" (`minimum` also checks booleans), which only sends a document down the slow path, whose errors are then the answer.
_FAST_KEYWORDS = frozenset({
    "$schema", "$id", "$defs", "$ref", "title", "description", "type", "enum", "const", "properties", "required",
    "additionalProperties", "propertyNames", "items", "minItems", "uniqueItems", "minProperties", "minLength",
    "minimum", "maximum", "pattern", "oneOf", "anyOf", "if", "then", "else", "maxLength",
    "format",  # checked by the slow path's own format checker (`_YesNoCode.generate_format`)
    # annotations: neither validator checks them (defaults are never written into the data: use_default=False)
    "default", "examples", "x-tailor-type", "x-tailor-reference", "x-tailor-currency",
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

    def generate_format(self) -> None:
        """A format, checked by the checker jsonschema uses on the slow path (engine.formats), so both agree."""
        with self.l("if not FORMAT_CONFORMS({variable}, {}):", repr(self._definition["format"])):
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


def compile_check(schema: dict[str, Any]) -> Callable[[Any], Any] | None:
    """A compiled check of `schema` that raises `Invalid` for a value it does not accept; None if it cannot be trusted."""
    if not _fast_safe(schema):
        return None
    resolver = RefResolver.from_schema(schema, handlers={}, store={})
    # use_default=False: never write schema defaults into the data
    code = _YesNoCode(schema, resolver=resolver, use_default=False, use_formats=False, detailed_exceptions=False)
    scope = code.global_state
    scope["FORMAT_CONFORMS"] = FORMAT_CHECKER.conforms
    exec(code.func_code, scope)  # what fastjsonschema.compile does with its own generator
    return scope[resolver.get_scope_name()]
