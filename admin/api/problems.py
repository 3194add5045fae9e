"""RFC 9457 problem details: every error of the API is one, with a message per field where a value is wrong."""
from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from runtime.values import SURROGATE

PROBLEM = "application/problem+json"
LONGEST = 1000  # characters of any text in a problem: a message names what is wrong, it never carries the input back


class Problem(Exception):
    """An API error: its status, a short title, a detail sentence, messages per field, extension members."""

    def __init__(self, status: int, title: str, detail: str = "", errors: dict[str, str] | None = None, **extra: Any):
        self.status, self.title, self.detail, self.errors, self.extra = status, title, detail, errors or {}, extra


def _sendable(value: Any) -> Any:
    """`value` as a problem may carry it: text clipped, and no half surrogate (from a JSON key, say) that UTF-8 cannot encode."""
    if isinstance(value, str):
        value = SURROGATE.sub("\ufffd", value)
        return value if len(value) <= LONGEST else value[:LONGEST - 1] + "…"
    if isinstance(value, dict):
        return {_sendable(str(k)): _sendable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sendable(v) for v in value]
    return value


def problem_response(exc: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": exc.title, "status": exc.status}
    if exc.detail:
        body["detail"] = exc.detail
    if exc.errors:
        body["errors"] = exc.errors
    body.update(exc.extra)  # RFC 9457 extension members, e.g. referenced_by
    return JSONResponse(_sendable(body), status_code=exc.status, media_type=PROBLEM, headers=headers)


def validation_problem(exc: RequestValidationError) -> Problem:
    """A 422 naming each wrong part of the request by where it is, never echoing what was sent (400 for a body that is not JSON)."""
    errors: dict[str, str] = {}
    for e in exc.errors():
        if e.get("type") == "json_invalid":
            where = next((p for p in e.get("loc", ()) if isinstance(p, int)), None)
            reason = str((e.get("ctx") or {}).get("error", "not JSON"))
            return Problem(400, "Malformed JSON", f"The body is not JSON: {reason}" + (f" (at character {where})." if where is not None else "."))
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        errors.setdefault(where, str(e.get("msg", "is not valid")).removeprefix("Value error, ")[:200])
    return Problem(422, "Invalid request", "Parts of the request are missing or have the wrong type.", errors)


# The problem document, for the OpenAPI: every documented error answers with this shape.
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong and what to send instead"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}, "description": "a message per wrong field or part"},
        "referenced_by": {"type": "array", "items": {"type": "string"}, "description": "409 on delete: what still refers to the record"},
    },
}

# Why an operation answers each status: what `problems(...)` documents.
MEANINGS = {
    400: "Bad request: a header, query or body that is not understood (the detail says which)",
    401: "No valid bearer token",
    403: "The token's user lacks the permission this needs",
    404: "Nothing by that name or id",
    409: "Conflicts with the current state",
    412: "The record changed since the row_version in If-Match",
    413: "The body is larger than the server accepts",
    422: "Values that are not accepted: a message per field",
    428: "If-Match is required",
    503: "The process engine is unavailable; try again later",
}


# Headers an error of that status always carries.
HEADERS = {401: {"WWW-Authenticate": {"description": "Bearer", "required": True, "schema": {"type": "string"}}}}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of an operation for the error statuses it can answer with, each a problem document."""
    return {status: {"description": MEANINGS[status], "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
                     **({"headers": HEADERS[status]} if status in HEADERS else {})} for status in statuses}
