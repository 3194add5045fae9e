"""The API's routes: made whole where they are declared (under /api, answering 401 without a token), and a 405
that names every method the path takes, not only those of the route that matched first."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from .problems import problems

PREFIX = "/api"


def is_api_path(path: str) -> bool:
    """Whether a request's path is the API's (under /api, where a bearer token authenticates, never a session)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def allowed_methods(scope: Scope) -> set[str]:
    """Every method some route of the app takes at the request's path."""
    root = scope.get("root_path", "")
    path = scope["path"][len(root):] if root and scope["path"].startswith(root) else scope["path"]
    allowed: set[str] = set()
    for route in iter_route_contexts(scope["router"].routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            allowed |= route.methods
    return allowed


class ApiRoute(APIRoute):
    """Starlette answers a method a path does not take from the first route whose path matched, so
    `PUT /api/records/company/1` said `Allow: GET, HEAD` though PATCH and DELETE work there too.

    An operation marked by `auth.gated` has its caller checked here, before FastAPI reads the body or solves a
    parameter."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.gate: Callable[[Scope], None] | None = getattr(endpoint, "api_gate", None)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods and "router" in scope:
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(allowed_methods(scope)))})
        if self.gate is not None:
            self.gate(scope)
        await super().handle(scope, receive, send)


def area_router(tag: str) -> APIRouter:
    """The router of one area of the API. Its routes carry the /api prefix and the 401 answer themselves, so the app
    takes them as they are (`admin.api.api_routes`): no included router to match a request through (FastAPI tries
    each inclusion's routes in turn on every request, the cost the busiest routes paid most)."""
    return APIRouter(prefix=PREFIX, tags=[tag], route_class=ApiRoute, responses=problems(401))
