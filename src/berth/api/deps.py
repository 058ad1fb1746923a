"""FastAPI dependencies: the services and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from berth.api.endpoint_service import EndpointService
from berth.api.services import Services
from berth.core.principal import Principal


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def current_principal(request: Request) -> Principal:
    """Authenticate the bearer token; raises ``Unauthenticated`` (401) otherwise."""
    principal = get_services(request).tokens.authenticate(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


def endpoint_service(request: Request) -> EndpointService:
    return EndpointService(get_services(request))


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
EndpointsDep = Annotated[EndpointService, Depends(endpoint_service)]
