"""The REST API under /api: records, forms and submissions, tasks, projects and alerts.

Integrations authenticate with `Authorization: Bearer <token>` (`tailor user create … --token`); the token is
checked before the body is read (`auth.ApiAuthentication`). Errors are RFC 9457 problem details; each operation
documents the statuses it can answer with (`problems.problems`).
"""
from __future__ import annotations

from fastapi import APIRouter

from . import forms, projects, records, tasks
from .problems import problems


def api_router() -> APIRouter:
    """Every API area under /api."""
    router = APIRouter(prefix="/api", responses=problems(401))  # every operation: the token comes first
    for area in (forms, records, tasks, projects):
        router.include_router(area.router)
    return router
