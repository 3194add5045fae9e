"""Forms and submissions over the API."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from engine.model import Form
from forms import submit as forms
from runtime import records

from ..web.deps import CompiledDep, EngineDep, ServicesDep
from ..web.processes import announce_submission, started
from .auth import ApiPermitted, ApiUser
from .problems import Problem

router = APIRouter(tags=["forms"])


@router.get("/forms")
def list_forms(user: ApiUser, compiled: CompiledDep) -> list[dict]:
    return [{"name": f.name, "label": f.label, "entity": f.entity, "contact": f.contact, "portal": f.portal} for f in compiled.model.forms.values()]


@router.get("/forms/{name}/schema")
def form_schema(name: str, user: ApiUser, compiled: CompiledDep) -> dict:
    if name not in compiled.form_schemas:
        raise Problem(404, "Not found", f"There is no form '{name}'.")
    return compiled.form_schemas[name]


@router.get("/forms/{name}/ui-schema")
def form_ui_schema(name: str, user: ApiUser, compiled: CompiledDep,
                   renderer: Annotated[Literal["rjsf", "jsonforms"], Query(alias="for")] = "rjsf") -> dict:
    """The form's UI schema for react-jsonschema-form (`for=rjsf`) or JSON Forms (`for=jsonforms`): order, widgets, sections."""
    if name not in compiled.form_ui_schemas:
        raise Problem(404, "Not found", f"There is no form '{name}'.")
    return compiled.form_ui_schemas[name][renderer]


def submission_input(compiled, name: str, body: dict, idempotency_key: str | None) -> tuple[Form, Any, dict[str, Any]]:
    """(form, record id, typed values) of a submission, or the problem with it."""
    if name not in compiled.model.forms:
        raise Problem(404, "Not found", f"There is no form '{name}'.")
    if not idempotency_key:
        raise Problem(400, "Idempotency-Key required", "Send a unique Idempotency-Key header so a retry cannot submit twice.")
    form = compiled.model.forms[name]
    record_id = body.get("record_id")
    if form.entity and not isinstance(record_id, int):
        raise Problem(422, "Invalid submission", errors={"record_id": f"the id of the {form.entity} this is recorded against"})
    raw = body.get("values") or {}
    if not isinstance(raw, dict):
        raise Problem(422, "Invalid submission", errors={"values": "an object of field names and values"})
    values, errors = forms.parse(form, raw)
    errors.update({k: f"'{k}' is not a field of this form" for k in set(raw) - {f.name for f in form.fields}})
    if errors:
        raise Problem(422, "Invalid submission", errors=errors)
    return form, record_id, values


@router.post("/forms/{name}/submissions", status_code=201)
async def submit_form(name: str, body: Annotated[dict, Body()], user: ApiPermitted("generate_tasks"), engine: EngineDep,
                      compiled: CompiledDep, services: ServicesDep,
                      idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    def write():
        form, record_id, values = submission_input(compiled, name, body, idempotency_key)
        try:
            with engine.begin() as conn:
                return form, values, forms.submit(conn, compiled, name, values, submission_id=f"api-{user['id']}-{idempotency_key}",
                                                  user=user, record_id=record_id)
        except records.RecordNotFound:
            raise Problem(422, "Invalid submission", errors={"record_id": f"there is no {form.entity} {record_id}"}) from None
        except forms.SubmissionInvalid as exc:
            raise Problem(422, "Invalid submission", errors=exc.errors) from None

    form, values, result = await run_in_threadpool(write)
    await started(services, compiled, result.starts)
    await announce_submission(services, form, result, values, user)
    payload = {"submission_id": result.id, "created": result.created, "processes": result.starts, "replayed": result.replayed}
    return JSONResponse(payload, status_code=200 if result.replayed else 201)
