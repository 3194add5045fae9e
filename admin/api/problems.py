"""RFC 9457 problem details: every error of the API is one, with a message per field where a value is wrong."""
from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

PROBLEM = "application/problem+json"


class Problem(Exception):
    """An API error: its status, a short title, a detail sentence, messages per field, extension members."""

    def __init__(self, status: int, title: str, detail: str = "", errors: dict[str, str] | None = None, **extra: Any):
        self.status, self.title, self.detail, self.errors, self.extra = status, title, detail, errors or {}, extra


def problem_response(exc: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": exc.title, "status": exc.status}
    if exc.detail:
        body["detail"] = exc.detail
    if exc.errors:
        body["errors"] = exc.errors
    body.update(exc.extra)  # RFC 9457 extension members, e.g. referenced_by
    return JSONResponse(body, status_code=exc.status, media_type=PROBLEM, headers=headers)


def validation_problem(exc: RequestValidationError) -> Problem:
    """A 422 naming each wrong part of the request by where it is, never echoing what was sent."""
    errors: dict[str, str] = {}
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        errors.setdefault(where, str(e.get("msg", "is not valid"))[:200])
    return Problem(422, "Invalid request", "Parts of the request are missing or have the wrong type.", errors)


# The problem document, for the OpenAPI: every documented error answers with this shape.
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
