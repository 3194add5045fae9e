"""Field types: one registered class per type, looked up by name.

Each type knows its JSON Schema, its SQL column type (when stored as a column),
which options make sense for it, and which other types it can be copied into.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Callable, ClassVar

import sqlalchemy as sa

from . import patterns
from .model import Field

_REGISTRY: dict[str, "FieldType"] = {}

MONEY_PATTERN = r"^-?[0-9]+(\.[0-9]{1,2})?$"
UNSIGNED_MONEY_PATTERN = r"^[0-9]+(\.[0-9]{1,2})?$"
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
PHONE_PATTERN = r"^\+?[0-9 ()./-]{3,32}$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def field_type(name: str) -> Callable[[type["FieldType"]], type["FieldType"]]:
    """Register a field type class under `name`; a name registers once."""

    def register(cls: type[FieldType]) -> type[FieldType]:
        if name in _REGISTRY:
            raise ValueError(f"field type {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls()
        return cls

    return register


def get(name: str) -> "FieldType":
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


class FieldType:
    name: ClassVar[str]
    widget: ClassVar[str] = "text"
    #: options (besides the common ones) that mean something for this type
    options: ClassVar[frozenset[str]] = frozenset()
    #: types whose values can be copied into this type
    accepts: ClassVar[frozenset[str]] = frozenset()

    def json_schema(self, f: Field) -> dict:
        raise NotImplementedError

    def sql_type(self, f: Field) -> sa.types.TypeEngine:
        return sa.String(f.max_length or 255)

    def check_default(self, f: Field, value: Any) -> str | None:
        """Return a message if `value` is not a valid default for the field."""
        import jsonschema

        error = jsonschema.exceptions.best_match(_default_validator(_checked_part(self.json_schema(f))).iter_errors(value))
        return f"default {value!r} is not a valid {self.name}: {error.message}" if error else None

    def can_take(self, source: Field, target: Field) -> bool:
        """Whether a value of `source` may be stored in `target` (a field of this type)."""
        return source.type == target.type or source.type in self.accepts


_ANNOTATIONS = frozenset({"title", "description", "default"})
_CHECKED_EXTRAS = frozenset({"x-tailor-minimum", "x-tailor-maximum"})  # x-tailor keywords that change a verdict


def _checked_part(schema: dict) -> str:
    """The schema without its annotations (they never change a verdict or a message), as canonical JSON."""
    return json.dumps({k: v for k, v in schema.items() if k not in _ANNOTATIONS and (not k.startswith("x-tailor-") or k in _CHECKED_EXTRAS)},
                      sort_keys=True)


@lru_cache(maxsize=1024)
def _default_validator(schema: str) -> Any:
    """One validator per distinct checked schema: fields repeat them, and making a validator costs far more than using it."""
    from . import validation

    return validation.validator(json.loads(schema))


def _annotate(f: Field, schema: dict) -> dict:
    schema["title"] = f.label
    if f.help:
        schema["description"] = f.help
    if f.default is not None:
        schema["default"] = f.default
    schema["x-tailor-type"] = f.type
    return schema


def _lengths(f: Field, schema: dict) -> dict:
    if f.min_length is not None:
        schema["minLength"] = f.min_length
    if f.max_length is not None:
        schema["maxLength"] = f.max_length
    if f.pattern:
        schema["pattern"] = f.pattern
    return schema


def _bounds(f: Field, schema: dict) -> dict:
    if f.min is not None:
        schema["minimum"] = f.min
    if f.max is not None:
        schema["maximum"] = f.max
    return schema


TEXTUAL = frozenset({"string", "text", "email", "phone", "url", "choice"})


@field_type("string")
class StringType(FieldType):
    options = frozenset({"min_length", "max_length", "pattern", "placeholder"})
    accepts = TEXTUAL | {"integer", "decimal", "money", "date", "datetime"}

    def json_schema(self, f: Field) -> dict:
        schema = _lengths(f, {"type": "string"})
        schema.setdefault("maxLength", 255)
        return _annotate(f, schema)

    def sql_type(self, f):
        return sa.String(f.max_length or 255)


@field_type("text")
class TextType(FieldType):
    widget = "textarea"
    options = frozenset({"min_length", "max_length", "placeholder"})
    accepts = StringType.accepts

    def json_schema(self, f):
        return _annotate(f, _lengths(f, {"type": "string"}))

    def sql_type(self, f):
        return sa.Text()


@field_type("integer")
class IntegerType(FieldType):
    widget = "number"
    options = frozenset({"min", "max", "placeholder"})

    def json_schema(self, f):
        return _annotate(f, _bounds(f, {"type": "integer"}))

    def sql_type(self, f):
        return sa.BigInteger()


@field_type("decimal")
class DecimalType(FieldType):
    widget = "decimal"
    options = frozenset({"min", "max", "placeholder"})
    accepts = frozenset({"integer", "money"})

    def json_schema(self, f):
        return _annotate(f, _bounds(f, {"type": "number"}))

    def sql_type(self, f):
        return sa.Numeric(18, 6)


@field_type("money")
class MoneyType(FieldType):
    """Money travels as a decimal string ("1250.00") so no float ever rounds it."""

    widget = "money"
    options = frozenset({"currency", "min", "max", "placeholder"})
    accepts = frozenset({"integer"})

    def json_schema(self, f):
        # a decimal string has no `minimum` in JSON Schema: a bound of zero or more becomes the unsigned pattern, which
        # every validator enforces and a renderer can show; the exact bounds travel as x-tailor-minimum/maximum
        unsigned = f.min is not None and f.min >= 0
        schema: dict[str, Any] = {"type": "string"}
        # the bounds before the pattern: validators report in this order, and "-5.00" is better told "at least 0"
        if f.min is not None:
            schema["x-tailor-minimum"] = f.min
        if f.max is not None:
            schema["x-tailor-maximum"] = f.max
        schema["pattern"] = UNSIGNED_MONEY_PATTERN if unsigned else MONEY_PATTERN
        if f.currency:
            schema["x-tailor-currency"] = f.currency
        return _annotate(f, schema)

    def sql_type(self, f):
        return sa.Numeric(18, 2)


@field_type("boolean")
class BooleanType(FieldType):
    widget = "checkbox"

    def json_schema(self, f):
        return _annotate(f, {"type": "boolean"})

    def sql_type(self, f):
        return sa.Boolean()


@field_type("date")
class DateType(FieldType):
    widget = "date"
    options = frozenset({"min", "max"})

    def json_schema(self, f):
        return _annotate(f, {"type": "string", "format": "date", "pattern": DATE_PATTERN})

    def sql_type(self, f):
        return sa.Date()


@field_type("datetime")
class DateTimeType(FieldType):
    widget = "datetime"
    accepts = frozenset({"date"})

    def json_schema(self, f):
        return _annotate(f, {"type": "string", "format": "date-time"})

    def sql_type(self, f):
        return sa.DateTime(timezone=True)


@field_type("email")
class EmailType(FieldType):
    widget = "email"
    options = frozenset({"placeholder"})

    def json_schema(self, f):
        return _annotate(f, {"type": "string", "format": "email", "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "maxLength": 254})


@field_type("phone")
class PhoneType(FieldType):
    widget = "tel"
    options = frozenset({"placeholder"})

    def json_schema(self, f):
        return _annotate(f, {"type": "string", "pattern": PHONE_PATTERN})

    def sql_type(self, f):
        return sa.String(32)


@field_type("url")
class UrlType(FieldType):
    widget = "url"
    options = frozenset({"placeholder"})

    def json_schema(self, f):
        return _annotate(f, {"type": "string", "format": "uri", "pattern": r"^https?://", "maxLength": 2048})

    def sql_type(self, f):
        return sa.String(2048)


def labelled(options: list[tuple[Any, str]]) -> dict:
    """Labelled choices in JSON Schema's own idiom, `oneOf` of `{const, title}`, which renderers show by their titles."""
    if not options:
        return {"enum": []}  # nothing is valid; `oneOf` may not be empty
    schema: dict[str, Any] = {"oneOf": [{"const": value, "title": label} for value, label in options]}
    kinds = {type(value) for value, _ in options}
    if kinds == {str}:
        schema["type"] = "string"
    elif kinds == {int}:
        schema["type"] = "integer"
    return schema


def _choice_schema(f: Field) -> dict:
    return labelled([(c.value, c.label) for c in f.choices])


@field_type("choice")
class ChoiceType(FieldType):
    widget = "select"
    options = frozenset({"choices"})

    def json_schema(self, f):
        return _annotate(f, _choice_schema(f))

    def can_take(self, source, target):
        # a choice copies into a choice only when every source value is allowed
        if source.type != "choice":
            return False
        return {c.value for c in source.choices} <= {c.value for c in target.choices}


@field_type("multichoice")
class MultiChoiceType(FieldType):
    widget = "checkboxes"
    options = frozenset({"choices"})

    def json_schema(self, f):
        return _annotate(f, {"type": "array", "uniqueItems": True, "items": _choice_schema(f)})

    def sql_type(self, f):
        return sa.JSON()

    def can_take(self, source, target):
        if source.type not in ("choice", "multichoice"):
            return False
        return {c.value for c in source.choices} <= {c.value for c in target.choices}


@field_type("reference")
class ReferenceType(FieldType):
    widget = "reference"
    options = frozenset({"entity"})

    def json_schema(self, f):
        return _annotate(f, {"type": "integer", "minimum": 1, "x-tailor-reference": f.entity})

    def sql_type(self, f):
        return sa.BigInteger()

    def can_take(self, source, target):
        return source.type == "reference" and source.entity == target.entity


@field_type("user")
class UserType(FieldType):
    widget = "user"

    def json_schema(self, f):
        return _annotate(f, {"type": "integer", "minimum": 1, "x-tailor-reference": "user"})

    def sql_type(self, f):
        return sa.BigInteger()


@field_type("group")
class GroupType(FieldType):
    """A group definition's name; the compiler lists the defined groups as its choices."""

    widget = "select"

    def json_schema(self, f):
        return _annotate(f, {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$", "x-tailor-reference": "group"})

    def sql_type(self, f):
        return sa.String(64)


COMMON_OPTIONS = frozenset({"type", "label", "help", "required", "default", "unique", "indexed", "column", "renamed_from"})


def is_valid_regex(pattern: str) -> str | None:
    """Why `pattern` is not an ECMA-262 pattern every validator matches alike (None when it is)."""
    return patterns.problem(pattern)
