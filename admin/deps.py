"""The web app's dependencies: every route reads its user, connection and model through these aliases.

The compiled model lives on `app.state.compiled`, so the admin console can switch the active configuration
with one assignment; nothing captures it at start.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, NamedTuple

import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from temporalio.client import Client

from engine.compiler import CompiledModel
from engine.model import Model
from runtime.mailmerge import MergeProcess
from runtime.taskactions import TaskActions

from . import sessions
from .access import allowed
from .throttle import LoginThrottle
from .web import drafting
from .web.language import compiled_for


@dataclass
class Services:
    """What the app was started with (the compiled model is not here: it is swappable on app.state)."""

    engine: sa.Engine
    client: Client | None
    templates: Jinja2Templates
    task_queue: str = "tailor"
    webhooks: tuple[str, ...] = ()
    temporal_ui: str | None = None
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    merges: MergeProcess = field(default_factory=MergeProcess)


# Dependencies that only read what the request already holds are `async def`: FastAPI runs a plain `def` one in its
# thread pool, a hop that costs more CPU than the dependency itself. Those that touch the database stay `def`.
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_engine(services: ServicesDep) -> sa.Engine:
    return services.engine


EngineDep = Annotated[sa.Engine, Depends(get_engine)]


def get_conn(engine: EngineDep) -> Iterator[sa.Connection]:
    """A read connection for the request (writes open their own transaction with `engine.begin()`)."""
    with engine.connect() as conn:
        yield conn


Conn = Annotated[sa.Connection, Depends(get_conn)]


# -- the logged-in user (web pages) -----------------------------------------------------
def session_user(request: Request, engine: EngineDep) -> dict | None:
    """The user of the request's session if it is still live on the server, else None."""
    session_id = request.session.get("sid")
    if not session_id:
        return None
    with engine.connect() as conn:
        return sessions.session_user(conn, session_id)


MaybeUser = Annotated[dict | None, Depends(session_user)]


def get_compiled(request: Request, user: MaybeUser) -> CompiledModel:
    """The active configuration (on `app.state.compiled`), its labels in the language of the request's reader."""
    return compiled_for(request, user)


CompiledDep = Annotated[CompiledModel, Depends(get_compiled)]


class MustChangePassword(Exception):
    """The user logs in with a password an administrator set: they choose their own before anything else."""


# what someone who must change their password may still reach: the profile (to change it) and the logout
UNTIL_CHANGED = ("/profile", "/logout")


async def current_user(request: Request, user: MaybeUser) -> dict:
    """The logged-in user; anyone else is sent to the login page (see the 401 handler), and someone whose password
    was set or reset by an administrator to the profile page until they choose their own."""
    if user is None:
        raise HTTPException(401)
    if user.get("must_change_password") and not request.url.path.startswith(UNTIL_CHANGED):
        raise MustChangePassword()
    return user


CurrentUser = Annotated[dict, Depends(current_user)]


# -- the console's draft, for the structured editors -------------------------------------
class DraftHasProblems(Exception):
    """The draft does not compile, so the structured editors cannot show it: its problems are fixed in the YAML editor
    first (the handler in `app.py` sends the admin there, with a word how many there are)."""

    def __init__(self, problems: int):
        super().__init__(f"the draft has {problems} problem(s)")
        self.problems = problems


class Editable(NamedTuple):
    """The draft and its model, which the structured editors show and change."""

    draft: drafting.Draft
    model: Model


def editable_draft(request: Request, conn: sa.Connection, compiled: CompiledModel) -> Editable:
    """The draft (as `drafting.open_draft` reads it on `conn`) if it compiles, else `DraftHasProblems`. An editor's save
    calls this in its own transaction; its page reads it through `EditableDraft`."""
    draft = drafting.open_draft(request, conn, compiled)
    if draft.model is None:
        raise DraftHasProblems(len(draft.problems))
    return Editable(draft, draft.model)


def get_editable_draft(request: Request, conn: Conn, compiled: CompiledDep) -> Editable:
    return editable_draft(request, conn, compiled)


# Declare it after the route's user: FastAPI resolves a route's dependencies in order, and someone who may not use the
# console is refused (403) before anything of the draft is read or told.
EditableDraft = Annotated[Editable, Depends(get_editable_draft)]


# What each permission lets someone do, for the refusal a person reads (the names are the definitions' own).
PERMISSION_TEXT = {
    "access": "use the staff workspace", "generate_tasks": "fill in forms that start work", "approve_tasks": "approve tasks",
    "set_alerts": "manage alerts", "manage_own_tasks": "work on tasks", "monitor_tasks": "look after other people's tasks",
    "project_access": "open projects", "edit_records": "add or change records", "delete_records": "delete records",
    "add_record_fields": "add fields to a single record", "export": "export records or write mail merges",
    "admin": "administer Tailor", "portal": "use the customer portal",
}


def refusal(permission: str) -> str:
    """The sentence a person reads when their roles lack `permission`."""
    what = PERMISSION_TEXT.get(permission, permission.replace("_", " "))
    return f"Your role does not let you {what}. Ask an administrator if you need to."


def require(permission: str):
    """A dependency giving the current user if their roles grant `permission` (admin grants all), else 403."""

    async def check(user: CurrentUser, compiled: CompiledDep) -> dict:
        if not allowed(compiled.model, user, permission):
            raise HTTPException(403, refusal(permission))
        return user

    check.__name__ = f"require_{permission}"
    return Depends(check)


Staff = Annotated[dict, require("access")]


async def report_user(user: CurrentUser, compiled: CompiledDep) -> dict:
    """Staff, for reports and dashboards; anyone else (a customer's people) is told there is nothing there (404),
    as if reports did not exist."""
    if not allowed(compiled.model, user, "access"):
        raise HTTPException(404)
    return user


Reporter = Annotated[dict, Depends(report_user)]


def Permitted(permission: str):
    """`Annotated[dict, require(permission)]`: the current user, who has `permission`."""
    return Annotated[dict, require(permission)]


# -- forms: every POST carries the session's CSRF token ---------------------------------------
def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


async def csrf_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's."""
    data = await request.form()
    expected = request.session.get("csrf")
    if not expected or not secrets.compare_digest(str(data.get("csrf_token", "")), expected):
        raise HTTPException(403, "This form has expired or did not come from Tailor. Go back, reload the page and try again.")
    return data


CsrfForm = Annotated[FormData, Depends(csrf_form)]


def task_actions(services: Services, compiled: CompiledModel) -> TaskActions:
    """The staff-action service (complete, decide, reassign, comment) over `compiled`."""
    return TaskActions(services.engine, compiled, services.client, services.task_queue, announce=services.webhooks)


async def get_task_actions(services: ServicesDep, compiled: CompiledDep) -> TaskActions:
    """The staff-action service over the active model, in the reader's language."""
    return task_actions(services, compiled)


TaskActionsDep = Annotated[TaskActions, Depends(get_task_actions)]
