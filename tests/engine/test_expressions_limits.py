"""Templates run within limits: numbers, texts, lists, steps, work and output, each refused with a message, never a hang."""
from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine import expressions
from engine.errors import TailorError
from engine.sandbox import Limits, TemplateLimit, TemplateTimeout

RECORD = {"name": "Acme Health", "status": "customer", "employees": 120, "revenue": Decimal("12500.50"),
          "tags": ["clinic", "north", "priority"], "renewal": dt.date(2031, 3, 1), "notes": None,
          "contacts": [{"name": "Jane", "role": "buyer"}, {"name": "Raj", "role": "doctor"}]}
CONTEXT = {"record": RECORD, "today": dt.date(2031, 2, 1)}

NUMBER = "a number in the letter is too large (over 1,000 digits)"
TEXT = "a text in the letter is too long (over 1,000,000 characters)"
LIST = "a list in the letter is too long (over 100,000 items)"


def refusal(source: str, context: dict | None = None, **options) -> str:
    with pytest.raises(TemplateLimit) as caught:
        expressions.render(source, CONTEXT if context is None else context, what="letter", **options)
    return str(caught.value)


@pytest.mark.parametrize("source", [
    "{{ 10**3000000 }}",
    "{{ 9 ** (9 ** 9) }}",
    "{{ (10**600) * (10**600) }}",
    "{% set n = 10**900 %}{{ n * n * n }}",
    "{{ 2.0 ** 100000 }}",
    "{{ ('9' * 4000)|int * 10 }}",
])
def test_a_number_past_a_thousand_digits_is_refused_before_it_is_computed(source):
    assert refusal(source) == NUMBER


@pytest.mark.parametrize("source", [
    "{{ 'a' * 10**7 }}",
    "{{ 10**7 * 'a' }}",
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ 'x'.rjust(10**9) }}",
    "{{ 'x'.center(10**9) }}",
    "{{ '7'.zfill(10**9) }}",
    "{{ '\t'.expandtabs(10**9) }}",
    "{{ 'x'.encode().center(10**9) }}",
    "{{ (1).to_bytes(10**9, 'big') }}",
    "{% set pad = 'x'.center %}{{ pad(10**9) }}",
    "{{ record.tags|map('center', 10**9)|list }}",
    "{{ 'abc'.replace('', 'x' * 1000000) }}",
    "{{ record.name|replace('', 'x' * 100000) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:.999999999f}'.format(1.5) }}",
    "{{ '{0:{1}}'.format(1, 10**9) }}",
    "{{ ('{0}' * 100) .format('x' * 100000) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ ('%s' * 100) % (('x' * 100000,) * 100) }}",
    "{{ '%s'|format('x' * 1000000 ~ 'y') }}",
    "{{ record.name|indent(10**7) }}",
    "{{ ('a b ' * 1000)|wordwrap(1, wrapstring='x' * 1000) }}",
    "{{ range(100000)|join('x' * 100) }}",
    "{{ (['x' * 100000] * 100)|join }}",
    "{{ ''.join(['x' * 100000] * 100) }}",
    "{{ record.contacts|join(', ' * 1000000, attribute='name') }}",
    "{% set big = ['x' * 100000] * 100 %}{{ big }}",
    "{% set big = ['x' * 100000] * 100 %}{{ 'all: ' ~ big }}",
    "{% set big = ['x' * 100000] * 100 %}{{ big|tojson }}",
    "{% set big = ['x' * 100000] * 100 %}{{ '{}'.format(big) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
])
def test_a_text_past_a_million_characters_is_refused(source):
    assert refusal(source) == TEXT


@pytest.mark.parametrize("source", [
    "{{ range(10**9)|list }}",
    "{% for i in range(10**9) %}{% endfor %}",
    "{{ [1] * 10**7 }}",
    "{{ (record.tags * 50000)|length }}",
    "{{ [1]|batch(10**9, 0)|list }}",
    "{{ [1]|slice(10**9)|list }}",
])
def test_a_list_past_a_hundred_thousand_items_is_refused(source):
    assert refusal(source) == LIST


def test_loops_inside_loops_stop_after_the_steps_a_render_may_take():
    assert refusal("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}") == \
        "the letter takes too many steps (over 100,000); is a loop too long?"
    # a macro that calls itself twice over: 2**40 calls, were it not stopped
    assert refusal("{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}") == \
        "the letter takes too many steps (over 100,000); is a loop too long?"


def test_reading_long_texts_over_and_over_stops_at_the_work_a_render_may_do():
    notes = {"record": {**RECORD, "notes": "lorem ipsum " * 50000}}
    for source in ["{% for i in range(90000) %}{% if record.notes == record.notes ~ '' %}{% endif %}{% endfor %}",
                   "{% for i in range(90000) %}{% if 'zzz' in record.notes %}{% endif %}{% endfor %}",
                   "{% for i in range(90000) %}{% if 'zzz' is in record.notes %}{% endif %}{% endfor %}",
                   "{{ range(100000)|map('string')|select('in', record.notes)|list|length }}",
                   "{% for i in range(90000) %}{% set n = record.notes|wordcount %}{% endfor %}",
                   "{% for i in range(90000) %}{% set n = record.notes[1:] %}{% endfor %}",
                   "{% for i in range(90000) %}{% set n = record.notes.upper() %}{% endfor %}",
                   "{% set letters = record.notes[:90000]|list %}{% for i in range(90000) %}{% set n = letters|sort %}{% endfor %}",
                   "{% set s %}{% for i in range(90000) %}" + "x" * 500 + "{% endfor %}{% endset %}{{ s|length }}"]:
        assert refusal(source, notes) == "the letter handles too much text (over 10,000,000 characters in all)", source


def test_a_letter_longer_than_the_output_limit_stops_there():
    assert refusal("{% for i in range(20000) %}{{ 'x' * 100 }}{% endfor %}") == "the letter is too long (over 1,000,000 characters)"
    assert refusal("{% for c in record.contacts %}{{ c.name }} {% endfor %}", limits=Limits(output=8)) == \
        "the letter is too long (over 8 characters)"


def test_a_macro_calling_itself_forever_is_refused_in_words():
    assert refusal("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}") == "the letter calls itself too deeply"


def test_a_render_past_its_deadline_stops():
    with pytest.raises(TemplateTimeout, match="^the letter took too long$"):
        expressions.render("{% for c in record.contacts %}{{ c.name }}{% endfor %}", CONTEXT, what="letter",
                           deadline=time.monotonic() - 1)


def test_conditions_have_the_same_limits_and_say_they_are_conditions():
    with pytest.raises(TemplateLimit, match="^a number in the condition is too large"):
        expressions.evaluate("record.employees ** (10 ** 6) > 3", CONTEXT)
    assert expressions.evaluate("record.employees > 100 and 'clinic' in record.tags", CONTEXT) is True


def test_a_template_longer_than_the_source_limit_is_not_compiled():
    assert refusal("x" * 100_001) == "the letter is too long to run (over 100,000 characters)"


def test_a_limit_is_a_tailor_error_with_the_default_name_template():
    with pytest.raises(TailorError, match="^a text in the template is too long"):
        expressions.render("{{ 'a' * 10**7 }}", CONTEXT)


def plain_environment() -> ImmutableSandboxedEnvironment:
    """The environment templates ran in before they had limits."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
    env.filters.update(days_until=expressions.days_until, days_since=expressions.days_since)
    return env


LETTERS = [
    "Dear {{ record.name }},\nthank you.\n",
    "{{ record.name|upper }} has {{ record.employees }} staff and {{ '%.2f'|format(record.revenue) }} in revenue.",
    "{% for t in record.tags %}{{ loop.index }}. {{ t|title }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{% for c in record.contacts if c.role == 'buyer' %}{{ c.name }}{% else %}nobody{% endfor %}",
    "{% for c in record.contacts|sort(attribute='name', reverse=true) %}{{ c.name ~ ' (' ~ c.role ~ ')' }}\n{% endfor %}",
    "{% macro line(label, value) %}{{ label|center(12) }}|{{ value }}{% endmacro %}{{ line('Name', record.name) }}\n{{ line('Staff', record.employees) }}",
    "{% set greeting %}Hello {{ record.name }}{% endset %}{{ greeting|wordwrap(5) }} / {{ greeting|indent(2, first=true) }}",
    "{{ record.tags|join(', ') }}; {{ record.contacts|map(attribute='name')|join(' & ') }}; {{ record.tags|batch(2, '-')|list }}",
    "{{ '{} has {:>6} staff'.format(record.name, record.employees) }} {{ '%s/%d' % (record.status, record.employees * 2) }}",
    "{{ record.renewal|days_until(today) }} days; {{ (record.employees / 7)|round(2) }}; {{ record.employees // 7 }}; {{ 2 ** 10 }}",
    "{{ record.notes }} {{ record.notes is none }} {{ record.name[:4] }} {{ record.tags[-1] }} {{ record.contacts[0] }}",
    "{% if record.status in ['customer', 'partner'] and record.employees >= 100 %}big{% elif record.employees %}small{% endif %}",
    "{{ {'a': 1, 'b': [1, 2]}|tojson }} {{ record.tags|pprint }} {{ record.tags|length }} {{ range(3)|list }} {{ record.tags }}",
    "{% for row in record.contacts %}{% for k, v in row|dictsort %}{{ k }}={{ v }} {% endfor %}{% endfor %}",
    "{{ 'x' * 3 }}{{ [0] * 2 }}{{ record.name ~ 3 ~ none }}{{ -record.employees }} {{ record.revenue * 2 }}",
]


@pytest.mark.parametrize("source", LETTERS)
def test_a_normal_letter_renders_exactly_as_without_limits(source):
    assert expressions.render(source, CONTEXT) == plain_environment().from_string(source).render(CONTEXT)


def test_a_missing_field_is_still_jinja2s_error_not_a_limit():
    with pytest.raises(Exception, match="has no attribute 'colour'") as caught:
        expressions.render("{{ record.colour }}", CONTEXT)
    assert not isinstance(caught.value, TemplateLimit)
