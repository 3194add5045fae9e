"""The REST API under /api: records, forms and submissions, tasks and alerts.

Integrations authenticate with `Authorization: Bearer <token>` (`tailor user create … --token`).
Errors are RFC 9457 problem details, with a message per field where a value is wrong.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError

from engine.compiler import CompiledModel
from engine.model import Form
from forms import submit as forms
from runtime import records, tasks as task_service
from runtime.schema import alerts, project_members, projects, tasks
from runtime.starter import start_enqueued
from runtime.workflows import ProcessWorkflow, TaskAction
from .access import allowed, may_act_on_task, may_approve, may_see_task, token_user


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str = "", errors: dict[str, str] | None = None, **extra: Any):
        self.status, self.title, self.detail, self.errors, self.extra = status, title, detail, errors or {}, extra


def problem_response(exc: Problem) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": exc.title, "status": exc.status}
    if exc.detail:
        body["detail"] = exc.detail
    if exc.errors:
        body["errors"] = exc.errors
    body.update(exc.extra)  # RFC 9457 extension members, e.g. referenced_by
    return JSONResponse(body, status_code=exc.status, media_type="application/problem+json")


def _json(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _record(r: records.Record) -> dict:
    return {"id": r.id, "title": r.title, "data": {k: _json(v) for k, v in r.data.items()}, "row_version": r.row_version,
            "created_at": _json(r.created_at), "updated_at": _json(r.updated_at)}


def _version(if_match: str | None) -> int | None:
    """The row version an If-Match header names ("3", or the entity tag \"3\")."""
    if if_match is None:
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise Problem(400, "Bad If-Match", f"If-Match carries the record's row_version, e.g. '3'; found {if_match!r}.") from None


def _task(row: dict) -> dict:
    return {k: _json(v) for k, v in row.items() if k not in ("key",)}


def build_router(engine: sa.Engine, compiled: CompiledModel, client: Client | None, task_queue: str, webhooks: Sequence[str] = ()) -> APIRouter:
    router = APIRouter(prefix="/api")
    model = compiled.model

    def caller(request: Request, permission: str = "access", conn: sa.Connection | None = None) -> dict:
        """The user the bearer token names, if they have `permission` (read on `conn` when given, else on a connection of its own)."""
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise Problem(401, "Authentication required", "Send 'Authorization: Bearer <token>'.")
        if conn is None:
            with engine.connect() as own:
                user = token_user(own, auth[7:].strip())
        else:
            user = token_user(conn, auth[7:].strip())
        if user is None:
            raise Problem(401, "Invalid token")
        if not allowed(model, user, permission):
            raise Problem(403, "Forbidden", f"This needs the '{permission}' permission.")
        return user

    def entity_or_404(entity: str) -> None:
        if entity not in model.entities:
            raise Problem(404, "Not found", f"There is no entity '{entity}'.")

    @router.get("/forms")
    def list_forms(request: Request) -> list[dict]:
        caller(request)
        return [{"name": f.name, "label": f.label, "entity": f.entity, "contact": f.contact, "portal": f.portal} for f in model.forms.values()]

    @router.get("/forms/{name}/schema")
    def form_schema(request: Request, name: str) -> dict:
        caller(request)
        if name not in compiled.form_schemas:
            raise Problem(404, "Not found", f"There is no form '{name}'.")
        return compiled.form_schemas[name]

    def submission_input(name: str, body: dict, idempotency_key: str | None) -> tuple[Form, Any, dict[str, Any]]:
        """(form, record id, typed values) of a submission, or the problem with it."""
        if name not in model.forms:
            raise Problem(404, "Not found", f"There is no form '{name}'.")
        if not idempotency_key:
            raise Problem(400, "Idempotency-Key required", "Send a unique Idempotency-Key header so a retry cannot submit twice.")
        form = model.forms[name]
        record_id = body.get("record_id")
        if form.entity and not isinstance(record_id, int):
            raise Problem(422, "Invalid submission", errors={"record_id": f"the id of the {form.entity} this is recorded against"})
        values, errors = forms.parse(form, body.get("values") or {})
        unknown = set(body.get("values") or {}) - {f.name for f in form.fields}
        errors.update({k: f"'{k}' is not a field of this form" for k in unknown})
        if errors:
            raise Problem(422, "Invalid submission", errors=errors)
        return form, record_id, values

    @router.post("/forms/{name}/submissions", status_code=201)
    async def submit_form(request: Request, name: str, body: Annotated[dict, Body()],
                          idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        # One connection for the token check and the write: a request is one checkout of the pool, not two.
        with engine.connect() as conn:
            user = caller(request, "generate_tasks", conn)
            conn.rollback()  # the read ends here, so the write below begins as a write (IMMEDIATE on SQLite)
            form, record_id, values = submission_input(name, body, idempotency_key)
            try:
                with conn.begin():
                    result = forms.submit(conn, compiled, name, values, submission_id=f"api-{user['id']}-{idempotency_key}", user=user,
                                          record_id=record_id)
            except records.RecordNotFound:
                raise Problem(422, "Invalid submission", errors={"record_id": f"there is no {form.entity} {record_id}"}) from None
            except forms.SubmissionInvalid as exc:
                raise Problem(422, "Invalid submission", errors=exc.errors) from None
        if client:
            await start_enqueued(client, engine, compiled, task_queue, result.starts, announce=webhooks)
        if client and "submission.created" in webhooks:
            from .web import announce_submission

            await announce_submission(client, task_queue, form, result, values, user)
        payload = {"submission_id": result.id, "created": result.created, "processes": result.starts, "replayed": result.replayed}
        return JSONResponse(payload, status_code=200 if result.replayed else 201)

    @router.get("/records/{entity}")
    def search(request: Request, entity: str, sort: str = "id", page: int = 1, page_size: int = 50) -> dict:
        caller(request)
        entity_or_404(entity)
        filters = {k: v for k, v in request.query_params.items() if k not in ("sort", "page", "page_size")}
        try:
            with engine.connect() as conn:
                found = records.search_records(conn, compiled, entity, filters, sort=sort, page=page, page_size=page_size)
        except records.BadQuery as exc:
            raise Problem(400, "Bad query", str(exc)) from None
        return {"items": [_record(r) for r in found.items], "total": found.total, "more": found.more, "page": found.page, "pages": found.pages}

    async def changed(rec: records.Record) -> dict:
        """The record as stored, once the processes its change enqueued are started (the drainer retries any that fail)."""
        if client:
            await start_enqueued(client, engine, compiled, task_queue, rec.starts, announce=webhooks)
        return {**_record(rec), "processes": list(rec.starts)}

    @router.post("/records/{entity}", status_code=201)
    async def create(request: Request, entity: str, body: Annotated[dict, Body()]) -> dict:
        def write() -> records.Record:
            user = caller(request, "edit_records")
            entity_or_404(entity)
            try:
                with engine.begin() as conn:
                    return records.create_record(conn, compiled, entity, body, user["id"], history=True)
            except records.RecordInvalid as exc:
                raise Problem(422, "Invalid record", errors=exc.errors) from None

        return await changed(await run_in_threadpool(write))

    @router.get("/records/{entity}/{record_id}")
    def get(request: Request, entity: str, record_id: int) -> dict:
        caller(request)
        entity_or_404(entity)
        try:
            with engine.connect() as conn:
                return _record(records.get_record(conn, compiled, entity, record_id))
        except records.RecordNotFound:
            raise Problem(404, "Not found", f"There is no {entity} {record_id}.") from None

    @router.patch("/records/{entity}/{record_id}")
    async def update(request: Request, entity: str, record_id: int, body: Annotated[dict, Body()],
                     if_match: Annotated[str | None, Header()] = None) -> dict:
        def write() -> records.Record:
            user = caller(request, "edit_records")
            entity_or_404(entity)
            try:
                with engine.begin() as conn:
                    return records.update_record(conn, compiled, entity, record_id, body, user["id"], history=True,
                                                 expected_version=_version(if_match))
            except records.RecordNotFound:
                raise Problem(404, "Not found", f"There is no {entity} {record_id}.") from None
            except records.RecordInvalid as exc:
                raise Problem(422, "Invalid record", errors=exc.errors) from None
            except records.Conflict as exc:
                raise Problem(412, "Changed meanwhile", str(exc)) from None

        return await changed(await run_in_threadpool(write))

    @router.delete("/records/{entity}/{record_id}", status_code=204)
    def delete(request: Request, entity: str, record_id: int, if_match: Annotated[str | None, Header()] = None) -> Response:
        """Delete a record nothing refers to; If-Match (its row_version) is required, so you delete what you have seen."""
        user = caller(request, "delete_records")
        entity_or_404(entity)
        version = _version(if_match)
        if version is None:
            raise Problem(428, "If-Match required", "Send 'If-Match: ROW_VERSION' of the record you mean to delete.")
        try:
            with engine.begin() as conn:
                records.delete_record(conn, compiled, entity, record_id, user["id"], expected_version=version)
        except records.RecordNotFound:
            raise Problem(404, "Not found", f"There is no {entity} {record_id}.") from None
        except records.Conflict as exc:
            raise Problem(412, "Changed meanwhile", str(exc)) from None
        except records.DeletionRefused as exc:
            raise Problem(409, "Cannot delete", str(exc), referenced_by=exc.referrers) from None
        return Response(status_code=204)

    @router.get("/tasks")
    def my_tasks(request: Request) -> list[dict]:
        user = caller(request, "manage_own_tasks")
        with engine.connect() as conn:
            rows = conn.execute(sa.select(tasks).where(tasks.c.assignee_id == user["id"], tasks.c.status.in_(("open", "awaiting_approval")))
                                .order_by(tasks.c.due_at.is_(None), tasks.c.due_at)).mappings().all()
        return [_task(dict(r)) for r in rows]

    async def act(request: Request, task_id: int, permission: str, update, action_of) -> dict:
        user = caller(request, permission)
        with engine.connect() as conn:
            task = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
            if task is None:
                raise Problem(404, "Not found", f"There is no task {task_id}.")
            task = dict(task)
            groups, pm = task_service.access_context(conn, user["id"], task)
        if update is ProcessWorkflow.decide:
            permitted = may_approve(model, user, task, groups, pm)
        elif update is ProcessWorkflow.reassign:
            permitted = may_see_task(model, user, task, groups, pm)
        else:
            permitted = may_act_on_task(user, task, groups)
        if not permitted:
            raise Problem(403, "Forbidden", "This task is not yours to act on.")
        if client is None:
            raise Problem(503, "Process engine unavailable")
        body = await request.json() if await request.body() else {}
        try:
            return await client.get_workflow_handle(task["workflow_id"]).execute_update(
                update, action_of(task, user, body), id=f"api-{request.headers.get('idempotency-key') or task_id}-{user['id']}-{update.__name__}")
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            details = getattr(cause, "details", None) or ()
            raise Problem(409 if getattr(cause, "type", "") == "Conflict" else 422, getattr(cause, "message", str(cause)),
                          errors=details[0] if details and isinstance(details[0], dict) else None) from None

    @router.post("/tasks/{task_id}/complete")
    async def complete(request: Request, task_id: int) -> dict:
        return await act(request, task_id, "manage_own_tasks", ProcessWorkflow.complete,
                         lambda t, u, b: TaskAction(step=t["step_id"], user_id=u["id"], data=b.get("data") or {}, comment=b.get("comment", "")))

    @router.post("/tasks/{task_id}/approve")
    async def approve(request: Request, task_id: int) -> dict:
        return await act(request, task_id, "approve_tasks", ProcessWorkflow.decide,
                         lambda t, u, b: TaskAction(step=t["step_id"], user_id=u["id"], approve=bool(b.get("approve", True)), comment=b.get("comment", "")))

    @router.post("/tasks/{task_id}/reassign")
    async def reassign(request: Request, task_id: int) -> dict:
        return await act(request, task_id, "monitor_tasks", ProcessWorkflow.reassign,
                         lambda t, u, b: TaskAction(step=t["step_id"], user_id=u["id"], to_user=b.get("to_user")))

    @router.get("/projects")
    def my_projects(request: Request) -> list[dict]:
        """Projects the caller may see: all with staff project access, else those they manage or are on."""
        user = caller(request, "project_access")
        with engine.connect() as conn:
            q = sa.select(projects).order_by(projects.c.created_at.desc())
            if not allowed(model, user, "access"):
                mine = sa.select(project_members.c.project_id).where(project_members.c.user_id == user["id"])
                q = q.where(sa.or_(projects.c.manager_id == user["id"], projects.c.id.in_(mine)))
            rows = conn.execute(q.limit(500)).mappings().all()
            out = []
            for r in rows:
                open_tasks = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
                    tasks.c.project_id == r["id"], tasks.c.status.in_(("open", "awaiting_approval")))).scalar()
                out.append({**{k: _json(v) for k, v in r.items() if k != "key"}, "open_tasks": open_tasks})
        return out

    @router.get("/alerts")
    def my_alerts(request: Request) -> list[dict]:
        user = caller(request)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(alerts).where(alerts.c.acknowledged_at.is_(None)).order_by(alerts.c.raised_at.desc()).limit(500)).mappings().all()
        return [{k: _json(v) for k, v in r.items() if k != "key"} for r in rows if user["id"] in (r["recipients"] or [])]

    return router
