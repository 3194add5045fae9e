"""The directory of each entity: search and filter, CSV export, mail merge, and search-as-you-type for pickers."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from engine import expressions
from engine.compiler import CompiledModel
from engine.errors import Loc
from engine.expressions import Scope
from engine.model import Template
from runtime import records

from ..deps import CompiledDep, Conn, CsrfForm, Permitted, Staff
from ..finders import entity_or_404
from ..pages import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


def directory_query(request: Request, compiled: CompiledModel, entity: str) -> tuple[dict, dict]:
    """Filters and sort from the query string, as the directory form sends them."""
    q, field, value = (request.query_params.get(k, "").strip() for k in ("q", "field", "value"))
    own = re.sub(r"[^a-z0-9]+", "_", request.query_params.get("own", "").strip().lower()).strip("_")
    if own and not field:
        field = f"record_fields.{own}"
    ent = compiled.model.entities[entity]
    filters: dict[str, Any] = {}
    if q:
        filters["title"] = {"contains": q}
    if field and value:
        f = ent.field(field) or next((x for x in ent.all_fields() if x.name == field), None)
        textual = f is not None and f.type in ("string", "text", "email", "phone", "url")
        filters[field] = {"contains": value} if textual or f is None else value
    if own:
        filters.setdefault(f"record_fields.{own}", {"contains": value} if value else {"empty": False})
    sort = request.query_params.get("sort") or "title"
    return filters, {"q": q, "field": field if not field.startswith("record_fields.") else "", "value": value, "sort": sort, "own": own}


def page_number(raw: str | None) -> int:
    """The page asked for; anything that is not a page number is page 1."""
    try:
        return min(max(1, int(raw or "1")), 10**9)
    except ValueError:
        return 1


@router.get("/directory/{entity}", response_class=HTMLResponse)
def directory(request: Request, entity: str, user: Staff, conn: Conn, compiled: CompiledDep):
    ent = entity_or_404(compiled, entity)
    filters, shown = directory_query(request, compiled, entity)
    error = None
    try:
        result = records.search_records(conn, compiled, entity, filters, sort=shown["sort"], page=page_number(request.query_params.get("page")),
                                        page_size=PAGE_SIZE)
    except records.BadQuery as exc:
        error, result = str(exc), records.Page([], 0, 1, PAGE_SIZE)
    query = "&".join(f"{k}={v}" for k, v in shown.items() if v)
    sorts = [("title", "Name"), ("-created_at", "Newest first")] + [(f.name, f.label) for f in ent.fields[:8] if f.type not in ("multichoice", "text")]
    return render(request, "directory/directory.html", user=user, entity=ent, page=result, columns=[f for f in ent.fields[:5] if f.type != "text"],
                  filterable=ent.all_fields(), error=error, query=query, **shown, sorts=sorts)


@router.get("/lookup/{entity}")
def lookup(request: Request, entity: str, user: Staff, conn: Conn, compiled: CompiledDep, q: str = "") -> JSONResponse:
    """Search-as-you-type for reference fields: the first 20 records whose name contains what was typed."""
    entity_or_404(compiled, entity)
    typed = q.strip()
    try:
        found = records.search_records(conn, compiled, entity, {"title": {"contains": typed}} if typed else {}, sort="title", page_size=20)
    except records.BadQuery:  # text no title can hold (a NUL character): nothing matches
        return JSONResponse([])
    return JSONResponse([{"id": r.id, "title": r.title} for r in found.items])


def spreadsheet_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (OWASP: prefix = + - @ tab CR with a quote)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@router.get("/directory/{entity}/export.csv")
def directory_csv(request: Request, entity: str, user: Permitted("export"), conn: Conn, compiled: CompiledDep):
    ent = entity_or_404(compiled, entity)
    filters, shown = directory_query(request, compiled, entity)
    fields = list(ent.all_fields())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", ent.label, *(f.label for f in fields)])
    page_no = 1
    while True:
        try:
            result = records.search_records(conn, compiled, entity, filters, sort=shown["sort"], page=page_no, page_size=500)
        except records.BadQuery as exc:
            return render(request, "directory/directory.html", user=user, status=400, entity=ent, page=records.Page([], 0, 1, PAGE_SIZE),
                          columns=[], filterable=ent.all_fields(), error=str(exc), query="", **shown, sorts=[])
        for r in result.items:
            cells = ("; ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v) for v in (r.data.get(f.name) for f in fields))
            writer.writerow([r.id, spreadsheet_safe(r.title), *(spreadsheet_safe(c) for c in cells)])
        if page_no >= result.pages:
            break
        page_no += 1
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{ent.plural.lower().replace(" ", "-")}.csv"'})


@router.post("/directory/{entity}/merge", response_class=HTMLResponse)
def mail_merge(request: Request, entity: str, user: Permitted("export"), data: CsrfForm, conn: Conn, compiled: CompiledDep):
    ent = entity_or_404(compiled, entity)
    template = str(data.get("template", ""))
    filters, shown = directory_query(request, compiled, entity)
    problems = expressions.check(Template(template, Loc("letter")), Scope({"record": frozenset(f.name for f in ent.all_fields()) |
                                                                                   {"id", "title"}, "today": None}, "letter"))
    if problems or not template.strip():
        return render(request, "directory/merge.html", user=user, status=422, entity=ent, letters=[], template=template,
                      error="; ".join(p.message for p in problems) or "Write the letter first.")
    try:
        result = records.search_records(conn, compiled, entity, filters, sort=shown["sort"], page=1, page_size=500)
    except records.BadQuery as exc:
        return render(request, "directory/merge.html", user=user, status=400, entity=ent, letters=[], template=template, error=str(exc))
    letters = []
    for r in result.items:
        try:
            letters.append((r.title, expressions.render(template, {"record": r.context(ent), "today": dt.date.today()})))
        except Exception as exc:  # one record's missing value must not stop the rest
            letters.append((r.title, f"(not produced: {exc})"))
    return render(request, "directory/merge.html", user=user, entity=ent, letters=letters, template=template, error=None)
