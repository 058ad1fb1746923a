"""Builds the ASGI application of one ``berth serve`` process."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, FastAPI

import berth
from berth.api.deps import current_principal
from berth.api.errors import install_error_handlers
from berth.api.routes import endpoints, health, models
from berth.api.services import Services
from berth.core.clock import SystemClock
from berth.identity.tokens import AdminBootstrap, TokenService
from berth.registry.service import Registry
from berth.settings import Settings
from berth.store.db import Database


@dataclass(frozen=True, slots=True)
class Server:
    app: FastAPI
    services: Services
    admin: AdminBootstrap


def build_server(settings: Settings) -> Server:
    """Open the store (migrating it), make the admin token, and assemble the routes."""
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.store_url)
    db.migrate()
    clock = SystemClock()
    tokens = TokenService(db, clock)
    configured = settings.admin_token.get_secret_value() if settings.admin_token else None
    admin = tokens.bootstrap_admin(settings.admin_token_file, configured)
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        tokens=tokens,
        registry=Registry(db, clock, settings.artifacts_dir),
    )

    app = FastAPI(
        title="berth",
        version=berth.__version__,
        description="Self-hosted model serving, wire-compatible with Databricks Model Serving.",
        openapi_url="/api/2.0/openapi.json",
        docs_url="/api/2.0/docs",
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)
    protected = APIRouter(dependencies=[Depends(current_principal)])
    protected.include_router(models.router)
    protected.include_router(endpoints.router)
    app.include_router(protected)
    return Server(app=app, services=services, admin=admin)
