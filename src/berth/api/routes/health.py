"""Liveness, readiness and the Databricks client start-up probe; no authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from berth.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    """The store answers and its schema is current."""
    if not services.db.is_migrated():
        return JSONResponse(
            {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "Store migrations are pending."},
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


@router.get("/.well-known/databricks-config")
async def databricks_config(request: Request, services: ServicesDep) -> dict[str, str]:
    """Answer the databricks-sdk start-up probe so clients log no warning."""
    base = str(request.base_url).rstrip("/")
    return {"oidc_endpoint": f"{base}/oidc", "workspace_id": services.settings.server.workspace_id}
