"""The REST API under /api: records, forms and submissions, tasks, projects and alerts.

Integrations authenticate with `Authorization: Bearer <token>` (`tailor user create … --token`); the token is
checked before the body is read (`auth.ApiAuthentication`). Errors are RFC 9457 problem details.
"""
from __future__ import annotations

from fastapi import APIRouter

from . import forms, projects, records, tasks
from .problems import PROBLEM, PROBLEM_SCHEMA

ERRORS = {status: {"description": text, "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
          for status, text in {400: "Bad request", 401: "No valid token", 403: "Not permitted", 404: "Not found", 413: "Body too large",
                               422: "Invalid input"}.items()}


def api_router() -> APIRouter:
    """Every API area under /api."""
    router = APIRouter(prefix="/api", responses=ERRORS)
    for area in (forms, records, tasks, projects):
        router.include_router(area.router)
    return router
