"""Projects: the list, a project's page and its team, and starting a process (with its project) from a record's page.

Who may open a project: its manager, its members, and staff whose roles grant `project_access` (admins too).
Who may change its team: its manager, and whoever holds `project_access` and may open it (admins too).
The team rules themselves (who may join, the manager stays) are `runtime.projects`.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from engine.compiler import CompiledModel
from engine.labels import task_title
from engine.model import Field, Process
from forms import submit as forms
from forms import widgets
from runtime import outbox, records
from runtime import projects as teams
from runtime.schema import alerts, tasks
from runtime.triggers import manual_starts

from ...access import allowed, may_change_team, may_open_project
from ...deps import (
    CompiledDep,
    Conn,
    CsrfForm,
    CurrentUser,
    EngineDep,
    Permitted,
    ServicesDep,
    Staff,
    refusal,
)
from ...processes import started
from ..finders import entity_or_404, record_or_404
from ..pages import STATUS_TEXT, flash, redirect, render
from ..pagewords import said
from ..recordforms import PICKER_LIMIT, staff_options

router = APIRouter(include_in_schema=False)
PER_PAGE = 25
LOOKUP_LIMIT = 20  # people the picker's search offers as you type
START_WAIT = 5.0  # seconds a start waits for its process to open the project, before landing on the record instead
# the order of a project page's task tables; the statuses not named here go last, under their own label
STATUS_ORDER = ("open", "awaiting_approval", "done", "skipped", "cancelled", "rejected")


# -- who may do what (the rules: admin/access.py; here, what a person is told) ------------------------


def _number(raw: str) -> int:
    """A number from a URL or a form as typed; -1 (which names nothing) for anything else."""
    try:
        return int(raw)
    except ValueError:
        return -1


def sees_all(compiled: CompiledModel, user: dict) -> bool:
    """Staff whose roles grant `project_access` (and admins) see every project; everyone else sees their own."""
    model = compiled.model
    return allowed(model, user, "access") and allowed(model, user, "project_access")


def project_for(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, project_id: str) -> tuple[dict, bool]:
    """(the project a URL names, whether `user` is a member), if they may open it; else the error they should see."""
    project = teams.get(conn, _number(project_id))
    if project is None:
        raise HTTPException(404, said(request, "There is no such project. It may have been removed, or the link is wrong."))
    member = teams.is_member(conn, project["id"], user["id"])
    model = compiled.model
    if may_open_project(model, user, project, member):
        return project, member
    if not allowed(model, user, "project_access") and not allowed(model, user, "access"):
        raise HTTPException(403, refusal("project_access"))
    if not allowed(model, user, "access") and user.get("company_id") != teams.company_of(conn, compiled, project):
        raise HTTPException(404, said(request, "There is no such project. It may have been removed, or the link is wrong."))  # another customer's
    manager = widgets.Names(conn, compiled).user(project["manager_id"]) if project["manager_id"] else None
    raise HTTPException(403, said(request, "You are not on this project's team. Ask its project manager, %(manager)s, to add you.", manager=manager)
                        if manager else said(request, "You are not on this project's team. Ask someone who looks after projects to add you."))


def managing(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, project_id: str) -> dict:
    """The project, if `user` may change its team; a worded 403 otherwise."""
    project, member = project_for(request, conn, compiled, user, project_id)
    if not may_change_team(compiled.model, user, project, member):
        manager = widgets.Names(conn, compiled).user(project["manager_id"]) if project["manager_id"] else None
        raise HTTPException(403, said(request, "Only the project manager, %(manager)s, or someone who looks after projects adds people to the "
                                      "team or takes them off it.", manager=manager) if manager else
                            said(request, "Only the project manager or someone who looks after projects adds people to the team or takes them off it."))
    return project


# -- the list ----------------------------------------------------------------------------------


def _page_number(raw: str) -> int:
    try:
        return max(1, min(int(raw), 10**6))
    except ValueError:
        return 1


@router.get("/projects", response_class=HTMLResponse)
def project_list(request: Request, user: Staff, conn: Conn, compiled: CompiledDep, show: str = "mine", status: str = "", page: str = "1"):
    """Projects I run or am on (everyone's, for those who see all), newest first, with their open and late tasks."""
    everyone = show == "all" and sees_all(compiled, user)
    status = status if status in teams.STATUSES else ""
    found = teams.listing(conn, user_id=None if everyone else user["id"], status=status or None, page=_page_number(page), per=PER_PAGE)
    names = widgets.Names(conn, compiled, widgets.zone_of(compiled.model, user))
    rows = [{**r, "manager": names.user(r["manager_id"]) if r["manager_id"] else said(request, "Nobody yet"),
             "status_text": said(request, r["status"].capitalize()),
             "opened": widgets.when_text(r["created_at"], names.zone, locale=names.compiled.model.locale), **_customer(compiled, names, r)} for r in found.rows]
    return render(request, "projects/list.html", user=user, rows=rows, found=found, everyone=everyone, chosen_status=status,
                  may_see_all=sees_all(compiled, user), statuses=teams.STATUSES)


def _customer(compiled: CompiledModel, names: widgets.Names, project: dict) -> dict:
    """What a project is for, as a label and a link: 'Company: Acme Health Ltd'."""
    entity, record_id = project["entity"], project["record_id"]
    if not entity or not record_id or entity not in compiled.model.entities:
        return {"customer": None, "customer_url": None}
    return {"customer": f"{compiled.model.entities[entity].label}: {names.title(entity, record_id)}",
            "customer_url": f"/records/{entity}/{record_id}"}


# -- a project's page --------------------------------------------------------------------------


def project_view(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, project: dict, *, status: int = 200,
                 team_error: str | None = None, picked: str = "") -> HTMLResponse:
    """The project's page: its team, its tasks by status (late ones first and marked), its alerts."""
    model = compiled.model
    names = widgets.Names(conn, compiled, widgets.zone_of(model, user))
    now = dt.datetime.now(dt.UTC)
    rows = [dict(r) for r in conn.execute(sa.select(tasks).where(tasks.c.project_id == project["id"])
                                          .order_by(tasks.c.due_at.is_(None), tasks.c.due_at, tasks.c.id)).mappings()]
    by_status: dict[str, list[dict]] = {}
    for t in rows:
        by_status.setdefault(t["status"], []).append(_task(t, model, names, now, request))
    for shown in by_status.values():
        shown.sort(key=lambda t: not t["late"])  # late first, each part soonest due first
    groups = [(said(request, STATUS_TEXT.get(s, s.replace("_", " ").capitalize())), s, by_status[s])
              for s in [*STATUS_ORDER, *sorted(set(by_status) - set(STATUS_ORDER))] if s in by_status]
    raised = [dict(a) for a in conn.execute(
        sa.select(alerts, tasks.c.title.label("task_title")).join(tasks, tasks.c.id == alerts.c.task_id, isouter=True)
        .where(alerts.c.project_id == project["id"]).order_by(alerts.c.raised_at.desc()).limit(100)).mappings()]
    team = teams.member_ids(conn, project["id"])
    can_manage = may_change_team(model, user, project, user["id"] in team)
    members = [{"id": m, "name": names.user(m)} for m in team]
    members.sort(key=lambda m: m["name"].lower())
    return render(request, "projects/project.html", user=user, status=status, project=project,
                  status_label=project["status"].capitalize(), manager=names.user(project["manager_id"]) if project["manager_id"] else None,
                  members=members, groups=groups, open_count=sum(1 for t in rows if t["status"] in teams.OPEN),
                  late_count=sum(1 for g in groups for t in g[2] if t["late"]), opened=widgets.when_text(project["created_at"], names.zone, locale=names.compiled.model.locale),
                  alerts=[{**a, "raised_text": widgets.when_text(a["raised_at"], names.zone, locale=names.compiled.model.locale),
                           "acknowledged_text": widgets.when_text(a["acknowledged_at"], names.zone, locale=names.compiled.model.locale)} for a in raised],
                  can_manage=can_manage, team_error=team_error, picked=picked,
                  candidates=teams.candidates(conn, compiled, project, limit=PICKER_LIMIT) if can_manage else [],
                  staff=allowed(model, user, "access"), **_customer(compiled, names, project))


def _task(t: dict, model, names: widgets.Names, now: dt.datetime, request: Request) -> dict:
    due = t["due_at"].replace(tzinfo=dt.UTC) if t["due_at"] is not None and t["due_at"].tzinfo is None else t["due_at"]
    group = model.groups.get(t["group_name"]) if t["group_name"] else None
    who = names.user(t["assignee_id"]) if t["assignee_id"] else (
        said(request, "The %(group)s queue", group=group.label if group else t['group_name'].replace('_', ' ')) if t["group_name"]
        else said(request, "Nobody yet"))
    return {"id": t["id"], "title": task_title(t, model.locale, model), "who": who, "due_text": widgets.when_text(due, names.zone, locale=names.compiled.model.locale) if due else "",
            "late": due is not None and t["status"] in teams.OPEN and due < now,
            "done_text": widgets.when_text(t["completed_at"], names.zone, locale=names.compiled.model.locale) if t["completed_at"] else ""}


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(request: Request, project_id: str, user: CurrentUser, conn: Conn, compiled: CompiledDep):
    project, _ = project_for(request, conn, compiled, user, project_id)
    return project_view(request, conn, compiled, user, project)


# -- the team ----------------------------------------------------------------------------------


@router.get("/projects/{project_id}/people")
def people(request: Request, project_id: str, user: CurrentUser, conn: Conn, compiled: CompiledDep,
           q: str = "") -> JSONResponse:
    """The member picker's search as you type: who may join, by name or user name."""
    project = managing(request, conn, compiled, user, project_id)
    found = teams.candidates(conn, compiled, project, q[:200], limit=LOOKUP_LIMIT)
    return JSONResponse([{"id": p["id"], "title": p["name"]} for p in found])


@router.post("/projects/{project_id}/members", response_class=HTMLResponse)
def add_member(request: Request, project_id: str, user: CurrentUser, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """The project manager (or someone who looks after projects) brings someone onto the team."""
    picked = str(data.get("user_id", "")).strip()
    with engine.begin() as conn:
        project = managing(request, conn, compiled, user, project_id)
        try:
            name = teams.add_member(conn, compiled, project, _number(picked), user["id"]) if picked else None
        except teams.TeamRefused as exc:
            problem = str(exc)
        else:
            problem = None if name else said(request, "Choose someone to add: type their name, then pick them from the list.")
    if problem:
        with engine.connect() as conn:
            return project_view(request, conn, compiled, user, project, status=422, team_error=problem, picked=picked)
    flash(request, said(request, "%(name)s is on the team of %(project)s.", name=name, project=project["title"]))
    return redirect(f"/projects/{project['id']}")


def _member_or_404(request: Request, conn: sa.Connection, compiled: CompiledModel, project: dict, user_id: int) -> str:
    """The name of the team member (or the manager) a URL names."""
    if not teams.is_member(conn, project["id"], user_id) and (user_id != project["manager_id"] or user_id is None):
        raise HTTPException(404, said(request, "That person is not on this project's team (someone may have taken them off already)."))
    return widgets.Names(conn, compiled).user(user_id)


@router.get("/projects/{project_id}/members/{member_id}/remove", response_class=HTMLResponse)
def remove_page(request: Request, project_id: str, member_id: str, user: CurrentUser, conn: Conn, compiled: CompiledDep):
    """Ask before taking someone off the team (a page, so it works without scripts)."""
    project = managing(request, conn, compiled, user, project_id)
    member = _number(member_id)
    name = _member_or_404(request, conn, compiled, project, member)
    if member == project["manager_id"]:
        return project_view(request, conn, compiled, user, project, status=409,
                            team_error=said(request, "%(name)s is the project manager and stays on the team.", name=name))
    return render(request, "projects/remove.html", user=user, project=project, member_id=member, member_name=name)


@router.post("/projects/{project_id}/members/{member_id}/remove", response_class=HTMLResponse)
def remove_member(request: Request, project_id: str, member_id: str, user: CurrentUser, data: CsrfForm, engine: EngineDep,
                  compiled: CompiledDep):
    with engine.begin() as conn:
        project = managing(request, conn, compiled, user, project_id)
        try:
            name = teams.remove_member(conn, project, _number(member_id), user["id"])
        except teams.TeamRefused as exc:
            problem = str(exc)
        else:
            problem = None
    if problem:
        with engine.connect() as conn:
            return project_view(request, conn, compiled, user, project, status=409, team_error=problem)
    flash(request, said(request, "%(name)s is no longer on the team of %(project)s.", name=name, project=project["title"]))
    return redirect(f"/projects/{project['id']}")


# -- starting a process by hand from a record's page --------------------------------------------


def startable_or_404(request: Request, compiled: CompiledModel, entity: str, name: str) -> Process:
    """The process `name`, if it may be started by hand on records of `entity`."""
    if name not in manual_starts(compiled, entity):
        raise HTTPException(404, said(request, "There is no process called '%(name)s' to start on this page.", name=name[:80]))
    return compiled.model.processes[name]


def input_spec(f: Field) -> dict:
    """A process input as `fields.html` draws it (the shape of a form layout's field)."""
    return {"name": f.name, "label": f.label, "type": f.type, "widget": widgets.get(f.type).input, "required": f.required,
            "help": f.help, "placeholder": f.placeholder, "entity": f.entity, "currency": f.currency, "default": f.default}


def input_options(conn: sa.Connection, compiled: CompiledModel, proc: Process) -> dict[str, list]:
    """What each select of the input form offers: choice labels, records, active staff, groups."""
    return {f.name: staff_options(conn, compiled.model) if f.type == "user" else forms.choices_for(compiled, conn, f, [])
            for f in proc.inputs}


def start_view(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, rec: records.Record, proc: Process, *,
               values: dict | None = None, errors: dict | None = None, request_id: str | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "projects/start.html", user=user, status=status, record=rec, entity=compiled.model.entities[rec.entity],
                  process=proc, inputs=[input_spec(f) for f in proc.inputs], options=input_options(conn, compiled, proc),
                  values=values or {}, errors=errors or {}, request_id=request_id or str(uuid.uuid4()),
                  action=f"/records/{rec.entity}/{rec.id}/start/{proc.name}")


@router.get("/records/{entity}/{record_id}/start/{process}", response_class=HTMLResponse)
def start_page(request: Request, entity: str, record_id: str, process: str, user: Permitted("generate_tasks"), conn: Conn,
               compiled: CompiledDep):
    """The process's input form (or, for one without inputs, what it will do and a button)."""
    entity_or_404(compiled, entity)
    proc = startable_or_404(request, compiled, entity, process)
    return start_view(request, conn, compiled, user, record_or_404(conn, compiled, entity, record_id), proc)


def _checked(conn: sa.Connection, compiled: CompiledModel, proc: Process, data, user: dict) -> tuple[dict, dict]:
    """The inputs as typed values, and a message per input that is wrong (a record or a person that is not there too)."""
    values, errors = forms.parse_fields(proc.inputs, data, widgets.zone_of(compiled.model, user))
    for f in proc.inputs:
        value = values.get(f.name)
        if value is None or f.name in errors:
            continue
        if f.type == "reference":
            try:
                records.get_record(conn, compiled, f.entity, value)
            except (records.RecordNotFound, records.UnknownEntity):
                errors[f.name] = forms.field_message(f, "not found")
        elif f.type == "user" and value not in {i for i, _ in staff_options(conn, compiled.model)}:
            errors[f.name] = forms.field_message(f, "not found")
    return values, errors


@router.post("/records/{entity}/{record_id}/start/{process}", response_class=HTMLResponse)
async def start(request: Request, entity: str, record_id: str, process: str, user: Permitted("generate_tasks"), data: CsrfForm,
                engine: EngineDep, compiled: CompiledDep, services: ServicesDep):
    """Start the process on the record through the outbox, once per request id; land on its project's page once it is open."""
    entity_or_404(compiled, entity)
    proc = startable_or_404(request, compiled, entity, process)
    request_id = str(data.get("request_id") or uuid.uuid4())[:100]

    def enqueue():
        with engine.connect() as conn:
            rec = record_or_404(conn, compiled, entity, record_id)
            values, errors = _checked(conn, compiled, proc, data, user)
            if errors:
                typed = {f.name: (data.getlist(f.name) if f.type == "multichoice" else data.get(f.name)) for f in proc.inputs}
                return rec, None, start_view(request, conn, compiled, user, rec, proc, values=typed, errors=errors, request_id=request_id,
                                             status=422)
        with engine.begin() as conn:
            wid = outbox.enqueue(conn, proc.name, f"{entity}-{rec.id}-manual-{request_id}", entity=entity, record_id=rec.id,
                                 inputs=forms.jsonable(values), started_by=user["id"])
        return rec, wid, None

    rec, wid, refused = await run_in_threadpool(enqueue)
    if refused is not None:
        return refused
    await started(services, compiled, [wid])
    project_id = await _project_opened(engine, wid) if proc.project is not None and services.client is not None else None
    if project_id:
        flash(request, said(request, "Started %(process)s for %(record)s. This is its project: add the people who work on it.",
                            process=proc.label, record=rec.title))
        return redirect(f"/projects/{project_id}")
    later = "Started %(process)s for %(record)s. Its project is listed on this page as soon as it is open." if proc.project is not None \
        else "Started %(process)s for %(record)s. Its tasks are listed here as they are handed out."
    flash(request, said(request, later, process=proc.label, record=rec.title))
    return redirect(f"/records/{entity}/{rec.id}")


async def _project_opened(engine: sa.Engine, workflow_id: str) -> int | None:
    """The project the new process opened, waiting up to START_WAIT for its first step (None if it has not yet)."""
    def look() -> int | None:
        with engine.connect() as conn:
            return teams.opened_by(conn, workflow_id)

    deadline = asyncio.get_running_loop().time() + START_WAIT
    while True:
        found = await run_in_threadpool(look)
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)
