"""The language a page is read in, and the active configuration in that language.

A staff member or portal user reads labels in the language they chose on their profile; anyone else (and someone who
chose none) in the first of their browser's languages (`Accept-Language`) the packs translate into; else as the
definitions are written. The console edits the definitions themselves, so it always shows them as written, and the
API names things by their names.
"""
from __future__ import annotations

from fastapi import Request

from engine import labels
from engine.compiler import CompiledModel, localized
from forms.widgets import locale_of

AS_WRITTEN = ("/admin", "/api")  # pages and endpoints that show the definitions as written
_KEPT = 8  # (configuration, language) pairs remembered: a release switch brings a new configuration


def page_locale(request: Request, user: dict | None) -> str:
    """The language of the page `request` asks for (see the module's docstring)."""
    compiled = request.app.state.compiled
    if request.url.path.startswith(AS_WRITTEN):
        return labels.DEFAULT
    return locale_of(compiled.model, user, labels.accept_language(request.headers.get("accept-language")))


def compiled_for(request: Request, user: dict | None) -> CompiledModel:
    """The active configuration as the request's reader reads it; the locale is kept on `request.state.locale`
    (the page's `<html lang>`)."""
    compiled = request.app.state.compiled
    locale = page_locale(request, user)
    request.state.locale = locale
    return in_language(request, compiled, locale)


def in_language(request: Request, compiled: CompiledModel, locale: str) -> CompiledModel:
    """`compiled` in `locale`, translated once per configuration and language (kept on the app)."""
    if locale == labels.DEFAULT or locale not in compiled.model.translations:
        return compiled
    memo = getattr(request.app.state, "in_language", None)
    if memo is None:
        memo = request.app.state.in_language = {}
    key = (id(compiled), locale)
    hit = memo.get(key)
    if hit is None or hit[0] is not compiled:  # an id may be reused once a configuration is gone
        if len(memo) >= _KEPT:
            memo.clear()
        hit = memo[key] = (compiled, localized(compiled, locale))
    return hit[1]
