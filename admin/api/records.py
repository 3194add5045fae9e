"""Records over the API: search, read, create, change (If-Match), delete."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from runtime import records

from ..deps import Conn, EngineDep, ServicesDep
from ..processes import started
from .auth import ApiPermitted, ApiUser
from .common import (
    ApiCompiled,
    EntityName,
    Moment,
    RecordId,
    entity_or_404,
    id_or_404,
    if_match_parameter,
    record_json,
    required_row_version,
    row_version,
)
from .problems import Problem, problems
from .routing import area_router

router = area_router("records")


class RecordOut(BaseModel):
    id: int
    title: str
    data: dict[str, Any] = Field(description="every field that has a value, by name (money as text like '1250.00', dates as ISO text)")
    row_version: int = Field(description="send it back in If-Match to change or delete exactly what you read")
    created_at: Moment
    updated_at: Moment


class RecordChanged(RecordOut):
    processes: list[str] = Field(description="workflow ids of the processes the change started")


class RecordPage(BaseModel):
    items: list[RecordOut]
    total: int = Field(description="matches, counted up to 10,000 (see `more`)")
    more: bool = Field(description="true when more than `total` records match")
    page: int
    pages: int


Values = Annotated[dict[str, Any], Body(description="field name -> value, as the entity's JSON Schema describes them",
                                        openapi_examples={"company": {"value": {"name": "Globex", "status": "prospect"}}})]
FILTERS = {"name": "filters", "in": "query", "required": False, "style": "form", "explode": True,
           "description": "Any other query parameter filters on the field it names (`status=customer`, `id=3`, "
                          "`record_fields.NAME=...`); an unknown field or a value the field cannot hold answers 400.",
           "schema": {"type": "object", "additionalProperties": {"type": "string"}}}


@router.get("/records/{entity}", response_model=RecordPage, responses=problems(400, 403, 404, 422),
            openapi_extra={"parameters": [FILTERS]})
def search(request: Request, entity: EntityName, user: ApiUser, conn: Conn, compiled: ApiCompiled,
           sort: Annotated[str, Query(description="the field to sort by, '-name' for descending; id breaks ties")] = "id",
           page: Annotated[int, Query(ge=1)] = 1, page_size: Annotated[int, Query(ge=1, le=records.MAX_PAGE_SIZE)] = 50) -> dict:
    """Records matching every filter, a page at a time."""
    entity_or_404(compiled, entity)
    filters = {k: v for k, v in request.query_params.items() if k not in ("sort", "page", "page_size")}
    try:
        found = records.search_records(conn, compiled, entity, filters, sort=sort, page=page, page_size=page_size)
    except records.BadQuery as exc:
        raise Problem(400, "Bad query", str(exc)) from None
    return {"items": [record_json(r) for r in found.items], "total": found.total, "more": found.more, "page": found.page, "pages": found.pages}


async def changed(services, compiled, rec: records.Record) -> dict:
    """The record as stored, once the processes its change enqueued are started (the drainer retries any that fail)."""
    await started(services, compiled, rec.starts)
    return {**record_json(rec), "processes": list(rec.starts)}


@router.post("/records/{entity}", status_code=201, response_model=RecordChanged, responses=problems(400, 403, 404, 413, 422))
async def create(entity: EntityName, body: Values, user: ApiPermitted("edit_records"), engine: EngineDep, compiled: ApiCompiled,
                 services: ServicesDep) -> dict:
    """Create a record; a message per field that is not accepted."""
    def write() -> records.Record:
        entity_or_404(compiled, entity)
        try:
            with engine.begin() as conn:
                return records.create_record(conn, compiled, entity, body, user["id"], history=True)
        except records.RecordInvalid as exc:
            raise Problem(422, "Invalid record", errors=exc.errors) from None

    return await changed(services, compiled, await run_in_threadpool(write))


@router.get("/records/{entity}/{record_id}", response_model=RecordOut, responses=problems(403, 404, 422))
def get(entity: EntityName, record_id: RecordId, user: ApiUser, conn: Conn, compiled: ApiCompiled) -> dict:
    entity_or_404(compiled, entity)
    try:
        return record_json(records.get_record(conn, compiled, entity, id_or_404(record_id, entity)))
    except records.RecordNotFound:
        raise Problem(404, "Not found", f"There is no {entity} {record_id}.") from None


@router.patch("/records/{entity}/{record_id}", response_model=RecordChanged, responses=problems(400, 403, 404, 412, 413, 422),
              openapi_extra={"parameters": [if_match_parameter(required=False)]})
async def update(entity: EntityName, record_id: RecordId, body: Values, user: ApiPermitted("edit_records"),
                 expected: Annotated[int | None, Depends(row_version)], engine: EngineDep, compiled: ApiCompiled,
                 services: ServicesDep) -> dict:
    """Change the fields the body names (null empties one)."""
    def write() -> records.Record:
        entity_or_404(compiled, entity)
        try:
            with engine.begin() as conn:
                return records.update_record(conn, compiled, entity, id_or_404(record_id, entity), body, user["id"], history=True,
                                             expected_version=expected)
        except records.RecordNotFound:
            raise Problem(404, "Not found", f"There is no {entity} {record_id}.") from None
        except records.RecordInvalid as exc:
            raise Problem(422, "Invalid record", errors=exc.errors) from None
        except records.Conflict as exc:
            raise Problem(412, "Changed meanwhile", str(exc)) from None

    return await changed(services, compiled, await run_in_threadpool(write))


@router.delete("/records/{entity}/{record_id}", status_code=204, response_class=Response,
               responses=problems(400, 403, 404, 409, 412, 422, 428), openapi_extra={"parameters": [if_match_parameter(required=True)]})
def delete(entity: EntityName, record_id: RecordId, user: ApiPermitted("delete_records"), version: Annotated[int, Depends(required_row_version)],
           engine: EngineDep, compiled: ApiCompiled) -> Response:
    """Delete a record nothing refers to; If-Match (its row_version) is required, so you delete what you have seen."""
    entity_or_404(compiled, entity)
    try:
        with engine.begin() as conn:
            records.delete_record(conn, compiled, entity, id_or_404(record_id, entity), user["id"], expected_version=version)
    except records.RecordNotFound:
        raise Problem(404, "Not found", f"There is no {entity} {record_id}.") from None
    except records.Conflict as exc:
        raise Problem(412, "Changed meanwhile", str(exc)) from None
    except records.DeletionRefused as exc:
        raise Problem(409, "Cannot delete", str(exc), referenced_by=exc.referrers) from None
    return Response(status_code=204)
