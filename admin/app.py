"""The web app. For now: health and a landing page; the staff pages come with the web issue."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from temporalio.client import Client

from engine.compiler import CompiledModel


def create_app(engine: sa.Engine, compiled: CompiledModel, client: Client | None, temporal_ui: str | None = None) -> FastAPI:
    app = FastAPI(title="Tailor", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")

    @app.get("/health")
    async def health() -> JSONResponse:
        """Whether the database and Temporal answer (no customer data)."""
        checks = {}
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError as exc:
            checks["database"] = f"unavailable: {exc.__class__.__name__}"
        if client is not None:
            try:
                await client.service_client.check_health()
                checks["temporal"] = "ok"
            except Exception as exc:  # any RPC failure means "not healthy", reported, not raised
                checks["temporal"] = f"unavailable: {exc.__class__.__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)

    @app.get("/", response_class=HTMLResponse)
    async def home() -> str:
        packs = ", ".join(f"{p.name} {p.version}" for p in compiled.model.packs)
        ui = f'<p>Processes are visible in the <a href="{temporal_ui}">Temporal UI</a>.</p>' if temporal_ui else ""
        return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Tailor</title></head><body>"
                f"<h1>Tailor is running</h1><p>Packs: {packs}. {len(compiled.process_specs)} processes, "
                f"{len(compiled.form_schemas)} forms, {len(compiled.entity_schemas)} entities.</p>{ui}"
                f"<p>Health: <a href=/health>/health</a></p></body></html>")

    return app
