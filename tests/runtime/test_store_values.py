"""Field values: the one stored spelling, and conversions when a field changes type (pure)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from engine import fastcheck
from engine.errors import NOWHERE
from engine.model import Choice, Field
from runtime import values as V


def field(ftype: str, **kw) -> Field:
    return Field(name="f", type=ftype, loc=NOWHERE, label="F", **kw)


@pytest.mark.parametrize("ftype, given, stored", [
    ("money", 1250, "1250.00"), ("money", "99.5", "99.50"), ("money", Decimal("-3.10"), "-3.10"), ("money", "1.234", "1.234"),
    ("money", "lots", "lots"), ("datetime", "2026-03-29T02:30:00+02:00", "2026-03-29T00:30:00+00:00"),
    ("datetime", dt.datetime(2026, 1, 1, 9, 0, 0, 500, tzinfo=dt.timezone.utc), "2026-01-01T09:00:00.000500+00:00"),
    ("date", dt.date(2026, 2, 1), "2026-02-01"), ("decimal", Decimal("2.50"), 2.5), ("integer", 4.0, 4), ("string", " x ", " x "),
])
def test_values_are_stored_in_one_spelling(ftype, given, stored):
    assert V.normalize(ftype, given) == stored


@pytest.mark.parametrize("target, value, converted", [
    (field("integer"), "42", 42), (field("integer"), "7.00", 7), (field("decimal"), "2.5", 2.5), (field("money"), 12, "12.00"),
    (field("string"), 12, "12"), (field("string"), True, "true"), (field("boolean"), "Yes", True), (field("boolean"), 0, False),
    (field("date"), "2026-02-01T00:00:00+00:00", "2026-02-01"), (field("datetime"), "2026-02-01", "2026-02-01T00:00:00+00:00"),
    (field("multichoice", choices=(Choice("a", "A"), Choice("b", "B"))), "a", ["a"]),
    (field("choice", choices=(Choice("a", "A"),)), ["a"], "a"),
    (field("choice", choices=(Choice(1, "One"), Choice(2, "Two"))), "2", 2),
])
def test_values_that_convert(target, value, converted):
    assert V.convert(value, target) == converted


@pytest.mark.parametrize("target, value, reason", [
    (field("integer"), "about 40", "not a whole number"), (field("integer"), 1.5, "not a whole number"),
    (field("integer"), True, "yes/no is not a number"), (field("money"), "1.234", "has more than two decimal places"),
    (field("boolean"), "perhaps", "not yes or no"), (field("date"), "2026-02-01T10:30:00+00:00", "has a time of day that a date cannot keep"),
    (field("string", max_length=3), "abcd", "must be at most 3 characters"),
    (field("choice", choices=(Choice("a", "Apple"),)), "b", "must be one of: Apple"),
    (field("integer"), [1, 2], "a list of several values has no single value"),
])
def test_values_that_do_not_convert_say_why(target, value, reason):
    with pytest.raises(V.NotConvertible) as caught:
        V.convert(value, target)
    assert str(caught.value) == reason


def test_a_multichoice_with_a_list_default_converts_like_any_field():
    """Converting reuses each field's validator; a list default makes the field unhashable, and it is checked all the same."""
    f = field("multichoice", choices=(Choice("a", "A"), Choice("b", "B")), default=["a"])
    assert V.convert(["b"], f) == ["b"]
    with pytest.raises(V.NotConvertible, match="must be one of: A, B"):
        V.convert(["c"], f)


# -- the compiled check of a field's values agrees with jsonschema -----------------------

FIELDS = [
    field("string", max_length=5), field("text"), field("email"), field("phone"), field("url"), field("date"), field("datetime"),
    field("integer", min=0, max=10), field("decimal", min=1.5), field("reference", entity="company"), field("user"), field("boolean"),
    field("choice", choices=(Choice(value="a", label="A"), Choice(value="b", label="B"))),
    field("choice", choices=(Choice(value=1, label="One"), Choice(value=2, label="Two"))),
]
SAMPLES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 20), st.floats(allow_nan=False, allow_infinity=False, min_value=-5, max_value=15),
    st.sampled_from(["", "a", "b", "abcdef", "x@example.com", "not an email", "+44 20 7946 0000", "12ab", "https://example.com/x",
                     "ftp://x", "2026-02-30", "2026-02-01", "2026-02-01T09:00:00+00:00", "2026-02-01T09:00:00", "1", "1.5"]),
    st.text(max_size=8))


@given(value=SAMPLES)
@settings(max_examples=400, deadline=None)
def test_a_value_the_compiled_check_accepts_is_one_jsonschema_accepts(value):
    for f in FIELDS:
        check = V.field_check(f)
        assert check is not None, f.type  # every plain field type has one: the fast path is the usual one
        try:
            check(value)
        except fastcheck.Invalid:
            continue
        assert V.field_validator(f).is_valid(value), (f.type, value)


def test_a_money_field_with_bounds_is_checked_by_jsonschema_alone():
    assert V.field_check(field("money", min=0)) is None
    with pytest.raises(V.NotConvertible, match="must be at least 0"):
        V.convert("-1.00", field("money", min=0))
