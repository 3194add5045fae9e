"""Field values: their one stored spelling, their columns, conversions between types, and plain messages.

Values travel as JSON (money as a "1250.00" string, dates as ISO strings, datetimes
in UTC) so that equal values are stored alike and the expression indexes find them.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import jsonschema

from engine import fastcheck, fieldtypes, validation
from engine.compiler import is_column
from engine.model import Field

CENT = Decimal("0.01")
INTEGER_TEXT = re.compile(r"^-?[0-9]+$")
NUMBER_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
TRUE_TEXT = {"true", "yes", "y", "1"}
FALSE_TEXT = {"false", "no", "n", "0"}


class NotConvertible(ValueError):
    """A value that has no faithful spelling in the target type."""


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


# -- the stored spelling -----------------------------------------------------------


def _money(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) or (isinstance(value, float) and value == value):
        d = Decimal(str(value))
    elif isinstance(value, str) and re.match(fieldtypes.MONEY_PATTERN, value.strip()):
        d = Decimal(value.strip())
    else:
        return value  # left for the validator to name
    if d != d.quantize(CENT):
        return value
    return str(d.quantize(CENT))


def _datetime(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()  # the validator refuses it: a moment needs its time zone
        value = value.astimezone(dt.timezone.utc)
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return value


def _date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value  # not a date: refused by the validator rather than silently cut
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


NORMALIZERS: dict[str, Callable[[Any], Any]] = {
    "money": _money, "datetime": _datetime, "date": _date, "decimal": _decimal, "integer": _integer,
    "reference": _integer, "user": _integer,
}


def normalize(f_type: str, value: Any) -> Any:
    """The stored spelling of a value (unchanged when it is not a valid value of the type)."""
    fn = NORMALIZERS.get(f_type)
    return fn(value) if fn else value


def datetime_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return "must be a date and time like 2024-05-31T14:30:00+01:00"
    if parsed.tzinfo is None:
        return "must include a time zone, like 2024-05-31T14:30:00+01:00"
    return None


# -- what the database can hold ------------------------------------------------------
# A value can fit its field's JSON Schema and still be one the database refuses or cannot compare: text with a
# NUL character (PostgreSQL's text and JSONB cannot hold one), half of a surrogate pair (not a character: UTF-8
# has no spelling for it), a number that is not finite, or one past the column or the cast its filters compare with.

INT64 = 2**63 - 1  # BIGINT: ids, references and whole numbers with a column of their own
INT32 = 2**31 - 1  # whole numbers inside `data`: PostgreSQL compares them as INTEGER (engine.compiler.data_expression)
SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why the database cannot hold this text, or None."""
    if "\x00" in text:
        return "must not contain a NUL character (U+0000)"
    if (half := SURROGATE.search(text)):
        return f"must not contain U+{ord(half.group()):04X}, half of a surrogate pair, which is not a character on its own"
    return None


def _whole_number(f: Field, value: Any) -> str | None:
    bound = INT64 if is_column(f) else INT32
    if isinstance(value, int) and not isinstance(value, bool) and not -bound - 1 <= value <= bound:
        return f"must be between {-bound - 1} and {bound}"
    return None


def _digits(whole: int) -> Callable[[Any], str | None]:
    """A check that an amount has at most `whole` digits before the point (NUMERIC(18, 18 - whole))."""

    def check(value: Any) -> str | None:
        try:
            amount = Decimal(value) if isinstance(value, str) else Decimal(str(value)) if isinstance(value, (int, float)) else None
        except InvalidOperation:
            return None  # not an amount at all: the validator names it
        if amount is not None and amount.is_finite() and abs(amount) >= 10**whole:
            return f"must have at most {whole} digits before the decimal point"
        return None

    return check


def _decimal_range(f: Field, value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return _digits(12)(value) if is_column(f) and not isinstance(value, bool) else None  # NUMERIC(18, 6)


RANGES: dict[str, Callable[[Field, Any], str | None]] = {
    "integer": _whole_number, "reference": _whole_number, "user": _whole_number, "decimal": _decimal_range,
    # NUMERIC(18, 2): the column, and the cast that compares amounts kept in `data`
    "money": lambda f, value: _digits(16)(value) if isinstance(value, str) else None,
}


def storage_problem(f: Field, value: Any) -> str | None:
    """Why the database cannot hold or compare this value of `f` though it may fit the field's schema, or None."""
    for item in value if isinstance(value, list) else (value,):
        if isinstance(item, str) and (problem := text_problem(item)):
            return problem
        if isinstance(item, float) and not math.isfinite(item):
            return "must be a finite number"
    check = RANGES.get(f.type)
    return check(f, value) if check else None


# -- columns -----------------------------------------------------------------------


def to_column(f: Field, value: Any) -> Any:
    """A stored (JSON) value as the Python value of the field's own column."""
    if value is None:
        return None
    if f.type == "date":
        return dt.date.fromisoformat(value)
    if f.type == "datetime":
        return dt.datetime.fromisoformat(value)
    if f.type in ("money", "decimal"):
        return Decimal(str(value))
    return value


def from_column(f: Field, value: Any) -> Any:
    """A column's value back as its stored (JSON) spelling."""
    if value is None:
        return None
    if f.type == "date" and isinstance(value, dt.date):
        return value.isoformat()
    if f.type == "datetime" and isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return _datetime(value)
    if f.type == "money":
        return _money(Decimal(str(value)))
    if f.type == "decimal":
        return _decimal(Decimal(str(value)))
    return value


# -- conversions when a field changes type ------------------------------------------


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        raise NotConvertible("a list has no single text value")
    return str(value)


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise NotConvertible("yes/no is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if INTEGER_TEXT.match(text):
            return int(text)
        if NUMBER_TEXT.match(text) and Decimal(text) == Decimal(text).to_integral_value():
            return int(Decimal(text))
    raise NotConvertible("not a whole number")


def _to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise NotConvertible("yes/no is not a number")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and NUMBER_TEXT.match(value.strip()):
        return _decimal(Decimal(value.strip()))
    raise NotConvertible("not a number")


def _to_money(value: Any) -> str:
    if isinstance(value, bool):
        raise NotConvertible("yes/no is not an amount")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise NotConvertible("not an amount") from None
    if d != d.quantize(CENT):
        raise NotConvertible("has more than two decimal places")
    return str(d.quantize(CENT))


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_TEXT:
        return True
    if text in FALSE_TEXT:
        return False
    raise NotConvertible("not yes or no")


def _to_date(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise NotConvertible("not a date") from None
        if moment.time() == dt.time(0) and moment.utcoffset() in (None, dt.timedelta(0)):
            return moment.date().isoformat()
        raise NotConvertible("has a time of day that a date cannot keep")
    raise NotConvertible("not a date")


def _to_datetime(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise NotConvertible("not a date and time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)  # a plain date becomes its UTC midnight
        return _datetime(moment)
    raise NotConvertible("not a date and time")


def _to_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _to_text, "text": _to_text, "email": _to_text, "phone": _to_text, "url": _to_text, "choice": _to_text,
    "group": _to_text, "integer": _to_integer, "reference": _to_integer, "user": _to_integer, "decimal": _to_number,
    "money": _to_money, "boolean": _to_boolean, "date": _to_date, "datetime": _to_datetime, "multichoice": _to_list,
}


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    """A validator of `schema` that also checks formats (email, date, ...): the engine's, shared by every check."""
    return validation.validator(schema)


@functools.lru_cache(maxsize=4096)
def _field_validator(f: Field) -> jsonschema.Draft202012Validator:
    return validator(fieldtypes.get(f.type).json_schema(f))


def field_validator(f: Field) -> jsonschema.Draft202012Validator:
    """The validator of one field's values, built once per field: building one costs more than validating with it."""
    try:
        return _field_validator(f)
    except TypeError:  # a field whose default is a list (a multichoice's) is not hashable, so not cached
        return validator(fieldtypes.get(f.type).json_schema(f))


_checks: dict[int, tuple[Field, Callable[[Any], Any] | None]] = {}  # id(field) -> (field, its check)
_CHECKS_KEPT = 4096


def field_check(f: Field) -> Callable[[Any], Any] | None:
    """The compiled yes/no check of one field's values (engine.fastcheck), built once per field; None where only
    jsonschema can be trusted (money bounds, say). Found by the field's identity: hashing a field (every attribute,
    its choices too) costs more than the check itself."""
    hit = _checks.get(id(f))
    if hit is None or hit[0] is not f:  # an id may be reused once a field (its model) is gone
        if len(_checks) >= _CHECKS_KEPT:
            _checks.clear()
        hit = _checks[id(f)] = (f, fastcheck.compile_check(fieldtypes.get(f.type).json_schema(f)))
    return hit[1]


def _fits(value: Any, target: Field) -> bool:
    check = field_check(target)
    if check is not None:
        try:
            check(value)
            return True
        except fastcheck.Invalid:
            pass  # jsonschema says why, or that it is fine after all
    return False


def convert(value: Any, target: Field) -> Any:
    """`value` as a value of `target`, or NotConvertible saying why not."""
    if isinstance(value, list) and target.type != "multichoice":
        if len(value) != 1:
            raise NotConvertible("a list of several values has no single value")
        value = value[0]
    new = CONVERTERS[target.type](value)
    if target.type == "choice" and target.choices and all(isinstance(c.value, int) for c in target.choices):
        new = _to_integer(new)
    errors = [] if _fits(new, target) else list(field_validator(target).iter_errors(new))
    if errors:
        raise NotConvertible(message(target, errors[0]))
    if (problem := storage_problem(target, new)):
        raise NotConvertible(problem)
    return new


# -- plain-language messages ----------------------------------------------------------

TYPE_WORDS = {"integer": "a whole number", "number": "a number", "string": "text", "boolean": "yes or no",
              "array": "a list", "object": "a set of values"}
PATTERN_WORDS = {
    "money": "an amount like 1250.00", "phone": "a phone number (digits, spaces and + ( ) . / -)",
    "email": "an email address like name@example.com", "url": "a web address starting with http:// or https://",
    "date": "a date like 2024-05-31", "group": "the name of a group", "datetime": "a date and time like 2024-05-31T14:30:00+01:00",
}


def _choices(f: Field | None, values: list) -> str:
    labels = {c.value: c.label for c in f.choices} if f else {}
    return ", ".join(str(labels.get(v, v)) for v in values)


def _number(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def message(f: Field | None, error: jsonschema.ValidationError) -> str:
    """What is wrong with one field's value, in words a person understands."""
    kind = error.validator
    ftype = f.type if f else None
    if kind == "type":
        if ftype in ("reference", "user"):
            return f"must be the id of a {f.entity or 'user'}" if ftype == "reference" else "must be the id of a user"
        expected = error.validator_value
        words = [TYPE_WORDS.get(t, t) for t in (expected if isinstance(expected, list) else [expected])]
        return f"must be {' or '.join(words)}"
    if kind == "enum":
        return f"must be one of: {_choices(f, list(error.validator_value))}"
    if kind == "oneOf" and all(isinstance(s, dict) and "const" in s for s in error.validator_value):  # labelled choices
        return f"must be one of: {', '.join(str(s.get('title', s['const'])) for s in error.validator_value)}"
    if kind in ("pattern", "format"):
        if ftype == "datetime" and (problem := datetime_problem(error.instance)):
            return problem  # "must include a time zone" says more than "must be a date and time like"
        if ftype in PATTERN_WORDS:
            return f"must be {PATTERN_WORDS[ftype]}"
        example = f" (for example {f.placeholder})" if f and f.placeholder else ""
        return f"is not in the expected format{example}"
    if kind == "maxLength":
        return f"must be at most {error.validator_value} characters"
    if kind == "minLength":
        return "must not be empty" if error.validator_value == 1 else f"must be at least {error.validator_value} characters"
    if kind == "minimum":
        return f"must be at least {_number(error.validator_value)}"
    if kind == "maximum":
        return f"must be at most {_number(error.validator_value)}"
    if kind == "uniqueItems":
        return "lists the same choice twice"
    return error.message
