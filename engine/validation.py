"""The one JSON Schema (Draft 2020-12) validator every Tailor check uses.

It differs from plain `jsonschema.Draft202012Validator` where that one disagrees with the
other validators that read Tailor's published schemas (ajv in the browser): patterns match
as ECMA-262 does (`engine.patterns`), formats are checked (`engine.formats`), and money
bounds in the `x-tailor` vocabulary (`x-tailor-minimum`, `x-tailor-maximum`: a decimal
string's amount, which JSON Schema's `minimum` cannot bound) are enforced as that
vocabulary's meta-schema describes.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

import jsonschema
from jsonschema import validators
from jsonschema.exceptions import ValidationError

from . import patterns
from .formats import FORMAT_CHECKER


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not patterns.compile(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, pattern_properties: dict, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if patterns.compile(pattern).search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_ONE_OF = jsonschema.Draft202012Validator.VALIDATORS["oneOf"]


def _one_of(validator: Any, one_of: list, instance: Any, schema: dict) -> Iterator[ValidationError]:
    """`oneOf`, saying "'x' is not one of [...]" (as `enum` does) when the alternatives are labelled choices."""
    if one_of and all(isinstance(s, dict) and "const" in s for s in one_of):
        values = [s["const"] for s in one_of]
        if not any(validator.evolve(schema=s).is_valid(instance) for s in one_of):
            yield ValidationError(f"{instance!r} is not one of {values!r}")
        return
    yield from _ONE_OF(validator, one_of, instance, schema)


_DECIMAL = patterns.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def _amount(value: Any) -> Decimal | None:
    """The amount a money bound applies to: a string spelling a plain decimal (Decimal() alone also takes ' 1_0 ', '1e3')."""
    return Decimal(value) if isinstance(value, str) and _DECIMAL.search(value) else None


def _money_bound(below: bool):
    def check(validator: Any, bound: Any, instance: Any, schema: dict) -> Iterator[ValidationError]:
        amount = _amount(instance)
        if amount is None:
            return  # not an amount: the `pattern` beside it says so
        if (amount < Decimal(str(bound))) if below else (amount > Decimal(str(bound))):
            word = "minimum" if below else "maximum"
            yield ValidationError(f"{instance!r} is {'less' if below else 'more'} than the {word} of {bound}", validator=word,
                                  validator_value=bound)
    return check


Validator = validators.extend(
    jsonschema.Draft202012Validator,
    validators={"pattern": _pattern, "oneOf": _one_of, "patternProperties": _pattern_properties,
                "x-tailor-minimum": _money_bound(below=True), "x-tailor-maximum": _money_bound(below=False)},
)


def validator(schema: dict) -> Any:
    """A validator of `schema` that checks patterns as ECMA-262, formats, and the x-tailor money bounds."""
    return Validator(schema, format_checker=FORMAT_CHECKER)
