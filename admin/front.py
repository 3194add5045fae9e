"""The one ASGI layer in front of the app: the size limit for every request, then the API's bearer token or the
pages' session cookie, whichever the path is for.

One layer rather than three middlewares in a row: each would read the headers and ask whether the path is the API's
again, and each is a further call every request passes through on the way in and out."""
from __future__ import annotations

from typing import Any

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from .api.auth import authenticate
from .api.routing import is_api_path
from .limits import DEFAULT_MAX_BODY, BodyLimit


class Front:
    """ASGI middleware. A request under /api is authenticated by its token (`api.auth.authenticate`: 401 at once,
    before a byte of the body is read) and goes around the session (no cookie read, no session made, no response
    headers rewritten); any other request gets Starlette's signed session cookie (`session_options`). Either reads
    its body through the size limit (`limits.BodyLimit`: 413)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = DEFAULT_MAX_BODY, **session_options: Any) -> None:
        self.app, self.limit = app, BodyLimit(max_bytes)
        self.pages = SessionMiddleware(app, **session_options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.pages(scope, receive, send)  # a websocket gets its session; lifespan events pass through
            return
        headers = dict(scope["headers"])
        receive = self.limit.limited(receive, headers.get(b"content-length"))
        if is_api_path(scope["path"]):
            await authenticate(self.app, scope, receive, send, headers.get(b"authorization"))
        else:
            await self.pages(scope, receive, send)
