"""The directory of each entity: columns, filters, sort and pages; saved views; CSV export, mail merge; lookups for pickers."""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import QueryParams

from engine import expressions
from engine import pages as entity_pages
from engine.compiler import CompiledModel
from engine.errors import Loc
from engine.expressions import Scope
from engine.model import Entity, Template
from forms import widgets
from runtime import records, saved_views, words

from ...access import allowed
from ...deps import (
    CompiledDep,
    Conn,
    CsrfForm,
    EngineDep,
    Permitted,
    ServicesDep,
    Staff,
)
from ..finders import MAX_ID, entity_or_404
from ..listing import (
    MAX_FILTERS,
    OPERATORS,
    PAGE_SIZES,
    Catalogue,
    Listing,
    Resolved,
    cell,
    in_sentence,
    own_fields_in,
    resolve,
)
from ..pages import flash, redirect, render
from ..pagewords import locale, said

router = APIRouter(include_in_schema=False)
EXPORT_BATCH = 500
MAX_LETTERS = 500


@dataclass
class Query:
    """One directory request: the entity, what the URL asks for, and that checked against the entity."""

    entity: Entity
    catalogue: Catalogue
    listing: Listing
    resolved: Resolved
    zone: ZoneInfo

    def search(self, conn, compiled: CompiledModel, page: int, per: int) -> records.Page:
        return records.search_records(conn, compiled, self.entity.name, self.resolved.filters, sort=self.resolved.sort, page=page,
                                      page_size=per, as_shown=True)


def directory_query(request: Request, conn, compiled: CompiledModel, user: dict, entity: str) -> Query:
    """The directory query a request's URL asks for, checked against the entity (problems kept, never raised)."""
    ent = entity_or_404(compiled, entity)
    catalogue = Catalogue(ent, locale=locale(request))
    listing = Listing.parse(request.query_params, locale(request))
    zone = widgets.zone_of(compiled.model, user)
    return Query(ent, catalogue, listing, resolve(conn, compiled, catalogue, listing, zone), zone)


def fetch_page(conn, compiled: CompiledModel, query: Query) -> tuple[records.Page, list[str]]:
    """The page asked for; past the last page, the last page (with a note saying so, in the page's language)."""
    listing, notes, lang = query.listing, [], query.catalogue.locale
    things = in_sentence(lang, query.entity.plural)
    try:
        page = query.search(conn, compiled, listing.page, listing.per)
    except records.BadQuery as exc:
        query.resolved.problems.append(str(exc))
        return records.Page([], 0, 1, listing.per), notes
    if listing.page > page.pages and not page.more:
        notes.append(words.plural(lang, "There is only %(num)s page of these %(things)s; this is the last.",
                                  "There are only %(num)s pages of these %(things)s; this is the last.", page.pages, things=things))
        page = query.search(conn, compiled, page.pages, listing.per)
    elif not page.items and listing.page > 1:
        notes.append(words.text(lang, "Page %(page)s is past the last of these %(things)s.", page=f"{listing.page:,}", things=things))
    return page, notes


def show(request: Request, conn, compiled: CompiledModel, user: dict, query: Query, page: records.Page | None = None,
         notes: list[str] | None = None):
    """The directory page of a query (its problems shown, with status 400, when it could not be run)."""
    resolved, ent = query.resolved, query.entity
    if page is None:
        page = records.Page([], 0, 1, query.listing.per)
    for name, (type_name, label) in own_fields_in(page.items).items():
        query.catalogue.add_own(name, type_name, label)
    names = widgets.Names(conn, compiled, query.zone)
    names.prefetch([c.field for c in resolved.columns if not c.own], [r.data for r in page.items])
    rows = [(r, [widgets.html(*cell(r, c), names) for c in resolved.columns]) for r in page.items]
    views = saved_views.views_of(conn, user["id"], ent.name)
    current = next((v for v in views if str(v["id"]) == request.query_params.get("view")), None)
    given = list(query.listing.filters)
    filters = given + [None] * (min(MAX_FILTERS, max(len(given) + 1, 2)) - len(given))  # room for one more, two at first
    return render(request, "directory/directory.html", user=user, status=400 if resolved.problems else 200, entity=ent,
                  catalogue=query.catalogue, listing=query.listing, columns=resolved.columns, sort=resolved.sort, rows=rows, page=page,
                  filters=filters, shown=resolved.shown, operators=OPERATORS, page_sizes=PAGE_SIZES, problems=resolved.problems,
                  notes=resolved.notes + (notes or []), views=views, current=current, query=query.listing.query(),
                  may_export=allowed(compiled.model, user, "export"), chose_columns=resolved.columns != query.catalogue.defaults(),
                  new_url=f"/records/{ent.name}/new" if allowed(compiled.model, user, "edit_records") else None,
                  board_url=f"/board/{ent.name}" if entity_pages.stages(ent) is not None else None)


@router.get("/directory/{entity}", response_class=HTMLResponse)
def directory(request: Request, entity: str, user: Staff, conn: Conn, compiled: CompiledDep):
    query = directory_query(request, conn, compiled, user, entity)
    if query.resolved.problems:
        return show(request, conn, compiled, user, query)
    page, notes = fetch_page(conn, compiled, query)
    return show(request, conn, compiled, user, query, page, notes)


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


# -- saved views ---------------------------------------------------------------------------------


def _view_id(request: Request, raw: str) -> int:
    try:
        number = int(raw)
    except ValueError:
        number = -1
    if not 0 < number <= MAX_ID:
        raise HTTPException(404, said(request, "There is no saved view with that number."))
    return number


@router.post("/directory/{entity}/views")
def save_view(request: Request, entity: str, user: Staff, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    ent = entity_or_404(compiled, entity)
    listing = Listing.parse(QueryParams(str(data.get("query", ""))))
    query = listing.query()  # as the directory writes it: only what the form can say, no page
    try:
        with engine.begin() as conn:
            view_id = saved_views.save(conn, user["id"], ent.name, str(data.get("name", "")), query)
    except saved_views.ViewInvalid as exc:
        flash(request, str(exc))
        return redirect(f"/directory/{ent.name}?{query}")
    flash(request, said(request, "Saved the view “%(name)s”.", name=' '.join(str(data.get('name', '')).split())))
    return redirect(f"/directory/{ent.name}?{query}{'&' if query else ''}view={view_id}")


@router.get("/directory/{entity}/views/{view_id}")
def open_view(request: Request, entity: str, view_id: str, user: Staff, conn: Conn, compiled: CompiledDep):
    ent = entity_or_404(compiled, entity)
    view = saved_views.view_of(conn, user["id"], _view_id(request, view_id))
    if view is None or view["entity"] != ent.name:
        raise HTTPException(404, said(request, "There is no saved view with that number among yours."))
    return redirect(f"/directory/{ent.name}?{view['query']}{'&' if view['query'] else ''}view={view['id']}")


@router.post("/directory/{entity}/views/{view_id}/delete")
def delete_view(request: Request, entity: str, view_id: str, user: Staff, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    ent = entity_or_404(compiled, entity)
    number = _view_id(request, view_id)
    with engine.begin() as conn:
        view = saved_views.view_of(conn, user["id"], number)
        if view is None or view["entity"] != ent.name or not saved_views.delete(conn, user["id"], number):
            raise HTTPException(404, said(request, "There is no saved view with that number among yours."))
    flash(request, said(request, "Deleted the view “%(name)s”.", name=view["name"]))
    return redirect(f"/directory/{ent.name}")


# -- CSV export and mail merge (permission 'export') ----------------------------------------------


def spreadsheet_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (OWASP: prefix = + - @ tab CR with a quote)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@router.get("/directory/{entity}/export.csv")
def directory_csv(request: Request, entity: str, user: Permitted("export"), conn: Conn, compiled: CompiledDep):
    """Every field of the records the directory shows, as people read them, and a column per field of their own."""
    query = directory_query(request, conn, compiled, user, entity)
    if query.resolved.problems:
        return show(request, conn, compiled, user, query)
    ent, catalogue = query.entity, query.catalogue
    fields = catalogue.fields
    names = widgets.Names(conn, compiled, query.zone)
    rows: list[tuple[list[str], dict[str, str]]] = []
    own: dict[str, str] = {}  # name -> label, in the order first met
    page_no = 1
    while True:
        try:
            result = query.search(conn, compiled, page_no, EXPORT_BATCH)
        except records.BadQuery as exc:
            query.resolved.problems.append(str(exc))
            return show(request, conn, compiled, user, query)
        names.prefetch([c.field for c in fields], [r.data for r in result.items])
        for r in result.items:
            cells = [str(r.id), r.title, *(widgets.text(*cell(r, c), names) for c in [*fields, *catalogue.system])]
            mine = {}
            for name, (type_name, label) in own_fields_in([r]).items():
                own.setdefault(name, label)
                column = catalogue.add_own(name, type_name, label)
                mine[name] = widgets.text(*cell(r, column), names)
            rows.append((cells, mine))
        if page_no >= result.pages:
            break
        page_no += 1
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(spreadsheet_safe(h) for h in ["id", ent.label, *(c.label for c in [*fields, *catalogue.system]), *own.values()])
    for cells, mine in rows:
        writer.writerow(spreadsheet_safe(c) for c in [*cells, *(mine.get(name, "") for name in own)])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{ent.plural.lower().replace(" ", "-")}.csv"'})


@router.post("/directory/{entity}/merge", response_class=HTMLResponse)
def mail_merge(request: Request, entity: str, user: Permitted("export"), data: CsrfForm, conn: Conn, compiled: CompiledDep,
               services: ServicesDep):
    """A letter per record the directory shows, the template given display values (names, labels, local times)."""
    query = directory_query(request, conn, compiled, user, entity)
    ent = query.entity
    template = str(data.get("template", ""))
    known = frozenset(f.name for f in ent.all_fields()) | {"id", "title", "raw"}  # raw: the stored values, for whoever needs an id
    problems = expressions.check(Template(template, Loc("letter")), Scope({"record": known, "today": None}, "letter"))
    if problems or not template.strip():
        return render(request, "directory/merge.html", user=user, status=422, entity=ent, letters=[], template=template, note=None,
                      error="; ".join(p.message for p in problems) or said(request, "Write the letter first."), query=query.listing.query())
    if query.resolved.problems:
        return render(request, "directory/merge.html", user=user, status=400, entity=ent, letters=[], template=template, note=None,
                      error=" ".join(query.resolved.problems), query=query.listing.query())
    try:
        result = query.search(conn, compiled, 1, MAX_LETTERS)
    except records.BadQuery as exc:
        return render(request, "directory/merge.html", user=user, status=400, entity=ent, letters=[], template=template, note=None,
                      error=str(exc), query=query.listing.query())
    names = widgets.Names(conn, compiled, query.zone)
    names.prefetch(ent.all_fields(), [r.data for r in result.items])
    today = dt.datetime.now(query.zone).date()
    # bounded (engine.sandbox limits, one time budget for all letters) and rendered in the merge process
    letters = services.merges.merge(template, [(r.title, {"record": widgets.display_context(r.context(ent), ent.all_fields(), names),
                                                          "today": today}) for r in result.items])
    told = ("Letters for the first %(n)s of more than %(total)s %(things)s; narrow the filters for the rest." if result.more else
            "Letters for the first %(n)s of %(total)s %(things)s; narrow the filters for the rest.")
    note = said(request, told, n=f"{MAX_LETTERS:,}", total=f"{result.total:,}", things=in_sentence(locale(request), ent.plural)) \
        if result.total > len(result.items) else None
    return render(request, "directory/merge.html", user=user, entity=ent, letters=letters, template=template, error=None, note=note,
                  query=query.listing.query())
