"""Forms and submissions over the API."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from engine.model import Form
from forms import submit as forms
from runtime import records
from runtime.holders import MAX_ID

from ..deps import Services
from ..processes import announce_submission, started
from .auth import ApiUser, gated
from .common import ApiCompiled, FormName, api_compiled, key_parameter
from .problems import Problem, problems
from .routing import area_router

router = area_router("forms")


class FormSummary(BaseModel):
    name: str
    label: str
    entity: str | None = Field(description="the entity a submission is recorded against, if any")
    contact: bool
    portal: bool


class SubmissionBody(BaseModel):
    """A submission of a form: the record it is recorded against and the values of its fields."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"record_id": 1, "values": {"channel": "email", "summary": "20 seats"}}]})

    record_id: Annotated[int, Field(strict=True, ge=1, le=MAX_ID)] | None = Field(
        None, description="the id of the record this is recorded against (required when the form has an entity)")
    values: dict[str, Any] = Field(default_factory=dict, description="field name -> value, as the form's JSON Schema describes them")


class SubmissionResult(BaseModel):
    submission_id: str
    created: dict[str, Annotated[list[str | int], Field(min_length=2, max_length=2)]] = Field(
        description="the records its actions created: alias -> [entity, id]")
    updated: dict[str, Annotated[list[str | int], Field(min_length=2, max_length=2)]] = Field(
        default_factory=dict, description="the existing records its find-or-create actions (`match:`) found and updated instead: alias -> [entity, id]")
    processes: list[str] = Field(description="workflow ids of the processes it started")
    replayed: bool = Field(description="true when this repeats an earlier submission with the same Idempotency-Key")


@router.get("/forms", responses=problems(403))
def list_forms(user: ApiUser, compiled: ApiCompiled) -> list[FormSummary]:
    return [FormSummary(name=f.name, label=f.label, entity=f.entity, contact=f.contact, portal=f.portal) for f in compiled.model.forms.values()]


@router.get("/forms/{name}/schema", responses=problems(403, 404, 422))
def form_schema(name: FormName, user: ApiUser, compiled: ApiCompiled) -> dict[str, Any]:
    """The form's JSON Schema (draft 2020-12)."""
    if name not in compiled.form_schemas:
        raise Problem(404, "Not found", f"There is no form '{name}'.")
    return compiled.form_schemas[name]


@router.get("/forms/{name}/ui-schema", responses=problems(403, 404, 422))
def form_ui_schema(name: FormName, user: ApiUser, compiled: ApiCompiled,
                   renderer: Annotated[Literal["rjsf", "jsonforms"], Query(alias="for")] = "rjsf") -> dict[str, Any]:
    """The form's UI schema for react-jsonschema-form (`for=rjsf`) or JSON Forms (`for=jsonforms`): order, widgets, sections."""
    if name not in compiled.form_ui_schemas:
        raise Problem(404, "Not found", f"There is no form '{name}'.")
    return compiled.form_ui_schemas[name][renderer]


def submission_input(compiled, name: str, body: SubmissionBody) -> tuple[Form, Any, dict[str, Any]]:
    """(form, record id, typed values) of a submission, or the problem with it."""
    if name not in compiled.model.forms:
        raise Problem(404, "Not found", f"There is no form '{name}'.")
    form = compiled.model.forms[name]
    if form.entity and body.record_id is None:
        raise Problem(422, "Invalid submission", errors={"record_id": f"the id of the {form.entity} this is recorded against"})
    values, errors = forms.parse(form, body.values)
    errors.update({k: f"'{k}' is not a field of this form" for k in set(body.values) - {f.name for f in form.fields}})
    if errors:
        raise Problem(422, "Invalid submission", errors=errors)
    return form, body.record_id, values


@router.post("/forms/{name}/submissions", status_code=201, response_model=SubmissionResult,
             responses={200: {"model": SubmissionResult, "description": "A repeat of an earlier submission: its first answer"},
                        **problems(400, 403, 404, 413, 422)},
             openapi_extra={"parameters": [key_parameter(required=True)]})
@gated("generate_tasks", key=True)
async def submit_form(name: FormName, body: SubmissionBody, request: Request) -> JSONResponse:
    """Submit a form: recorded once per Idempotency-Key, its actions run, its processes started."""
    user, idempotency_key = request.state.api_user, request.state.idempotency_key
    # the configuration and the services are not dependencies of their own: FastAPI solves each one on every request,
    # and this is the API's busiest route
    compiled = await api_compiled(request)
    services: Services = request.app.state.services
    engine = services.engine

    def write():
        form, record_id, values = submission_input(compiled, name, body)
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
    payload = {"submission_id": result.id, "created": result.created, "updated": result.updated, "processes": result.starts, "replayed": result.replayed}
    return JSONResponse(payload, status_code=200 if result.replayed else 201)
