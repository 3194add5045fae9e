"""Form submissions are checked with the engine's one validator, on every path: the web and API parse, and the
step form check a workflow update runs before a task is completed."""
from __future__ import annotations

import pytest

from engine.compiler import compile_model
from engine.loader import load
from forms import submit as forms
from runtime.interpreter import form_errors
from tests.conftest import ACME, CRM


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM, ACME]))


def test_a_negative_budget_is_refused_as_below_the_minimum(compiled):
    values, errors = forms.parse(compiled.model.forms["lead_enquiry"], {"channel": "email", "summary": "x", "budget": "-5"})
    assert errors == {"budget": "Budget must be at least 0"}
    values, errors = forms.parse(compiled.model.forms["lead_enquiry"], {"channel": "email", "summary": "x", "budget": "12.50"})
    assert errors == {} and values["budget"] == "12.50"


def test_a_link_with_a_space_is_not_a_web_address(compiled):
    form = compiled.model.forms["proposal"]
    good = {"proposal_value": "1000", "sent_on": "2025-05-01", "stage": form.field("stage").choices[0].value}
    assert forms.parse(form, {**good, "document": "https://example.com/proposal.pdf"})[1] == {}
    _, errors = forms.parse(form, {**good, "document": "https://example.com/my proposal.pdf"})
    assert errors == {"document": "Link to the proposal document must be a web address starting with http:// or https://"}


def test_a_choice_outside_the_list_names_the_choices_by_label(compiled):
    _, errors = forms.parse(compiled.model.forms["lead_enquiry"], {"channel": "pigeon", "summary": "x"})
    assert errors == {"channel": "Channel must be one of: Phone, Email, Website, Event, Visit"}


@pytest.mark.parametrize("sent_at", ["yesterday", "2025-05-01T09:30:00", "2025-05-01"])
def test_a_step_form_refuses_a_moment_without_its_offset(compiled, sent_at):
    """What POST /api/tasks/ID/complete checks (the workflow update's validator): the published schema, formats and all."""
    schema = compiled.form_schemas["email_note"]
    good = {"direction": schema["properties"]["direction"]["oneOf"][0]["const"], "subject": "Renewal"}
    assert form_errors(schema, {**good, "sent_at": "2025-05-01T09:30:00+01:00"}) == {}
    assert list(form_errors(schema, {**good, "sent_at": sent_at})) == ["sent_at"]


def test_a_step_form_refuses_a_pattern_match_with_a_trailing_newline(compiled):
    schema = compiled.form_schemas["account_setup"]
    name = next(n for n, p in schema["properties"].items() if p.get("pattern") == "^[A-Z]{3}[0-9]{4}$")
    assert list(form_errors(schema, {name: "ACM0001\n"})) == [name]
