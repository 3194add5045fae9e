"""The REST API under /api: records, forms and submissions, tasks, projects and alerts, reports.

Integrations authenticate with `Authorization: Bearer <token>` (`tailor user create … --token`); the token is
checked before the body is read (`auth.authenticate`, which `admin.front.Front` calls). Errors are RFC 9457 problem details; each operation
documents the statuses it can answer with (`problems.problems`).
"""
from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from . import forms, projects, records, reports, tasks
from .routing import PREFIX

# how the OpenAPI names the scheme every operation needs (`auth.authenticate` checks it before any route runs)
BEARER = {"HTTPBearer": {"type": "http", "scheme": "bearer", "description": "A token from `tailor user create NAME --role ROLE --token`."}}


def api_routes() -> list[APIRoute]:
    """Every operation under /api, whole (see `routing.area_router`): the app takes them as its own routes."""
    return [route for area in (forms, records, tasks, projects, reports) for route in area.router.routes]


def document_bearer(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` (the app's OpenAPI) saying that every operation under /api needs the bearer token."""
    spec.setdefault("components", {}).setdefault("securitySchemes", {}).update(BEARER)
    for path, operations in spec.get("paths", {}).items():
        if path.startswith(PREFIX + "/"):
            for operation in operations.values():
                operation["security"] = [{name: []} for name in BEARER]
    return spec
