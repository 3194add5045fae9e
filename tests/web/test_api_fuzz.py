"""Schemathesis against the running API: no server error and no answer the OpenAPI does not describe.

Every operation of /api/openapi.json is called with generated requests (valid and invalid ones), as a staff user
and as an admin, and each answer is checked: not a 5xx, a status the operation documents, the documented content
type, a body that matches the documented schema, the documented headers. Path parameters are drawn partly from
what exists (entity and form names, record ids), and bodies partly from the entity's or form's own fields, so
requests get past "not found" into validation and storage. The app has no process engine here and no task to act
on, so task actions are checked up to their 404 (tests/web/test_api_bad_input.py follows them further).
"""
from __future__ import annotations

import datetime as dt

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from admin.access import new_token
from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.schema import metadata as platform, users
from tests.conftest import CRM

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# Bounded: the suite runs on two shared cores. Each operation gets this many generated requests per caller.
SETTINGS = hypothesis.settings(max_examples=30, deadline=None, derandomize=True, database=None,
                               suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.explicit,
                                                                                          hypothesis.Phase.generate])


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture(scope="module")
def site(compiled, module_database):
    """The app with a staff user, an admin (each with a token) and a few records."""
    engine = module_database
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    tokens, ids = {}, {}
    with engine.begin() as conn:
        for name, roles in [("staff", ["staff"]), ("admin", ["admin"])]:
            token, digest = new_token()
            tokens[name] = token
            conn.execute(users.insert().values(username=name, name=name.title(), roles=roles, api_token_hash=digest,
                                               created_at=dt.datetime.now(dt.timezone.utc)))
        for i in range(3):
            company = records.create_record(conn, compiled, "company", {"name": f"Company {i}", "status": "customer"}, None)
            ids.setdefault("company", []).append(company.id)
        person = records.create_record(conn, compiled, "person", {"company": company.id, "first_name": "Jane", "last_name": "Doe"}, None)
        ids["person"] = [person.id]
    app = create_app(engine, compiled, None, secret_key="fuzz-secret")
    return app, tokens, ids


# Values a field of each type might be sent: mostly of the type, with the edges that once reached the database
# (text with NUL or half a surrogate pair, whole numbers past any column, numbers that are not finite).
ODD_TEXT = st.sampled_from(["a\x00b", "\ud800", "\udfff tail", "x" * 600, "", "   ", "=HYPERLINK(1)"])
TEXT = st.text(max_size=40) | ODD_TEXT
WHOLE = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([0, 1, 2**31, 2**63, -(2**63) - 1, 10**30])
NUMBER = WHOLE | st.floats()
BY_TYPE = {
    "integer": WHOLE, "reference": WHOLE, "user": WHOLE, "decimal": NUMBER, "boolean": st.booleans() | TEXT,
    "money": st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str) | NUMBER | TEXT,
    "date": st.dates().map(dt.date.isoformat) | TEXT,
    "datetime": st.datetimes(timezones=st.just(dt.timezone.utc)).map(dt.datetime.isoformat) | TEXT,
}


def value_of(f) -> st.SearchStrategy:
    typed = BY_TYPE.get(f.type, TEXT)
    if f.choices:
        choices = st.sampled_from([c.value for c in f.choices])
        typed = st.lists(choices, max_size=3) if f.type == "multichoice" else choices | typed
    return typed | st.none() | st.lists(typed, max_size=2)


def values_of(fields) -> st.SearchStrategy:
    """An object of the required `fields` and some others, with values of roughly their types."""
    return st.fixed_dictionaries({f.name: BY_TYPE.get(f.type, TEXT) if not f.choices else st.sampled_from([c.value for c in f.choices])
                                  for f in fields if f.required},
                                 optional={f.name: value_of(f) for f in fields if not f.required})


def api_schema(site, compiled):
    app, _, ids = site
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    model = compiled.model
    known = [i for values in ids.values() for i in values]
    record_bodies = {name: values_of(list(e.all_fields())) for name, e in model.entities.items()}
    form_bodies = {name: st.fixed_dictionaries({"record_id": st.sampled_from(known) | WHOLE, "values": values_of(f.fields)})
                   for name, f in model.forms.items()}

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        """Half the time a name or id that exists, so a request reaches validation rather than 404."""
        if not path_parameters:
            return st.just(path_parameters)
        real = {}
        if "entity" in path_parameters:
            real["entity"] = st.sampled_from(sorted(model.entities))
        if "name" in path_parameters:
            real["name"] = st.sampled_from(sorted(model.forms))
        if "record_id" in path_parameters:
            real["record_id"] = st.sampled_from(known)
        return st.one_of(st.just(path_parameters), st.fixed_dictionaries(real).map(lambda r: {**path_parameters, **r}))

    @schema.hook
    def flatmap_case(context, case):
        """Half the time a body of the entity's or the form's own fields, so values reach the store."""
        params = case.path_parameters or {}
        if case.method in ("POST", "PATCH") and params.get("entity") in record_bodies and "submissions" not in case.path:
            bodies = record_bodies[params["entity"]]
        elif case.path.endswith("/submissions") and params.get("name") in form_bodies:
            bodies = form_bodies[params["name"]]
        else:
            return st.just(case)

        def with_body(body):
            case.body = body
            return case

        return st.one_of(st.just(case), bodies.map(with_body))

    return schema


def fuzz(schema, token: str) -> list[str]:
    """Every operation called with generated valid and invalid requests; what went wrong, per operation."""
    failed = []
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = st.one_of(*(operation.as_strategy(mode, hooks=schema.hooks) for mode in GenerationMode))

        @SETTINGS
        @hypothesis.given(case=cases)
        def call(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        try:
            call()
        except Exception as exc:  # noqa: BLE001 - every operation runs; the test reports them all
            failed.append(f"{operation.label}: {exc}")
    return failed


@pytest.mark.parametrize("caller", ["staff", "admin"])
def test_the_api_keeps_to_its_openapi(site, compiled, caller):
    failed = fuzz(api_schema(site, compiled), site[1][caller])
    assert not failed, "\n\n".join(failed)
