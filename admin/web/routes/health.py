"""Whether the database and Temporal answer (no customer data, no login)."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...deps import ServicesDep

router = APIRouter(include_in_schema=False)


@router.get("/health")
async def health(services: ServicesDep) -> JSONResponse:
    def database() -> str:
        try:
            with services.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return "ok"
        except sa.exc.SQLAlchemyError as exc:
            return f"unavailable: {exc.__class__.__name__}"

    checks = {"database": await run_in_threadpool(database)}
    if services.client is not None:
        try:
            await services.client.service_client.check_health()
            checks["temporal"] = "ok"
        except Exception as exc:  # any RPC failure means "not healthy", reported, not raised
            checks["temporal"] = f"unavailable: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)
