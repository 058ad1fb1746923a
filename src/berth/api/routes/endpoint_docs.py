"""``GET /api/2.0/serving-endpoints/{name}/openapi``: the OpenAPI 3 document of one endpoint's
invocations route, typed from what its served entities take (``CAN_VIEW``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from berth.api import access
from berth.api.deps import PrincipalDep, ServicesDep
from berth.core.endpoint_config import entities_of
from berth.registry import openapi
from berth.registry.names import parse_version
from berth.store import models
from berth.store.models import VersionInfo

router = APIRouter(tags=["serving-endpoints"])


@router.get("/api/2.0/serving-endpoints/{name}/openapi")
def endpoint_openapi(name: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_VIEW")
        config = record.config or record.pending_config
        entities = [
            (entity, _version(session, entity.registered_model)) for entity in entities_of(config)
        ]
    bodies: list[tuple[str, dict[str, Any], Any]] = []
    for entity, version in entities:
        if version is None:
            assert entity.external_model is not None
            bodies.append((entity.name, openapi.task_input(entity.external_model.task), None))
            continue
        artifact = services.artifact_copies.local(version.artifact_path)
        schema, example = openapi.model_input(artifact, version.format)
        bodies.append((entity.name, schema, example))
    return openapi.document(name, config.config_version if config else 0, bodies)


def _version(session: Session, served: tuple[str, str] | None) -> VersionInfo | None:
    return (
        None if served is None else models.get_version(session, served[0], parse_version(served[1]))
    )
