"""Authentication before work: the bearer token is checked before the API reads a byte of the body."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ..access import allowed, token_user
from .common import KeyHeader, api_compiled, required_key
from .problems import Problem, problem_response

PUBLIC = {"/api/openapi.json"}


async def authenticate(app: ASGIApp, scope: Scope, receive: Receive, send: Send, authorization: bytes | None) -> None:
    """A request under /api, given its Authorization header: on to `app` with the token's user in the request's
    state, or answered 401 at once (its body unread). The token is looked up on every request, so a revoked one is
    refused at once. `admin.front.Front` calls this before anything else of the request is done."""
    if scope["path"] in PUBLIC:
        await app(scope, receive, send)
        return
    auth = authorization.decode("latin-1") if authorization else ""
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        problem = Problem(401, "Authentication required", "Send 'Authorization: Bearer <token>'.")
    else:
        engine = scope["app"].state.services.engine

        def lookup():
            with engine.connect() as conn:
                return token_user(conn, auth[7:].strip())

        user = await run_in_threadpool(lookup)
        if user is not None:
            scope.setdefault("state", {})["api_user"] = user
            await app(scope, receive, send)
            return
        problem = Problem(401, "Invalid token", "The token is unknown, revoked, or its user is deactivated.")
    await problem_response(problem, {"WWW-Authenticate": "Bearer"})(scope, receive, send)


async def api_caller(request: Request) -> dict:
    """The user the bearer token named (set by `authenticate`)."""
    user = getattr(request.state, "api_user", None)
    if user is None:
        raise Problem(401, "Authentication required", "Send 'Authorization: Bearer <token>'.")
    return user


async def permitted(request: Request, permission: str) -> dict:
    """The token's user if their roles grant `permission`, else a 403 problem."""
    user = await api_caller(request)
    compiled = await api_compiled(request)
    if not allowed(compiled.model, user, permission):
        raise Problem(403, "Forbidden", f"This needs the '{permission}' permission.")
    return user


def api_require(permission: str):
    """A dependency giving the token's user if their roles grant `permission`, else a 403 problem."""

    # the caller and the configuration read here rather than as dependencies of their own: FastAPI solves each
    # dependency on every request, at a cost like that of the check itself
    async def check(request: Request) -> dict:
        return await permitted(request, permission)

    check.__name__ = f"api_require_{permission}"
    return Depends(check)


def api_require_keyed(permission: str):
    """A dependency giving (the token's user, the request's Idempotency-Key): a 403 problem unless their roles grant
    `permission`, then a 400 one without a good key (`common.required_key`), as `api_require` and a dependency on
    `required_key` would answer, but one dependency for FastAPI to solve per request instead of two."""

    async def check(request: Request, idempotency_key: KeyHeader = None) -> tuple[dict, str]:
        user = await permitted(request, permission)
        return user, await required_key(idempotency_key)

    check.__name__ = f"api_require_{permission}_keyed"
    return Depends(check)


def ApiPermitted(permission: str):
    """`Annotated[dict, api_require(permission)]`."""
    return Annotated[dict, api_require(permission)]


ApiUser = Annotated[dict, api_require("access")]
