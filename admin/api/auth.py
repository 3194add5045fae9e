"""Authentication before work: the bearer token is checked before the API reads a byte of the body."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ..access import allowed, token_user
from .common import api_compiled, required
from .problems import Problem, problem_response

PUBLIC = {"/api/openapi.json"}
Endpoint = Callable[..., Any]


def _no_token() -> Problem:
    return Problem(401, "Authentication required", "Send 'Authorization: Bearer <token>'.")


def _check_permission(model, user: dict, permission: str) -> None:
    """A 403 problem unless `user`'s roles grant `permission` (the one check of `permitted` and `gated`)."""
    if not allowed(model, user, permission):
        raise Problem(403, "Forbidden", f"This needs the '{permission}' permission.")


async def authenticate(app: ASGIApp, scope: Scope, receive: Receive, send: Send, authorization: bytes | None) -> None:
    """A request under /api, given its Authorization header: on to `app` with the token's user in the request's
    state, or answered 401 at once (its body unread). The token is looked up on every request, so a revoked one is
    refused at once. `admin.front.Front` calls this before anything else of the request is done."""
    if scope["path"] in PUBLIC:
        await app(scope, receive, send)
        return
    auth = authorization.decode("latin-1") if authorization else ""
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        problem = _no_token()
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
        raise _no_token()
    return user


async def permitted(request: Request, permission: str) -> dict:
    """The token's user if their roles grant `permission`, else a 403 problem."""
    user = await api_caller(request)
    _check_permission((await api_compiled(request)).model, user, permission)
    return user


def api_require(permission: str):
    """A dependency giving the token's user if their roles grant `permission`, else a 403 problem."""

    # the caller and the configuration read here rather than as dependencies of their own: FastAPI solves each
    # dependency on every request, at a cost like that of the check itself
    async def check(request: Request) -> dict:
        return await permitted(request, permission)

    check.__name__ = f"api_require_{permission}"
    return Depends(check)


def gated(permission: str, *, key: bool = False) -> Callable[[Endpoint], Endpoint]:
    """Marks an operation whose caller `routing.ApiRoute` checks before FastAPI reads its body or solves a parameter:
    a 403 problem unless their roles grant `permission`; with `key`, then a 400 one without a good Idempotency-Key
    (`common.required_key`'s), which the operation finds in `request.state.idempotency_key`. The statuses and their
    order are those of `api_require` and a `required_key` dependency, without two dependencies for FastAPI to solve
    on every request: for the busiest operation (a submission), where that cost is like the checks' own."""

    def gate(scope: Scope) -> None:
        state = scope.setdefault("state", {})
        user = state.get("api_user")
        if user is None:
            raise _no_token()
        _check_permission(scope["app"].state.compiled.model, user, permission)
        if key:
            sent = next((v for k, v in scope["headers"] if k == b"idempotency-key"), None)
            state["idempotency_key"] = required(sent.decode("latin-1") if sent is not None else None)

    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.api_gate = gate  # type: ignore[attr-defined]
        return endpoint

    return mark


def ApiPermitted(permission: str):
    """`Annotated[dict, api_require(permission)]`."""
    return Annotated[dict, api_require(permission)]


ApiUser = Annotated[dict, api_require("access")]
