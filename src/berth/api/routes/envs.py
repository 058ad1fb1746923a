"""berth's extension ``/api/2.0/berth/envs``: the environment cache, listed and pruned."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from berth.api.deps import PrincipalDep, ServicesDep
from berth.core.errors import PermissionDenied
from berth.envs import EnvInfo, list_envs, prune
from berth.store import models as model_store

router = APIRouter(tags=["environments"])

BASE = "/api/2.0/berth/envs"


@router.get(BASE)
def list_environments(services: ServicesDep) -> dict[str, Any]:
    """Every built environment: size, last use, and the model versions that use it."""
    with services.db.transaction() as session:
        users = model_store.environment_users(session)
        served = model_store.served_environments(session)
    return {
        "environments": [
            _view(info, users.get(info.hash, []), info.hash in served)
            for info in list_envs(services.settings.envs_dir)
        ]
    }


@router.post(BASE + "/prune")
def prune_environments(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Remove every environment no endpoint serves from (admins only)."""
    if not principal.is_admin:
        raise PermissionDenied("Only admins may prune the environment cache.")
    with services.db.transaction() as session:
        served = model_store.served_environments(session)
        users = model_store.environment_users(session)
    removed = prune(services.settings.envs_dir, keep=served)
    return {"removed": [_view(info, users.get(info.hash, []), False) for info in removed]}


def _view(info: EnvInfo, versions: list[str], in_use: bool) -> dict[str, Any]:
    return {
        "hash": info.hash,
        "python_version": info.spec.python,
        "requirements": list(info.spec.requirements),
        "size_bytes": info.size_bytes,
        "creation_timestamp": info.created_ms,
        "last_used_timestamp": info.last_used_ms,
        "model_versions": versions,
        "in_use": in_use,
    }
