"""Rendering a page: the template with the user, CSRF token, flash message, the main navigation and the viewer's clock."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from engine import labels
from engine import pages as entity_pages
from engine.model import Model
from engine.reports import may_see
from forms import widgets
from runtime import notifications, words

from ..access import allowed
from ..deps import csrf_token
from .language import compiled_for

STATUS_TEXT = {"open": "Open", "awaiting_approval": "Waiting for approval", "done": "Done", "skipped": "Skipped",
               "cancelled": "Cancelled", "rejected": "Rejected"}


@dataclass(frozen=True)
class NavItem:
    """One entry of the main navigation; `current` is "page" (this very page), "true" (a page inside it) or ""."""

    url: str
    label: str
    current: str = ""


# page template -> what the partials of other areas add to its context, so a partial's owner fills it without
# editing the page's route (the portal conversation's reply box on the task and record pages: routes/replies.py)
Filler = Callable[[Request, dict], dict]
_FILLERS: dict[str, list[Filler]] = {}


def fills(template: str) -> Callable[[Filler], Filler]:
    """Register `fn(request, context) -> more context` for every render of the page `template`."""
    def register(fn: Filler) -> Filler:
        _FILLERS.setdefault(template, []).append(fn)
        return fn
    return register


def render(request: Request, name: str, *, user: dict | None = None, status: int = 200, **ctx: Any) -> HTMLResponse:
    """The template `name` as a page (templates live in per-area folders: `records/record.html`)."""
    templates = request.app.state.services.templates
    model = compiled_for(request, user).model  # labels in the reader's language
    zone = widgets.zone_of(model, user)
    staff = user is not None and allowed(model, user, "access")
    context = {
        "user": user, "csrf_token": csrf_token(request), "flash": request.session.pop("flash", None), "model": model,
        "staff": staff, "home_url": home_url(model, user), "nav": navigation(model, user, request.url.path, request.state.locale) if user else [],
        "zone": zone, "when": lambda moment: widgets.when_text(moment, zone, locale=request.state.locale),
        "status_text": {k: words.text(request.state.locale, v) for k, v in STATUS_TEXT.items()},
        "unread": unread_of(request, user),  # notifications: the bell's count (notifications/_bell.html)
        "lang": request.state.locale,  # the page's <html lang>: the language its labels are in
        **ctx}
    for fill in _FILLERS.get(name, ()):
        context.update(fill(request, context))
    with words.reading(request.state.locale):  # the template's own words in the page's language (words.py)
        return templates.TemplateResponse(request, name, context, status_code=status)


def unread_of(request: Request, user: dict | None) -> int:
    """The user's unread notifications, for the bell in the header (0 for nobody logged in)."""
    if user is None:
        return 0
    with request.app.state.services.engine.connect() as conn:
        return notifications.unread_count(conn, user["id"])


def home_url(model: Model, user: dict | None) -> str:
    """Where the brand link goes: staff to My work, a customer's people to the portal, anyone else to the login."""
    if user is None:
        return "/login"
    return "/" if allowed(model, user, "access") else "/portal"


def navigation(model: Model, user: dict, path: str, locale: str = labels.DEFAULT) -> list[NavItem]:
    """The main menu for `user`: My work, the entities the packs put in the navigation, Forms and Alerts (staff);
    the portal's requests (a customer's people), in `locale`. The entry `path` belongs to is marked current."""
    def _(word: str, **values: str) -> str:
        return words.text(locale, word, **values)

    if not allowed(model, user, "access"):
        entries = [("/portal", _("Our requests"), ("/portal/",))]
    else:
        entries = [("/", _("My work"), ("/tasks/", "/work/")), ("/projects", _("Projects"), ("/projects/",))]
        for e in entity_pages.navigation(model):
            entries.append((f"/directory/{e.name}", e.plural, (f"/directory/{e.name}/", f"/records/{e.name}/")))
            if entity_pages.stages(e) is not None:
                entries.append((f"/board/{e.name}", _("%(entity)s board", entity=e.label), (f"/board/{e.name}/",)))
        entries += [("/forms", _("Forms"), ("/forms/",)), ("/alerts", _("Alerts"), ("/alerts/",))]
        if may_see_reports(model, user):
            entries.append(("/reports", _("Reports"), ("/reports/", "/dashboards")))
        if allowed(model, user, "admin"):
            entries.append(("/admin", _("Console"), ("/admin/",)))
    return [NavItem(url, label, "page" if path == url else "true" if path.startswith(inside) else "") for url, label, inside in entries]


def may_see_reports(model: Model, user: dict) -> bool:
    """Whether any report is open to the user's roles (or to a group: the reports page then asks who is in it)."""
    roles = set(user.get("roles") or [])
    return any(may_see(r.audience, roles, set()) or any(kind == "group" for kind, _, _ in r.audience) for r in model.reports.values())


def flash(request: Request, text: str) -> None:
    """A one-line message shown on the next page."""
    request.session["flash"] = text


def redirect(url: str) -> RedirectResponse:
    """See other: the browser GETs `url` after a POST."""
    return RedirectResponse(url, status_code=303)


def viewer_zone(request: Request, user: dict | None) -> ZoneInfo:
    """The time zone the page's viewer reads times in (their own choice, else the organisation's)."""
    return widgets.zone_of(request.app.state.compiled.model, user)



def task_view(row: dict, zone: ZoneInfo, model: Model | None = None) -> dict:
    """A task row with what a page shows of it: due text in the viewer's zone, status label, overdue; with the `model`
    the page reads, its title in the page's language (engine.labels.task_title)."""
    due = row["due_at"]
    due = due.replace(tzinfo=dt.UTC) if due is not None and due.tzinfo is None else due
    title = labels.task_title(row, model.locale, model) if model else row.get("title")
    return {**row, "title": title, "due_text": widgets.when_text(due, zone, locale=model.locale if model else None), "status_text": STATUS_TEXT.get(row["status"], row["status"]),
            "overdue": due is not None and row["status"] in ("open", "awaiting_approval") and due < dt.datetime.now(dt.UTC)}
