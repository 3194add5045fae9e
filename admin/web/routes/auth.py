"""Logging in and out: argon2 passwords, throttled failures, server-side sessions."""
from __future__ import annotations

import secrets

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from runtime.schema import users

from ... import sessions
from ...access import permissions_of
from ...deps import CompiledDep, CsrfForm, EngineDep, ServicesDep, csrf_token
from ..pages import redirect, render

router = APIRouter(tags=["pages"], include_in_schema=False)

# Verified when the user name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = PasswordHasher().hash(secrets.token_urlsafe(16))


def same_site(target: str | None) -> str:
    """`target` if it is a path on this site, else the home page (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = ""):
    return render(request, "auth/login.html", username="", error=None, next=same_site(next) if next else "")


def _verify(services, engine, username: str, password: str) -> int | None:
    """The id of the active user these credentials name, or None (always one argon2 verification)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(users.c.id, users.c.password_hash).where(users.c.username == username, users.c.active)).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        ok = services.hasher.verify(stored, password) and row is not None and bool(row.password_hash)
    except (VerifyMismatchError, InvalidHashError):
        ok = False
    return row.id if ok else None


@router.post("/login")
async def login(request: Request, data: CsrfForm, services: ServicesDep, engine: EngineDep, compiled: CompiledDep):
    username, password = str(data.get("username", "")).strip(), str(data.get("password", ""))
    next_page = same_site(str(data.get("next", "")) or None)
    if services.throttle.blocked(username):
        return render(request, "auth/login.html", status=429, username=username, next=next_page,
                      error="Too many failed attempts. Wait a few minutes and try again.")
    user_id = await run_in_threadpool(_verify, services, engine, username, password)
    if user_id is None:
        services.throttle.failed(username)
        return render(request, "auth/login.html", status=401, username=username, next=next_page,
                      error="That user name and password do not match.")
    services.throttle.succeeded(username)

    def start() -> list[str]:
        with engine.begin() as conn:
            request.session.clear()
            request.session["sid"] = sessions.open_session(conn, user_id)
            return conn.execute(sa.select(users.c.roles).where(users.c.id == user_id)).scalar() or []

    roles = await run_in_threadpool(start)
    csrf_token(request)
    perms = permissions_of(compiled.model, {"roles": roles})
    outside = "access" not in perms and "admin" not in perms  # customers' people: the portal is their home
    return redirect("/portal" if outside else next_page)


@router.post("/logout")
def logout(request: Request, data: CsrfForm, engine: EngineDep):
    session_id = request.session.get("sid")
    if session_id:
        with engine.begin() as conn:
            sessions.revoke(conn, session_id)
    request.session.clear()
    return redirect("/login")
