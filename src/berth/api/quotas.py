"""Quotas: how much one user may ask of the server (endpoints, models, replicas).

Checked when something is created or a config is stored, in the same transaction; an admin
is bound by the per-entity cap too. Each refusal names the quota and its setting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from berth.core.endpoint_config import ServedEntity, entities_of
from berth.core.errors import BerthError
from berth.core.principal import Principal
from berth.core.sizing import replica_bounds
from berth.settings import QuotaSettings
from berth.store import endpoints as endpoint_store
from berth.store import models as model_store


class QuotaExceeded(BerthError):
    error_code = "RESOURCE_LIMIT_EXCEEDED"
    http_status = 400


def check_endpoint_count(session: Session, principal: Principal, quotas: QuotaSettings) -> None:
    if principal.is_admin:
        return
    owned = sum(1 for r in endpoint_store.list_endpoints(session) if r.creator == principal.name)
    if owned >= quotas.endpoints_per_user:
        raise QuotaExceeded(
            f"'{principal.name}' already has {owned} serving endpoints, the most one user may "
            f"create (BERTH_QUOTAS__ENDPOINTS_PER_USER={quotas.endpoints_per_user}); delete one "
            "first."
        )


def check_model_count(session: Session, principal: Principal, quotas: QuotaSettings) -> None:
    if principal.is_admin:
        return
    owned = model_store.count_models_by(session, principal.name)
    if owned >= quotas.models_per_user:
        raise QuotaExceeded(
            f"'{principal.name}' already has {owned} registered models, the most one user may "
            f"create (BERTH_QUOTAS__MODELS_PER_USER={quotas.models_per_user}); delete one first."
        )


def check_replicas(
    session: Session,
    principal: Principal,
    quotas: QuotaSettings,
    entities: Iterable[ServedEntity],
    chunk: Callable[[ServedEntity], int | None],
    replacing: str | None = None,
) -> None:
    """Each served entity within the per-entity cap; the caller's endpoints together (the one
    being ``replacing``'d counted with its new config) within the per-user cap. ``chunk`` is
    the throughput chunk of an entity sized in throughput (one replica per chunk)."""
    wanted = 0
    for entity in entities:
        if entity.external_model is not None:
            continue
        most = replica_bounds(entity, chunk(entity))[1]
        if most > quotas.replicas_per_entity:
            raise QuotaExceeded(
                f"Served entity '{entity.name}' may scale to {most} replicas, over the "
                f"cap of {quotas.replicas_per_entity} per entity "
                "(BERTH_QUOTAS__REPLICAS_PER_ENTITY): ask for less concurrency or throughput."
            )
        wanted += most
    if principal.is_admin:
        return
    for record in endpoint_store.list_endpoints(session):
        if record.creator != principal.name or record.id == replacing:
            continue
        for entity in entities_of(record.config, record.pending_config):
            if entity.external_model is None:
                wanted += replica_bounds(entity, chunk(entity))[1]
    if wanted > quotas.replicas_per_user:
        raise QuotaExceeded(
            f"'{principal.name}''s endpoints would scale to {wanted} replicas in all, over the "
            f"cap of {quotas.replicas_per_user} per user (BERTH_QUOTAS__REPLICAS_PER_USER)."
        )
