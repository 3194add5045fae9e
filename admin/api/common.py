"""How the API writes values and finds what a URL names."""
from __future__ import annotations

import datetime as dt
from typing import Any

from engine.compiler import CompiledModel
from runtime import records

from ..web.finders import MAX_ID
from .problems import Problem


def jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
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


def row_version(if_match: str | None) -> int | None:
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
