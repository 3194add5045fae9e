"""Rendering a page: the template with the user, CSRF token, flash message and the model's navigation."""
from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from .deps import csrf_token

STATUS_TEXT = {"open": "Open", "awaiting_approval": "Waiting for approval", "done": "Done", "skipped": "Skipped",
               "cancelled": "Cancelled", "rejected": "Rejected"}


def render(request: Request, name: str, *, user: dict | None = None, status: int = 200, **ctx: Any) -> HTMLResponse:
    """The template `name` as a page (templates live in per-area folders: `records/record.html`)."""
    templates = request.app.state.services.templates
    return templates.TemplateResponse(request, name, {"user": user, "csrf_token": csrf_token(request),
                                                      "flash": request.session.pop("flash", None),
                                                      "model": request.app.state.compiled.model, **ctx}, status_code=status)


def flash(request: Request, text: str) -> None:
    """A one-line message shown on the next page."""
    request.session["flash"] = text


def redirect(url: str) -> RedirectResponse:
    """See other: the browser GETs `url` after a POST."""
    return RedirectResponse(url, status_code=303)


def due_text(due: dt.datetime | None) -> str:
    if due is None:
        return ""
    due = due if due.tzinfo else due.replace(tzinfo=dt.UTC)
    return due.astimezone(dt.UTC).strftime("%a %d %b %Y %H:%M UTC")


def task_view(row: dict) -> dict:
    """A task row with what a page shows of it: due text, status label, overdue."""
    due = row["due_at"]
    due = due.replace(tzinfo=dt.UTC) if due is not None and due.tzinfo is None else due
    return {**row, "due_text": due_text(due), "status_text": STATUS_TEXT.get(row["status"], row["status"]),
            "overdue": due is not None and row["status"] in ("open", "awaiting_approval") and due < dt.datetime.now(dt.UTC)}
