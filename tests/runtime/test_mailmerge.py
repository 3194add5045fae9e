"""A mail merge renders a letter per record within one time budget; a letter that cannot be made says why in its place."""
from __future__ import annotations

import pytest

from runtime.mailmerge import merge_letters

RECORDS = [(f"Company {i}", {"record": {"name": f"Company {i}", "employees": i}}) for i in range(500)]


def test_each_record_gets_its_letter_in_order():
    letters = merge_letters("Dear {{ record.name }}, you have {{ record.employees }} staff.", RECORDS[:3])
    assert letters == [("Company 0", "Dear Company 0, you have 0 staff."), ("Company 1", "Dear Company 1, you have 1 staff."),
                       ("Company 2", "Dear Company 2, you have 2 staff.")]


def test_a_letter_that_fails_for_one_record_does_not_stop_the_others():
    letters = merge_letters("{{ 100 // record.employees }}", RECORDS[:3])
    assert letters == [("Company 0", "(not produced: integer division or modulo by zero)"), ("Company 1", "100"), ("Company 2", "50")]


@pytest.mark.parametrize("template, reason", [
    ("{{ 10**3000000 }}", "a number in the letter is too large (over 1,000 digits)"),
    ("{{ 'a' * 10**7 }}", "a text in the letter is too long (over 1,000,000 characters)"),
    ("{{ range(10**9)|list }}", "a list in the letter is too long (over 100,000 items)"),
    ("{{ [record.name] * 10**7 }}", "a list in the letter is too long (over 100,000 items)"),
    ("{{ (range(1000)|list)|join(record.name * 200) }}", "a text in the letter is too long (over 1,000,000 characters)"),
])
def test_each_of_500_letters_is_refused_at_once_well_within_the_merges_time(template, reason):
    # Had any refusal taken longer than 4 ms (2 s over 500 records), the budget would have run out and the
    # later letters would say they took too long: each is refused before the work is done.
    letters = merge_letters(template, RECORDS)
    assert [text for _, text in letters] == [f"(not produced: {reason})"] * 500


def test_a_slow_letter_stops_at_the_merges_budget_and_the_rest_are_marked_not_produced():
    # within every limit of one letter (80,000 steps, 20,000 characters), but tens of milliseconds each:
    # 500 of them would take far longer than the 2 seconds a merge has
    template = "{% for i in range(20000) %}{{ (i + record.employees) % 7 }}{% endfor %}"
    letters = merge_letters(template, RECORDS)
    assert [title for title, _ in letters] == [title for title, _ in RECORDS]
    late = "(not produced: the letter took too long; a merge has 2 seconds for all its letters)"
    produced = [text for _, text in letters if text != late]
    assert len(produced) < 500
    assert [text for _, text in letters[len(produced):]] == [late] * (500 - len(produced))
    for n, text in enumerate(produced):
        assert text == "".join(str((i + n) % 7) for i in range(20000))


def test_the_letters_of_one_merge_together_stop_at_five_million_characters():
    letters = merge_letters("{{ record.name ~ ('x' * 20000) }}", RECORDS)
    too_long = "(not produced: the letters are too long together (over 5,000,000 characters in one merge))"
    texts = [text for _, text in letters]
    assert texts[:249] == [f"Company {i}" + "x" * 20000 for i in range(249)]
    assert texts[249:] == [too_long] * 251
