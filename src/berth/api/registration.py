"""What registering a model or a version takes beyond the registry itself: access, the
``run-model-code`` entitlement, quotas, the creator's grant and the audit log. Shared by the
models routes and the model garden's."""

from __future__ import annotations

from collections.abc import Sequence

from berth.api import access
from berth.api.quotas import check_model_count
from berth.api.services import Services
from berth.core.permissions import owner_grant
from berth.core.principal import Principal
from berth.store import grants
from berth.store.models import ModelInfo, ModelTag, VersionInfo

MODEL = access.MODEL


def create_model(
    services: Services,
    principal: Principal,
    name: str,
    *,
    description: str = "",
    tags: Sequence[ModelTag] = (),
) -> ModelInfo:
    """Any principal may create a model, within the quota; its creator gets CAN_MANAGE."""
    with services.db.transaction() as session:
        check_model_count(session, principal, services.settings.quotas)
    info = services.registry.create_model(
        name, description=description, tags=tags, creator=principal.name
    )
    with services.db.transaction() as session:
        grants.set_grant(session, MODEL, info.name, owner_grant(MODEL, principal))
        access.record_change(
            session, principal, "models.create", (MODEL, info.name), services.clock.now_ms()
        )
    return info


def delete_model(services: Services, principal: Principal, name: str) -> None:
    services.registry.delete_model(name)
    with services.db.transaction() as session:
        grants.drop_object(session, MODEL, name)
        access.record_change(
            session, principal, "models.delete", (MODEL, name), services.clock.now_ms()
        )


def require(services: Services, principal: Principal, name: str, needed: str) -> None:
    """``principal`` holds ``needed`` on model ``name``."""
    with services.db.transaction() as session:
        access.model(session, name, principal, needed)


def require_code(services: Services, principal: Principal) -> None:
    """Registering a version runs its code on the server: the entitlement to do so."""
    with services.db.transaction() as session:
        access.require_run_model_code(
            session, principal, services.settings.access, "register model versions"
        )


def record_version(services: Services, principal: Principal, info: VersionInfo) -> None:
    with services.db.transaction() as session:
        access.record_change(
            session,
            principal,
            "models.create_version",
            (MODEL, info.model),
            services.clock.now_ms(),
            after={"version": info.version, "source": info.source},
        )
