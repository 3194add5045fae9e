"""How the API writes values, finds what a URL names and reads the headers several operations share."""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from pydantic import AfterValidator, Field, WithJsonSchema

from engine.compiler import CompiledModel
from runtime import records
from runtime.holders import MAX_ID
from runtime.values import text_problem

from .problems import Problem

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"  # how the definitions name entities and forms
EntityName = Annotated[str, Path(pattern=NAME_PATTERN, description="the entity's name, e.g. company")]
FormName = Annotated[str, Path(pattern=NAME_PATTERN, description="the form's name, e.g. lead_enquiry")]
RecordId = Annotated[int, Path(description="the record's id")]
Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]  # as `jsonable` writes it: ISO 8601 with its offset


async def api_compiled(request: Request) -> CompiledModel:
    """The active configuration, as written: the API names things by their names (admin.web.language.AS_WRITTEN),
    so it needs neither the session's user nor a translation (and no thread-pool hop to find them)."""
    return request.app.state.compiled


ApiCompiled = Annotated[CompiledModel, Depends(api_compiled)]


def jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # SQLite hands back naive datetimes; everything is stored in UTC, and the API says so
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def record_json(r: records.Record) -> dict:
    return {"id": r.id, "title": r.title, "data": {k: jsonable(v) for k, v in r.data.items()}, "row_version": r.row_version,
            "created_at": jsonable(r.created_at), "updated_at": jsonable(r.updated_at)}


def row_json(row: dict) -> dict:
    return {k: jsonable(v) for k, v in row.items() if k != "key"}


def entity_or_404(compiled: CompiledModel, entity: str) -> None:
    if entity not in compiled.model.entities:
        raise Problem(404, "Not found", f"There is no entity '{entity}'.")


def id_or_404(value: int, what: str) -> int:
    """An id from a URL that a database column can hold; anything else names nothing."""
    if not 0 < value <= MAX_ID:
        raise Problem(404, "Not found", f"There is no {what} {value}.")
    return value


# -- text a database can hold ------------------------------------------------------------

def _storable(text: str) -> str:
    if (problem := text_problem(text)):
        raise ValueError(f"text {problem}")
    return text


Text = Annotated[str, AfterValidator(_storable)]
"""A string of a request model that the database can hold (no NUL character, no half surrogate)."""

SCALAR = {"type": ["string", "number", "boolean", "null"]}


def _form_value(value: Any) -> Any:
    for item in value if isinstance(value, list) else (value,):
        if isinstance(item, (dict, list)):
            raise ValueError("a form value is text, a number, true or false, null, or a list of those")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("a number must be finite")
        if isinstance(item, str):
            _storable(item)
    return value


FormValue = Annotated[Any, AfterValidator(_form_value), WithJsonSchema({"anyOf": [SCALAR, {"type": "array", "items": SCALAR}]})]
"""One value of a form, as JSON carries it: checked before it travels on (to a process, say)."""


# -- Idempotency-Key -------------------------------------------------------------------

# A submission's key travels into workflow ids (process_instances.workflow_id holds 200 characters, with the
# process name and the user's id around the key) and into 300-character key columns: 100 leaves room for both.
# Task actions hash theirs (runtime.taskactions.update_id) but take the same keys, so a client has one rule.
MAX_KEY = 100
KEY_PATTERN = re.compile(r"^[!-~]+$")  # visible ASCII: what an HTTP header carries unchanged


def key_parameter(required: bool) -> dict:
    """The Idempotency-Key header as the OpenAPI describes it (the dependencies below read it)."""
    what = ("Required: a unique key per submission, so a retry cannot submit twice; a repeat with the same key "
            "answers 200 with the first result." if required else
            "A key per action: a repeat with the same key gets the first answer; without one, each request is new.")
    return {"name": "Idempotency-Key", "in": "header", "required": required, "description": what,
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY, "pattern": KEY_PATTERN.pattern}}


def _checked_key(key: str) -> str:
    if len(key) > MAX_KEY:
        raise Problem(400, "Idempotency-Key too long", f"An Idempotency-Key has at most {MAX_KEY} characters; this one has {len(key)}.")
    if not KEY_PATTERN.match(key):
        raise Problem(400, "Bad Idempotency-Key", "An Idempotency-Key is made of visible ASCII characters (letters, digits, - _ . : and the like).")
    return key


# include_in_schema=False: FastAPI would document the header as optional and answer a missing one with 422
KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)]


def required(idempotency_key: str | None) -> str:
    """The request's Idempotency-Key, which it must send (400 without one)."""
    if not idempotency_key:
        raise Problem(400, "Idempotency-Key required", "Send a unique Idempotency-Key header so a retry cannot submit twice.")
    return _checked_key(idempotency_key)


async def required_key(idempotency_key: KeyHeader = None) -> str:
    """The request's Idempotency-Key, which it must send (400 without one)."""
    return required(idempotency_key)


async def optional_key(idempotency_key: KeyHeader = None) -> str | None:
    """The request's Idempotency-Key, if it sent one."""
    return _checked_key(idempotency_key) if idempotency_key else None


# -- If-Match --------------------------------------------------------------------------

def if_match_parameter(required: bool) -> dict:
    """The If-Match header as the OpenAPI describes it."""
    what = ("Required: the row_version of the record you mean to delete (428 without it, 412 if it changed)." if required else
            "The row_version you read: the change is refused with 412 if the record changed since.")
    return {"name": "If-Match", "in": "header", "required": required, "description": what,
            "schema": {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,18}"?$'}}


IfMatchHeader = Annotated[str | None, Header(alias="If-Match", include_in_schema=False)]


def row_version(if_match: IfMatchHeader = None) -> int | None:
    """The row version an If-Match header names ("3", or the entity tag \"3\")."""
    if if_match is None:
        return None
    try:
        version = int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        version = -1
    if not 0 <= version <= MAX_ID:
        raise Problem(400, "Bad If-Match", "If-Match carries the record's row_version, e.g. '3'.")
    return version


def required_row_version(if_match: IfMatchHeader = None) -> int:
    """The row version If-Match names, which the request must send (428 without it)."""
    version = row_version(if_match)
    if version is None:
        raise Problem(428, "If-Match required", "Send 'If-Match: ROW_VERSION' of the record you mean to delete.")
    return version
