"""The REST API under /api: records, forms and submissions, tasks, projects and alerts, reports.

Integrations authenticate with `Authorization: Bearer <token>` (`tailor user create … --token`); the token is
checked before the body is read (`auth.ApiAuthentication`). Errors are RFC 9457 problem details; each operation
documents the statuses it can answer with (`problems.problems`).
"""
from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.security import HTTPBearer

from . import forms, projects, records, reports, tasks
from .problems import problems


def api_router() -> APIRouter:
    """Every API area under /api."""
    # every operation: the token comes first (ApiAuthentication checks it; the dependency only documents the scheme)
    bearer = HTTPBearer(auto_error=False, description="A token from `tailor user create NAME --role ROLE --token`.")
    router = APIRouter(prefix="/api", responses=problems(401), dependencies=[Depends(bearer)])
    for area in (forms, records, tasks, projects, reports):
        router.include_router(area.router)
    return router
