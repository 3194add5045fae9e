"""Records over the API: search, read, create, change (If-Match), delete."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from runtime import records

from ..web.deps import CompiledDep, Conn, EngineDep, ServicesDep
from ..web.processes import started
from .auth import ApiPermitted, ApiUser
from .common import entity_or_404, id_or_404, record_json, row_version
from .problems import Problem

router = APIRouter(tags=["records"])


@router.get("/records/{entity}")
def search(request: Request, entity: str, user: ApiUser, conn: Conn, compiled: CompiledDep, sort: str = "id", page: int = 1,
           page_size: int = 50) -> dict:
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


@router.post("/records/{entity}", status_code=201)
async def create(entity: str, body: Annotated[dict, Body()], user: ApiPermitted("edit_records"), engine: EngineDep, compiled: CompiledDep,
                 services: ServicesDep) -> dict:
    def write() -> records.Record:
        entity_or_404(compiled, entity)
        try:
            with engine.begin() as conn:
                return records.create_record(conn, compiled, entity, body, user["id"], history=True)
        except records.RecordInvalid as exc:
            raise Problem(422, "Invalid record", errors=exc.errors) from None

    return await changed(services, compiled, await run_in_threadpool(write))


@router.get("/records/{entity}/{record_id}")
def get(entity: str, record_id: int, user: ApiUser, conn: Conn, compiled: CompiledDep) -> dict:
    entity_or_404(compiled, entity)
    try:
        return record_json(records.get_record(conn, compiled, entity, id_or_404(record_id, entity)))
    except records.RecordNotFound:
        raise Problem(404, "Not found", f"There is no {entity} {record_id}.") from None


@router.patch("/records/{entity}/{record_id}")
async def update(entity: str, record_id: int, body: Annotated[dict, Body()], user: ApiPermitted("edit_records"), engine: EngineDep,
                 compiled: CompiledDep, services: ServicesDep, if_match: Annotated[str | None, Header()] = None) -> dict:
    def write() -> records.Record:
        entity_or_404(compiled, entity)
        try:
            with engine.begin() as conn:
                return records.update_record(conn, compiled, entity, id_or_404(record_id, entity), body, user["id"], history=True,
                                             expected_version=row_version(if_match))
        except records.RecordNotFound:
            raise Problem(404, "Not found", f"There is no {entity} {record_id}.") from None
        except records.RecordInvalid as exc:
            raise Problem(422, "Invalid record", errors=exc.errors) from None
        except records.Conflict as exc:
            raise Problem(412, "Changed meanwhile", str(exc)) from None

    return await changed(services, compiled, await run_in_threadpool(write))


@router.delete("/records/{entity}/{record_id}", status_code=204)
def delete(entity: str, record_id: int, user: ApiPermitted("delete_records"), engine: EngineDep, compiled: CompiledDep,
           if_match: Annotated[str | None, Header()] = None) -> Response:
    """Delete a record nothing refers to; If-Match (its row_version) is required, so you delete what you have seen."""
    entity_or_404(compiled, entity)
    version = row_version(if_match)
    if version is None:
        raise Problem(428, "If-Match required", "Send 'If-Match: ROW_VERSION' of the record you mean to delete.")
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
