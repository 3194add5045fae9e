"""The staff web app: log in, My work, generated forms, tasks and the customer page.

Server-rendered HTML that works in any browser without scripts. Every POST carries
a CSRF token; sessions are signed, HttpOnly, SameSite=Lax cookies; every page checks
the user's role permissions from the definitions.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware
from temporalio.client import Client, WorkflowUpdateFailedError

from engine import expressions
from engine.compiler import CompiledModel
from engine.errors import Loc
from engine.expressions import Scope
from engine.model import Field, Template
from forms import submit as forms
from runtime import records, tasks as task_service, values
from runtime.history import list_history
from runtime.schema import alerts, group_members, project_members, projects, tasks, users
from runtime.starter import start_enqueued
from runtime.workflows import ProcessWorkflow, TaskAction
from .access import active_user, allowed, may_act_on_task, may_approve, may_see_task, permissions_of
from .api import Problem, build_router, problem_response

HERE = Path(__file__).resolve().parent
MAX_FAILURES, LOCKOUT_SECONDS = 5, 300
STATUS_TEXT = {"open": "Open", "awaiting_approval": "Waiting for approval", "done": "Done", "skipped": "Skipped", "cancelled": "Cancelled"}


async def announce_submission(client: Client, task_queue: str, form, result, values: dict, user: dict) -> None:
    from runtime.webhooks import announce

    await announce(client, task_queue, "submission.created", f"submission:{result.id}",
                   {"form": form.name, "submission_id": result.id, "values": forms.jsonable(values), "created": result.created,
                    "by": user["id"]})


class LoginThrottle:
    """Failed logins per user name: after 5 within 5 minutes, refuse for the rest of the window."""

    def __init__(self) -> None:
        self.failures: dict[str, list[float]] = defaultdict(list)

    def blocked(self, username: str) -> bool:
        now = time.monotonic()
        self.failures[username] = [t for t in self.failures[username] if now - t < LOCKOUT_SECONDS]
        return len(self.failures[username]) >= MAX_FAILURES

    def failed(self, username: str) -> None:
        self.failures[username].append(time.monotonic())

    def succeeded(self, username: str) -> None:
        self.failures.pop(username, None)


def create_app(engine: sa.Engine, compiled: CompiledModel, client: Client | None, *, secret_key: str, task_queue: str = "tailor",
               temporal_ui: str | None = None, secure_cookies: bool = False, webhooks: Sequence[str] = ()) -> FastAPI:
    app = FastAPI(title="Tailor", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.add_middleware(SessionMiddleware, secret_key=secret_key, session_cookie="tailor_session", same_site="lax",
                       https_only=secure_cookies, max_age=12 * 3600)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    hasher = PasswordHasher()
    throttle = LoginThrottle()
    model = compiled.model

    # -- session, CSRF, permissions --------------------------------------------
    def csrf(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(32)
        return request.session["csrf"]

    async def form_data(request: Request):
        data = await request.form()
        expected = request.session.get("csrf")
        if not expected or not secrets.compare_digest(str(data.get("csrf_token", "")), expected):
            raise HTTPException(403, "This form has expired or did not come from Tailor. Go back, reload the page and try again.")
        return data

    def current_user(request: Request) -> dict | None:
        uid = request.session.get("user_id")
        if not uid:
            return None
        with engine.connect() as conn:
            return active_user(conn, uid)

    def permissions(user: dict) -> set[str]:
        return permissions_of(model, user)

    def need(request: Request, permission: str = "access") -> dict:
        user = current_user(request)
        if user is None:
            raise HTTPException(401)
        if permission not in permissions(user) and "admin" not in permissions(user):
            raise HTTPException(403, f"You do not have permission to do this ({permission.replace('_', ' ')}).")
        return user

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"user": ctx.pop("user", None), "csrf_token": csrf(request),
                                                          "flash": request.session.pop("flash", None), **ctx}, status_code=status)

    app.include_router(build_router(engine, compiled, client, task_queue, webhooks))

    @app.exception_handler(Problem)
    async def api_problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return HTMLResponse(f"<!doctype html><title>Not allowed</title><h1>{exc.status_code}</h1><p>{exc.detail}</p><p><a href=/>Back</a></p>",
                            status_code=exc.status_code)

    # -- login ---------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request):
        return page(request, "login.html", username="", error=None)

    @app.post("/login")
    async def login(request: Request):
        data = await form_data(request)
        username, password = str(data.get("username", "")).strip(), str(data.get("password", ""))
        if throttle.blocked(username):
            return page(request, "login.html", 429, username=username, error="Too many failed attempts. Wait a few minutes and try again.")
        with engine.connect() as conn:
            row = conn.execute(sa.select(users.c.id, users.c.password_hash).where(users.c.username == username, users.c.active)).first()
        try:
            ok = row is not None and row.password_hash is not None and hasher.verify(row.password_hash, password)
        except (VerifyMismatchError, InvalidHashError):
            ok = False
        if not ok:
            throttle.failed(username)
            return page(request, "login.html", 401, username=username, error="That user name and password do not match.")
        throttle.succeeded(username)
        request.session.clear()
        request.session["user_id"] = row.id
        csrf(request)
        with engine.connect() as conn:
            roles = conn.execute(sa.select(users.c.roles).where(users.c.id == row.id)).scalar() or []
        perms = permissions_of(model, {"roles": roles})
        outside = "access" not in perms and "admin" not in perms  # customers' people: the portal is their home
        target = "/portal" if outside else request.query_params.get("next", "/")
        return RedirectResponse(target if target.startswith("/") and not target.startswith("//") else "/", status_code=303)

    @app.post("/logout")
    async def logout(request: Request):
        await form_data(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- my work ---------------------------------------------------------------------
    def due_text(due: dt.datetime | None) -> str:
        if due is None:
            return ""
        due = due if due.tzinfo else due.replace(tzinfo=dt.timezone.utc)
        return due.astimezone(dt.timezone.utc).strftime("%a %d %b %Y %H:%M UTC")

    def task_view(row: dict) -> dict:
        due = row["due_at"]
        due = due.replace(tzinfo=dt.timezone.utc) if due is not None and due.tzinfo is None else due
        return {**row, "due_text": due_text(due), "status_text": STATUS_TEXT.get(row["status"], row["status"]),
                "overdue": due is not None and row["status"] in ("open", "awaiting_approval") and due < dt.datetime.now(dt.timezone.utc)}

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request):
        user = need(request)
        with engine.connect() as conn:
            groups = list(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user["id"])).scalars())
            mine = conn.execute(sa.select(tasks).where(tasks.c.status == "open", sa.or_(tasks.c.assignee_id == user["id"],
                                sa.and_(tasks.c.assignee_id.is_(None), tasks.c.group_name.in_(groups))))
                                .order_by(tasks.c.due_at.is_(None), tasks.c.due_at)).mappings().all()
            waiting = conn.execute(sa.select(tasks).where(tasks.c.status == "awaiting_approval")).mappings().all()
            raised = conn.execute(sa.select(alerts).where(alerts.c.acknowledged_at.is_(None)).order_by(alerts.c.raised_at.desc()).limit(200)).mappings().all()
            companies = conn.execute(sa.select(compiled.metadata.tables["company"].c.id, compiled.metadata.tables["company"].c.title)
                                     .order_by(compiled.metadata.tables["company"].c.title).limit(50)).mappings().all() if "company" in compiled.metadata.tables else []
            assigned = conn.execute(sa.select(tasks).where(tasks.c.created_by == user["id"], tasks.c.status.in_(("open", "awaiting_approval")),
                                                           sa.or_(tasks.c.assignee_id.is_(None), tasks.c.assignee_id != user["id"]))
                                    .order_by(tasks.c.due_at.is_(None), tasks.c.due_at).limit(100)).mappings().all()
            monitored = []
            if allowed(model, user, "monitor_tasks") and groups:
                members = list(conn.execute(sa.select(group_members.c.user_id).where(group_members.c.group_name.in_(groups),
                                                                                   group_members.c.user_id != user["id"])).scalars())
                monitored = conn.execute(sa.select(tasks).where(tasks.c.assignee_id.in_(members), tasks.c.status.in_(("open", "awaiting_approval")))
                                         .order_by(tasks.c.due_at.is_(None), tasks.c.due_at).limit(100)).mappings().all()
        groups_set = set(groups)
        approvals = [t for t in waiting if may_approve(model, user, dict(t), groups_set, None)]
        return page(request, "home.html", user=user, mine=[task_view(dict(t)) for t in mine], approvals=approvals,
                    assigned=[task_view(dict(t)) for t in assigned], monitored=[task_view(dict(t)) for t in monitored],
                    alerts=[a for a in raised if user["id"] in (a["recipients"] or [])], companies=companies)

    # -- forms -------------------------------------------------------------------------
    def options_for(form_name: str, user: dict) -> dict[str, list]:
        form = model.forms[form_name]
        with engine.connect() as conn:
            staff = [dict(r) for r in conn.execute(sa.select(users.c.id, users.c.name).where(users.c.active).order_by(users.c.name)).mappings()]
            return {f.name: forms.choices_for(compiled, conn, f, staff) for f in form.fields}

    def staff_list() -> list[dict]:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(users.c.id, users.c.name, users.c.roles).where(users.c.active).order_by(users.c.name))
                    .mappings() if "portal" not in (r.roles or [])]

    def record_of(entity: str | None, record_id: str | None) -> records.Record | None:
        if not entity or not record_id:
            return None
        try:
            with engine.connect() as conn:
                return records.get_record(conn, compiled, entity, int(record_id))
        except (records.RecordNotFound, ValueError):
            raise HTTPException(404, f"There is no {entity} with that number.")

    @app.get("/forms", response_class=HTMLResponse)
    async def form_list(request: Request):
        user = need(request)
        shown = [f for f in model.forms.values() if f.contact or not f.entity]
        return page(request, "forms_list.html", user=user, forms=sorted(shown, key=lambda f: f.label))

    @app.get("/forms/{name}", response_class=HTMLResponse)
    async def form_page(request: Request, name: str):
        user = need(request, "generate_tasks")
        if name not in model.forms:
            raise HTTPException(404, "There is no such form.")
        record = record_of(model.forms[name].entity, request.query_params.get("record"))
        if model.forms[name].entity and record is None:
            request.session["flash"] = f"Open a {model.forms[name].entity}'s page and choose the form there."
            return RedirectResponse("/", status_code=303)
        return page(request, "form.html", user=user, layout=compiled.form_layouts[name], values={}, errors={},
                    options=options_for(name, user), record=record, submission_id=str(uuid.uuid4()))

    @app.post("/forms/{name}", response_class=HTMLResponse)
    async def form_submit(request: Request, name: str):
        user = need(request, "generate_tasks")
        data = await form_data(request)
        if name not in model.forms:
            raise HTTPException(404, "There is no such form.")
        form = model.forms[name]
        record = record_of(form.entity, request.query_params.get("record"))
        values, errors = forms.parse(form, data)
        submission_id = str(data.get("submission_id") or uuid.uuid4())
        if not errors:
            try:
                with engine.begin() as conn:
                    result = forms.submit(conn, compiled, name, values, submission_id=submission_id, user=user,
                                          record_id=record.id if record else None)
            except forms.SubmissionInvalid as exc:
                errors = exc.errors
        if errors:
            typed = {f.name: (data.getlist(f.name) if f.type == "multichoice" else data.get(f.name)) for f in form.fields}
            return page(request, "form.html", 422, user=user, layout=compiled.form_layouts[name], values=typed, errors=errors,
                        options=options_for(name, user), record=record, submission_id=submission_id)
        if client is not None:
            await start_enqueued(client, engine, compiled, task_queue, result.starts, announce=webhooks)
            if "submission.created" in webhooks:
                await announce_submission(client, task_queue, form, result, values, user)
        request.session["flash"] = f"{form.label} saved." if not result.replayed else f"{form.label} was already saved."
        return RedirectResponse(f"/records/{form.entity}/{record.id}" if record else "/", status_code=303)

    # -- tasks ---------------------------------------------------------------------------
    def load_task(task_id: int, user: dict | None = None) -> dict:
        """The task, if `user` may see it (assignee, its group, project manager, approver, or a monitor)."""
        with engine.connect() as conn:
            row = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().first()
            if row is None:
                raise HTTPException(404, "There is no such task.")
            task = dict(row)
            task["_groups"], task["_pm"] = task_service.access_context(conn, user["id"], task) if user else (set(), None)
        if user is not None and not may_see_task(model, user, task, task["_groups"], task["_pm"]):
            raise HTTPException(403, "This task is assigned to someone else.")
        return task

    def task_page(request: Request, user: dict, task: dict, status: int = 200, values=None, errors=None):
        perms = permissions(user)
        mine = may_act_on_task(user, task, task["_groups"])
        view = task_view(task)
        if task["entity"] and task["record_id"]:
            rec = record_of(task["entity"], str(task["record_id"]))
            view.update(record_link=f"/records/{task['entity']}/{task['record_id']}", record_title=rec.title if rec else "")
        return page(request, "task.html", status, user=user, task=view, layout=compiled.form_layouts.get(task["form"]) if task["form"] else None,
                    values=values or {}, errors=errors or {}, options=options_for(task["form"], user) if task["form"] else {},
                    can_complete=task["status"] == "open" and mine,
                    can_decide=task["status"] == "awaiting_approval" and may_approve(model, user, task, task["_groups"], task["_pm"]),
                    can_reassign=task["status"] in ("open", "awaiting_approval") and bool({"monitor_tasks", "admin"} & perms),
                    staff=staff_list(), request_id=str(uuid.uuid4()))

    @app.get("/tasks/{task_id}", response_class=HTMLResponse)
    async def task_detail(request: Request, task_id: int):
        user = need(request, "manage_own_tasks")
        return task_page(request, user, load_task(task_id, user))

    async def send(task: dict, update, action: TaskAction, request_id: str) -> str | None:
        if client is None:
            return "The process engine is not connected."
        try:
            await client.get_workflow_handle(task["workflow_id"]).execute_update(update, action, id=f"web-{request_id}")
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            return getattr(cause, "message", None) or str(cause)
        return None

    @app.post("/tasks/{task_id}/complete", response_class=HTMLResponse)
    async def task_complete(request: Request, task_id: int):
        user = need(request, "manage_own_tasks")
        data = await form_data(request)
        task = load_task(task_id, user)
        if not may_act_on_task(user, task, task["_groups"]):
            raise HTTPException(403, "This task is assigned to someone else.")
        values, errors = forms.parse(model.forms[task["form"]], data) if task["form"] else ({}, {})
        if not errors:
            problem = await send(task, ProcessWorkflow.complete, TaskAction(step=task["step_id"], user_id=user["id"], data=forms.jsonable(values)),
                                 str(data.get("request_id") or uuid.uuid4()))
            if problem:
                errors = {"": problem}
        if errors:
            typed = {k: data.get(k) for k in data.keys()}
            return task_page(request, user, task, 422, typed, errors)
        if task["form"] and model.forms[task["form"]].actions:
            # the step's form acts like any other submission (e.g. moves the opportunity on), keyed by this request
            with engine.begin() as conn:
                result = forms.submit(conn, compiled, task["form"], values, submission_id=f"task-{task_id}-{data.get('request_id')}",
                                      user=user, record_id=task["record_id"])
            if client is not None:
                await start_enqueued(client, engine, compiled, task_queue, result.starts, announce=webhooks)
        request.session["flash"] = f"Done: {task['title']}"
        return RedirectResponse("/", status_code=303)

    @app.post("/tasks/{task_id}/decide", response_class=HTMLResponse)
    async def task_decide(request: Request, task_id: int):
        user = need(request, "approve_tasks")
        data = await form_data(request)
        task = load_task(task_id, user)
        if not may_approve(model, user, task, task["_groups"], task["_pm"]):
            raise HTTPException(403, "You are not the approver of this task.")
        approve = data.get("decision") == "approve"
        problem = await send(task, ProcessWorkflow.decide, TaskAction(step=task["step_id"], user_id=user["id"], approve=approve,
                                                                      comment=str(data.get("comment", ""))), str(data.get("request_id") or uuid.uuid4()))
        if problem:
            return task_page(request, user, task, 409, errors={"": problem})
        request.session["flash"] = f"{'Approved' if approve else 'Sent back'}: {task['title']}"
        return RedirectResponse("/", status_code=303)

    @app.post("/tasks/{task_id}/comment", response_class=HTMLResponse)
    async def task_comment(request: Request, task_id: int):
        user = need(request, "manage_own_tasks")
        data = await form_data(request)
        task = load_task(task_id, user)
        text = str(data.get("comment", "")).strip()
        if not text:
            return task_page(request, user, task, 422, errors={"": "Write a comment first."})
        problem = await send(task, ProcessWorkflow.comment, TaskAction(step=task["step_id"], user_id=user["id"], comment=text),
                             str(data.get("request_id") or uuid.uuid4()))
        if problem:
            return task_page(request, user, task, 409, errors={"": problem})
        request.session["flash"] = "Comment added."
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)

    @app.post("/tasks/{task_id}/reassign", response_class=HTMLResponse)
    async def task_reassign(request: Request, task_id: int):
        user = need(request, "monitor_tasks")
        data = await form_data(request)
        task = load_task(task_id, user)
        try:
            to_user = int(str(data.get("to_user", "")))
        except ValueError:
            return task_page(request, user, task, 422, errors={"": "Choose who should do the task."})
        problem = await send(task, ProcessWorkflow.reassign, TaskAction(step=task["step_id"], user_id=user["id"], to_user=to_user),
                             str(data.get("request_id") or uuid.uuid4()))
        if problem:
            return task_page(request, user, task, 409, errors={"": problem})
        request.session["flash"] = "Task reassigned."
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)

    @app.get("/alerts", response_class=HTMLResponse)
    async def alerts_inbox(request: Request):
        """Alerts for managers and project managers: sent to me, about my groups' tasks, or in projects I manage."""
        user = need(request)
        with engine.connect() as conn:
            groups = list(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user["id"],
                                                                                  group_members.c.manager)).scalars())
            managed = list(conn.execute(sa.select(projects.c.id).where(projects.c.manager_id == user["id"])).scalars())
            rows = conn.execute(sa.select(alerts, tasks.c.title, tasks.c.group_name, tasks.c.status.label("task_status"))
                                .join(tasks, tasks.c.id == alerts.c.task_id).order_by(alerts.c.acknowledged_at.is_not(None),
                                                                                      alerts.c.raised_at.desc()).limit(300)).mappings().all()
        see_all = allowed(model, user, "set_alerts")
        shown = [dict(a) for a in rows if see_all or user["id"] in (a["recipients"] or []) or a["group_name"] in groups
                 or a["project_id"] in managed]
        for a in shown:
            a["raised_text"] = due_text(a["raised_at"])
        return page(request, "alerts.html", user=user, alerts=shown)

    @app.post("/alerts/{alert_id}/acknowledge")
    async def alert_acknowledge(request: Request, alert_id: int):
        user = need(request)
        await form_data(request)
        with engine.begin() as conn:
            row = conn.execute(sa.select(alerts.c.recipients).where(alerts.c.id == alert_id)).first()
            if row is None:
                raise HTTPException(404, "There is no such alert.")
            task_row = conn.execute(sa.select(tasks.c.group_name, tasks.c.project_id).join(alerts, alerts.c.task_id == tasks.c.id)
                                    .where(alerts.c.id == alert_id)).first()
            manages = task_row is not None and (
                conn.execute(sa.select(group_members.c.user_id).where(group_members.c.group_name == task_row.group_name,
                                                                      group_members.c.user_id == user["id"], group_members.c.manager)).first()
                is not None or conn.execute(sa.select(projects.c.id).where(projects.c.id == task_row.project_id,
                                                                            projects.c.manager_id == user["id"])).first() is not None)
            if user["id"] not in (row.recipients or []) and not manages and not {"set_alerts", "admin"} & permissions(user):
                raise HTTPException(403, "This alert was not sent to you.")
            task_service.acknowledge_alert(conn, alert_id, user["id"])
        request.session["flash"] = "Alert acknowledged."
        return RedirectResponse("/", status_code=303)

    # -- the customer portal --------------------------------------------------------------
    def portal_user(request: Request) -> dict:
        user = need(request, "portal")
        if not user["company_id"]:
            raise HTTPException(403, "Your portal account is not linked to a company yet; ask your contact to link it.")
        return user

    def portal_requests(company_id: int) -> list[dict]:
        if "support_request" not in model.entities:
            return []
        with engine.connect() as conn:
            found = records.search_records(conn, compiled, "support_request", {"company": company_id}, sort="-created_at", page_size=100)
        status = model.entities["support_request"].field("status")
        labels = {c.value: c.label for c in status.choices} if status else {}
        return [{"title": r.title, "status": labels.get(r.data.get("status"), r.data.get("status") or ""), "created": due_text(r.created_at)}
                for r in found.items]

    @app.get("/portal", response_class=HTMLResponse)
    async def portal(request: Request):
        user = portal_user(request)
        company = record_of("company", str(user["company_id"]))
        return page(request, "portal.html", user=user, company=company, forms=[f for f in model.forms.values() if f.portal],
                    requests=portal_requests(user["company_id"]))

    @app.get("/portal/forms/{name}", response_class=HTMLResponse)
    async def portal_form(request: Request, name: str):
        user = portal_user(request)
        if name not in model.forms or not model.forms[name].portal:
            raise HTTPException(404, "There is no such form in the portal.")
        return page(request, "form.html", user=user, layout=compiled.form_layouts[name], values={}, errors={},
                    options=portal_options(name, user), record=None, submission_id=str(uuid.uuid4()), action=f"/portal/forms/{name}")

    def portal_options(name: str, user: dict) -> dict[str, list]:
        """Only the portal user's own company's records are offered (people, contracts, ...)."""
        form = model.forms[name]
        out: dict[str, list] = {}
        with engine.connect() as conn:
            for f in form.fields:
                if f.type == "reference":
                    target = model.entities[f.entity]
                    if f.entity == "company":
                        rows = [(user["company_id"], record_of("company", str(user["company_id"])).title)]
                    elif any(x.name == "company" and x.type == "reference" for x in target.fields):
                        found = records.search_records(conn, compiled, f.entity, {"company": user["company_id"]}, sort="title", page_size=200)
                        rows = [(r.id, r.title) for r in found.items]
                    else:
                        rows = forms.choices_for(compiled, conn, f, [])
                    out[f.name] = rows
                elif f.type in ("user", "group"):
                    out[f.name] = []
                else:
                    out[f.name] = forms.choices_for(compiled, conn, f, [])
        return out

    @app.post("/portal/forms/{name}", response_class=HTMLResponse)
    async def portal_submit(request: Request, name: str):
        user = portal_user(request)
        data = await form_data(request)
        if name not in model.forms or not model.forms[name].portal:
            raise HTTPException(404, "There is no such form in the portal.")
        form = model.forms[name]
        values, errors = forms.parse(form, data)
        allowed = portal_options(name, user)
        for f in form.fields:  # a crafted POST must not name another company's records
            if f.type == "reference" and values.get(f.name) is not None and values[f.name] not in {v for v, _ in allowed[f.name]}:
                errors[f.name] = f"{f.label} must be one of the listed records"
        submission_id = str(data.get("submission_id") or uuid.uuid4())
        if not errors:
            try:
                with engine.begin() as conn:
                    result = forms.submit(conn, compiled, name, values, submission_id=submission_id, user=user,
                                          record_id=user["company_id"] if form.entity == "company" else None)
            except forms.SubmissionInvalid as exc:
                errors = exc.errors
        if errors:
            typed = {f.name: data.get(f.name) for f in form.fields}
            return page(request, "form.html", 422, user=user, layout=compiled.form_layouts[name], values=typed, errors=errors,
                        options=allowed, record=None, submission_id=submission_id, action=f"/portal/forms/{name}")
        if client is not None:
            await start_enqueued(client, engine, compiled, task_queue, result.starts, announce=webhooks)
            if "submission.created" in webhooks:
                await announce_submission(client, task_queue, form, result, values, user)
        request.session["flash"] = "Thank you: we have your request."
        return RedirectResponse("/portal", status_code=303)

    # -- the directory ------------------------------------------------------------------
    def directory_query(request: Request, entity: str) -> tuple[dict, dict]:
        """Filters and sort from the query string, as the directory form sends them."""
        q, field, value = (request.query_params.get(k, "").strip() for k in ("q", "field", "value"))
        own = re.sub(r"[^a-z0-9]+", "_", request.query_params.get("own", "").strip().lower()).strip("_")
        if own and not field:
            field = f"record_fields.{own}"
        filters: dict[str, Any] = {}
        if q:
            filters["title"] = {"contains": q}
        if field and value:
            f = model.entities[entity].field(field) or next((x for x in model.entities[entity].all_fields() if x.name == field), None)
            textual = f is not None and f.type in ("string", "text", "email", "phone", "url")
            filters[field] = {"contains": value} if textual or f is None else value
        if own:
            filters.setdefault(f"record_fields.{own}", {"contains": value} if value else {"empty": False})
        sort = request.query_params.get("sort") or "title"
        return filters, {"q": q, "field": field if not field.startswith("record_fields.") else "", "value": value, "sort": sort,
                         "own": own}

    def search(entity: str, filters: dict, sort: str, page: int, page_size: int = 50):
        with engine.connect() as conn:
            return records.search_records(conn, compiled, entity, filters, sort=sort, page=page, page_size=page_size)

    @app.get("/directory/{entity}", response_class=HTMLResponse)
    async def directory(request: Request, entity: str):
        user = need(request)
        if entity not in model.entities:
            raise HTTPException(404, "There is no such kind of record.")
        ent = model.entities[entity]
        filters, shown = directory_query(request, entity)
        error = None
        try:
            page_no = max(1, int(request.query_params.get("page", "1")))
            result = search(entity, filters, shown["sort"], page_no)
        except (records.BadQuery, ValueError) as exc:
            error, result = str(exc), records.Page([], 0, 1, 50)
        query = "&".join(f"{k}={v}" for k, v in shown.items() if v)
        sorts = [("title", "Name"), ("-created_at", "Newest first")] + [(f.name, f.label) for f in ent.fields[:8] if f.type not in ("multichoice", "text")]
        return page(request, "directory.html", user=user, entity=ent, page=result, columns=[f for f in ent.fields[:5] if f.type != "text"],
                    filterable=ent.all_fields(), error=error, query=query, **shown, sorts=sorts)

    @app.get("/lookup/{entity}")
    async def lookup(request: Request, entity: str) -> JSONResponse:
        """Search-as-you-type for reference fields: the first 20 records whose name contains what was typed."""
        need(request)
        if entity not in model.entities:
            raise HTTPException(404, "There is no such kind of record.")
        typed = request.query_params.get("q", "").strip()
        found = search(entity, {"title": {"contains": typed}} if typed else {}, "title", 1, page_size=20)
        return JSONResponse([{"id": r.id, "title": r.title} for r in found.items])

    @app.get("/directory/{entity}/export.csv")
    async def directory_csv(request: Request, entity: str):
        need(request, "export")
        if entity not in model.entities:
            raise HTTPException(404, "There is no such kind of record.")
        import csv
        import io

        ent = model.entities[entity]
        filters, shown = directory_query(request, entity)
        fields = list(ent.all_fields())
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", ent.label, *(f.label for f in fields)])
        page_no = 1
        while True:
            result = search(entity, filters, shown["sort"], page_no, page_size=500)
            for r in result.items:
                writer.writerow([r.id, r.title, *("; ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
                                                   for v in (r.data.get(f.name) for f in fields))])
            if page_no >= result.pages:
                break
            page_no += 1
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{ent.plural.lower().replace(" ", "-")}.csv"'})

    @app.post("/tasks/{task_id}/claim")
    async def task_claim(request: Request, task_id: int):
        user = need(request, "manage_own_tasks")
        data = await form_data(request)
        task = load_task(task_id)
        with engine.connect() as conn:
            groups = set(conn.execute(sa.select(group_members.c.group_name).where(group_members.c.user_id == user["id"])).scalars())
        if task["assignee_id"] is not None or task["group_name"] not in groups:
            raise HTTPException(403, "Only a waiting task of one of your groups can be claimed.")
        problem = await send(task, ProcessWorkflow.reassign, TaskAction(step=task["step_id"], user_id=user["id"], to_user=user["id"]),
                             str(data.get("request_id") or uuid.uuid4()))
        if problem:
            raise HTTPException(409, problem)
        request.session["flash"] = f"It's yours: {task['title']}"
        return RedirectResponse(f"/tasks/{task_id}", status_code=303)

    # -- projects -----------------------------------------------------------------------------
    @app.get("/projects/{project_id}", response_class=HTMLResponse)
    async def project_page(request: Request, project_id: int):
        user = current_user(request)
        if user is None:
            raise HTTPException(401)
        with engine.connect() as conn:
            project = conn.execute(sa.select(projects).where(projects.c.id == project_id)).mappings().first()
            if project is None:
                raise HTTPException(404, "There is no such project.")
            members = set(conn.execute(sa.select(project_members.c.user_id).where(project_members.c.project_id == project_id)).scalars())
            staff_with_access = allowed(model, user, "access") and allowed(model, user, "project_access")
            if not (staff_with_access or user["id"] == project["manager_id"] or (user["id"] in members and allowed(model, user, "project_access"))):
                raise HTTPException(403, "You are not on this project.")
            project_tasks = conn.execute(sa.select(tasks).where(tasks.c.project_id == project_id).order_by(tasks.c.created_at)).mappings().all()
            project_alerts = conn.execute(sa.select(alerts).where(alerts.c.project_id == project_id).order_by(alerts.c.raised_at.desc())).mappings().all()
            names = dict(conn.execute(sa.select(users.c.id, users.c.name)).all())
        return page(request, "project.html", user=user, project=project, manager=names.get(project["manager_id"], "nobody yet"),
                    can_add_member=project["manager_id"] == user["id"] or allowed(model, user, "admin"),
                    members=[names.get(m, m) for m in sorted(members)], tasks=[task_view(dict(t)) for t in project_tasks],
                    alerts=project_alerts, names=names)

    @app.post("/projects/{project_id}/members")
    async def project_add_member(request: Request, project_id: int):
        """The project manager (or staff with project access) brings someone onto the project team."""
        user = need(request, "project_access")
        data = await form_data(request)
        with engine.begin() as conn:
            project = conn.execute(sa.select(projects).where(projects.c.id == project_id)).mappings().first()
            if project is None:
                raise HTTPException(404, "There is no such project.")
            if project["manager_id"] != user["id"] and not allowed(model, user, "admin"):
                request.session["flash"] = "Only the project manager adds members; nobody was added."
                return RedirectResponse(f"/projects/{project_id}", status_code=303)
            username = str(data.get("username", "")).strip()
            member = conn.execute(sa.select(users.c.id).where(users.c.username == username, users.c.active)).scalar()
            if member is None:
                request.session["flash"] = f"There is no user '{username}'."
            elif not conn.execute(sa.select(project_members).where(project_members.c.project_id == project_id,
                                                                   project_members.c.user_id == member)).first():
                conn.execute(project_members.insert().values(project_id=project_id, user_id=member))
                request.session["flash"] = f"{username} is on the project."
        return RedirectResponse(f"/projects/{project_id}", status_code=303)

    # -- mail merge ----------------------------------------------------------------------------
    @app.post("/directory/{entity}/merge", response_class=HTMLResponse)
    async def mail_merge(request: Request, entity: str):
        user = need(request, "export")
        data = await form_data(request)
        if entity not in model.entities:
            raise HTTPException(404, "There is no such kind of record.")
        ent = model.entities[entity]
        template = str(data.get("template", ""))
        filters, shown = directory_query(request, entity)
        problems = expressions.check(Template(template, Loc("letter")), Scope({"record": frozenset(f.name for f in ent.all_fields()) |
                                                                                       {"id", "title"}, "today": None}, "letter"))
        if problems or not template.strip():
            return page(request, "merge.html", 422, user=user, entity=ent, letters=[], template=template,
                        error="; ".join(p.message for p in problems) or "Write the letter first.")
        letters = []
        result = search(entity, filters, shown["sort"], 1, page_size=500)
        for r in result.items:
            try:
                letters.append((r.title, expressions.render(template, {"record": r.context(ent), "today": dt.date.today()})))
            except Exception as exc:  # one record's missing value must not stop the rest
                letters.append((r.title, f"(not produced: {exc})"))
        return page(request, "merge.html", user=user, entity=ent, letters=letters, template=template, error=None)

    # -- the customer page ---------------------------------------------------------------
    @app.get("/records/{entity}/{record_id}", response_class=HTMLResponse)
    async def record_page(request: Request, entity: str, record_id: int):
        return record_view(request, entity, record_id)

    def record_view(request: Request, entity: str, record_id: int, status: int = 200, errors: dict | None = None,
                    typed: dict | None = None) -> HTMLResponse:
        user = need(request)
        if entity not in model.entities:
            raise HTTPException(404, "There is no such kind of record.")
        rec = record_of(entity, str(record_id))
        ent = model.entities[entity]
        with engine.connect() as conn:
            history = list_history(conn, entity, record_id)
            open_tasks = conn.execute(sa.select(tasks).where(tasks.c.entity == entity, tasks.c.record_id == record_id,
                                                            tasks.c.status.in_(("open", "awaiting_approval")))).mappings().all()
            record_projects = conn.execute(sa.select(projects).where(projects.c.entity == entity, projects.c.record_id == record_id)
                                           .order_by(projects.c.created_at.desc())).mappings().all()
        scopes = [("For every " + ent.label.lower(), [(f.label, rec.data[f.name]) for f in ent.fields if rec.data.get(f.name) not in (None, "", [])])]
        for g in ent.groups:
            shown = [(f.label, rec.data[f.name]) for f in g.fields if rec.data.get(f.name) not in (None, "", [])]
            if shown:
                scopes.append((g.label, shown))
        own = [(v.get("label") or k, v.get("value")) for k, v in rec.record_fields.items()]
        if own:
            scopes.append(("This " + ent.label.lower() + " only", own))
        links = []
        for link in ent.links:
            try:
                links.append((link.label, expressions.render(link.url.source, {"record": rec.context(ent)})))
            except Exception:  # a link whose fields are empty on this record is left out
                continue
        shown_forms = [f for f in model.forms.values() if f.entity == entity and f.contact]
        return page(request, "record.html", status, user=user, record=rec, entity=ent, scopes=scopes, forms=shown_forms, tasks=open_tasks,
                    projects=record_projects, links=links, errors=errors or {}, typed=typed or {},
                    can_add_field=ent.record_fields.allowed and allowed(model, user, "add_record_fields"),
                    can_delete=allowed(model, user, "delete_records"), field_types=ent.record_fields.types,
                    history=[{"when": due_text(h.occurred_at), "kind": h.kind, "summary": h.summary} for h in history])

    @app.post("/records/{entity}/{record_id}/fields", response_class=HTMLResponse)
    async def add_own_field(request: Request, entity: str, record_id: int):
        user = need(request, "add_record_fields")
        data = await form_data(request)
        if entity not in model.entities:
            raise HTTPException(404, "There is no such kind of record.")
        label = str(data.get("label", "")).strip()
        name = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
        ftype = str(data.get("type", "string"))
        errors: dict[str, str] = {}
        if not name:
            errors["label"] = "Give the field a name"
        else:
            name = name if name[0].isalpha() else "f_" + name
            try:
                raw = str(data.get("value", "")).strip()
                value = values.convert(raw, Field(name, ftype, Loc("web"), label)) if raw and ftype in values.CONVERTERS else raw
                with engine.begin() as conn:
                    records.add_record_field(conn, compiled, entity, record_id, name, ftype, label, value, user["id"])
            except (values.NotConvertible, KeyError) as exc:
                errors = {"value": f"{label} {exc}" if str(exc).startswith("must") else f"{label} is not a valid {ftype}"}
            except records.RecordInvalid as exc:
                errors = {"value" if k not in ("label", "type") else k: v for k, v in exc.errors.items()} or {"value": "not accepted"}
            except records.RecordNotFound:
                raise HTTPException(404, f"There is no {entity} with that number.")
        if errors:
            return record_view(request, entity, record_id, 422, errors, {k: data.get(k) for k in ("label", "type", "value")})
        request.session["flash"] = f"Added '{label}' to this {model.entities[entity].label.lower()}."
        return RedirectResponse(f"/records/{entity}/{record_id}", status_code=303)

    # -- deleting a record: a confirmation page, then the POST it sends ---------------------
    def delete_view(request: Request, user: dict, entity: str, record_id: int, status: int = 200, problem: str | None = None,
                    referrers: list[str] | None = None) -> HTMLResponse:
        rec = record_of(entity, str(record_id))
        if referrers is None:
            from runtime.referrers import referrers as find

            with engine.connect() as conn:
                referrers = find(conn, compiled, entity, record_id)
        return page(request, "record_delete.html", status, user=user, record=rec, entity=model.entities[entity], problem=problem,
                    referrers=referrers)

    @app.get("/records/{entity}/{record_id}/delete", response_class=HTMLResponse)
    async def record_delete_page(request: Request, entity: str, record_id: int):
        """Ask before deleting, and say up front what would stop it."""
        user = need(request, "delete_records")
        if entity not in model.entities:
            raise HTTPException(404, "There is no such kind of record.")
        return delete_view(request, user, entity, record_id)

    @app.post("/records/{entity}/{record_id}/delete", response_class=HTMLResponse)
    async def record_delete(request: Request, entity: str, record_id: int):
        user = need(request, "delete_records")
        data = await form_data(request)
        if entity not in model.entities:
            raise HTTPException(404, "There is no such kind of record.")
        ent = model.entities[entity]
        try:
            version = int(str(data.get("row_version", "")))
        except ValueError:
            raise HTTPException(400, "Open the record's delete page and confirm there.") from None
        try:
            with engine.begin() as conn:
                gone = records.delete_record(conn, compiled, entity, record_id, user["id"], expected_version=version)
        except records.RecordNotFound:
            raise HTTPException(404, f"There is no {entity} with that number (it may have been deleted already).") from None
        except records.Conflict:
            return delete_view(request, user, entity, record_id, 409, f"Someone changed this {ent.label.lower()} while you were "
                               "looking at it. Nothing was deleted; check the details again.")
        except records.DeletionRefused as exc:
            return delete_view(request, user, entity, record_id, 409, str(exc), exc.referrers)
        request.session["flash"] = f"Deleted {ent.label.lower()} '{gone.title}'. Its last details are kept in the audit log."
        return RedirectResponse(f"/directory/{entity}", status_code=303)

    # -- health --------------------------------------------------------------------------
    @app.get("/health")
    async def health() -> JSONResponse:
        """Whether the database and Temporal answer (no customer data)."""
        checks = {}
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError as exc:
            checks["database"] = f"unavailable: {exc.__class__.__name__}"
        if client is not None:
            try:
                await client.service_client.check_health()
                checks["temporal"] = "ok"
            except Exception as exc:  # any RPC failure means "not healthy", reported, not raised
                checks["temporal"] = f"unavailable: {exc.__class__.__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)

    return app
