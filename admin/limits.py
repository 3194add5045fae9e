"""A request-size limit on every route: a body over the limit is refused with 413 before it is read whole."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY = 1024 * 1024  # 1 MiB: far above any form or record, far below what could stall the server


class BodyLimit:
    """ASGI middleware: refuses a declared Content-Length over `max_bytes` at once, and stops reading a streamed
    body as soon as it passes the limit (the route then answers 413 through the usual error handlers)."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.app, self.max_bytes = app, max_bytes

    def too_large(self) -> HTTPException:
        return HTTPException(413, f"The request is larger than this server accepts ({self.max_bytes:,} bytes).")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0 or length > self.max_bytes:
                scope["tailor.refused"] = self.too_large() if length >= 0 else HTTPException(400, "Content-Length is not a number.")
        received = 0

        async def limited() -> Message:
            nonlocal received
            if "tailor.refused" in scope:
                raise scope["tailor.refused"]
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self.too_large()
            return message

        await self.app(scope, limited, send)
