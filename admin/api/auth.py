"""Authentication before work: the bearer token is checked before the API reads a byte of the body."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ..access import allowed, token_user
from .common import api_compiled
from .problems import Problem, problem_response
from .routing import is_api_path

PUBLIC = {"/api/openapi.json"}


class ApiAuthentication:
    """ASGI middleware: a request under /api without a valid token is answered 401 at once (its body unread)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not is_api_path(path) or path in PUBLIC:
            await self.app(scope, receive, send)
            return
        auth = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
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
                await self.app(scope, receive, send)
                return
            problem = Problem(401, "Invalid token", "The token is unknown, revoked, or its user is deactivated.")
        await problem_response(problem, {"WWW-Authenticate": "Bearer"})(scope, receive, send)


async def api_caller(request: Request) -> dict:
    """The user the bearer token named (set by ApiAuthentication)."""
    user = getattr(request.state, "api_user", None)
    if user is None:
        raise Problem(401, "Authentication required", "Send 'Authorization: Bearer <token>'.")
    return user


def api_require(permission: str):
    """A dependency giving the token's user if their roles grant `permission`, else a 403 problem."""

    # the caller and the configuration read here rather than as dependencies of their own: FastAPI solves each
    # dependency on every request, at a cost like that of the check itself
    async def check(request: Request) -> dict:
        user = await api_caller(request)
        compiled = await api_compiled(request)
        if not allowed(compiled.model, user, permission):
            raise Problem(403, "Forbidden", f"This needs the '{permission}' permission.")
        return user

    check.__name__ = f"api_require_{permission}"
    return Depends(check)


def ApiPermitted(permission: str):
    """`Annotated[dict, api_require(permission)]`."""
    return Annotated[dict, api_require(permission)]


ApiUser = Annotated[dict, api_require("access")]
