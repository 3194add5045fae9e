"""A request-size limit on every route: a body over the limit is refused with 413 before it is read whole."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

DEFAULT_MAX_BODY = 1024 * 1024  # 1 MiB: far above any form or record, far below what could stall the server


class BodyLimit:
    """Refuses a declared Content-Length over `max_bytes` at once, and stops reading a streamed body as soon as it
    passes the limit: `limited` gives the app a `receive` that raises instead (the route then answers 413 through
    the usual error handlers). `admin.front.Front` applies it to every request."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.max_bytes = max_bytes

    def too_large(self) -> HTTPException:
        return HTTPException(413, f"The request is larger than this server accepts ({self.max_bytes:,} bytes).")

    def limited(self, receive: Receive, declared: bytes | None) -> Receive:
        """`receive` as the app reads it, given the request's Content-Length header (None: not declared)."""
        refused: HTTPException | None = None
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0 or length > self.max_bytes:
                refused = self.too_large() if length >= 0 else HTTPException(400, "Content-Length is not a number.")
        received = 0

        async def read() -> Message:
            nonlocal received
            if refused is not None:
                raise refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self.too_large()
            return message

        return read
