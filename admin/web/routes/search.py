"""The global search in the header: the titles of every entity in the navigation, results grouped by entity."""
from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from engine import pages
from runtime import records

from ...deps import CompiledDep, Conn, Staff
from ..pages import render

router = APIRouter(include_in_schema=False)
PER_ENTITY = 8
MAX_TYPED = 200


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, user: Staff, conn: Conn, compiled: CompiledDep, q: str = ""):
    """Records of every kind whose title contains what was typed (or whose search field is exactly it)."""
    typed = " ".join(q.split())[:MAX_TYPED]
    groups = []
    if typed:
        for e in pages.navigation(compiled.model):
            found = records.quick_search(conn, compiled, e.name, typed, limit=PER_ENTITY + 1, exact=pages.search_fields(e))
            if found:
                groups.append({"entity": e, "hits": found[:PER_ENTITY], "more": len(found) > PER_ENTITY,
                               "directory": f"/directory/{e.name}?{urlencode({'q': typed})}"})
    return render(request, "search/search.html", user=user, q=typed, groups=groups)
