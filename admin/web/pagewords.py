"""A page handler's own words (its flash messages, notes and refusals) in the language of the page's reader."""
from __future__ import annotations

from typing import Any

from fastapi import Request

from runtime import words


def said(request: Request, message: str, **values: Any) -> str:
    """`message` in the request's page language (`language.compiled_for` sets it; English before it has)."""
    return words.text(getattr(request.state, "locale", None), message, **values)


def locale(request: Request) -> str | None:
    """The request's page language, None (English) before `language.compiled_for` has read it."""
    return getattr(request.state, "locale", None)
