"""The messages of endpoint events, written for a person reading the endpoint's history.

For example: ``Config version 2 requested by admin: served entities iris-1 (Small, CPU);
traffic iris-1 100%``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from berth.core.endpoint_config import EndpointConfigDoc, ServedEntity

Json = dict[str, Any]


def created(who: str, doc: EndpointConfigDoc) -> str:
    return f"Endpoint created by {who} with config version {doc.config_version}: " + (
        describe_config(doc)
    )


def config_requested(who: str, doc: EndpointConfigDoc) -> str:
    return f"Config version {doc.config_version} requested by {who}: {describe_config(doc)}"


def tags_changed(who: str, added: Sequence[Json], deleted: Sequence[str]) -> str:
    changes = []
    if added:
        changes.append("set " + ", ".join(_tag(tag) for tag in added))
    if deleted:
        changes.append("removed " + ", ".join(deleted))
    return f"Tags changed by {who}: {'; '.join(changes) or 'no change'}"


def ai_gateway_changed(who: str, gateway: Json) -> str:
    if not gateway:
        return f"AI gateway cleared by {who}"
    return f"AI gateway set by {who}: {', '.join(sorted(gateway))}"


def rate_limits_changed(who: str, limits: Sequence[Json]) -> str:
    if not limits:
        return f"Rate limits cleared by {who}"
    described = (
        f"{limit['calls']} calls per {limit['renewal_period']} per {limit['key']}"
        for limit in limits
    )
    return f"Rate limits set by {who}: {'; '.join(described)}"


def notifications_changed(who: str, notifications: Json) -> str:
    failure = ", ".join(notifications.get("on_update_failure", [])) or "nobody"
    success = ", ".join(notifications.get("on_update_success", [])) or "nobody"
    return (
        f"Email notifications set by {who}: on update failure {failure}; "
        f"on update success {success}"
    )


def describe_config(doc: EndpointConfigDoc) -> str:
    entities = "; ".join(_entity(entity) for entity in doc.served_entities)
    routes = ", ".join(
        f"{route.served_entity_name} {route.traffic_percentage}%" for route in doc.routes
    )
    return f"served entities {entities}; traffic {routes}"


def _entity(entity: ServedEntity) -> str:
    external = entity.external_model
    if external is not None:
        return f"{entity.name} ({external.provider} {external.name}, {external.task})"
    size = entity.workload_size or (
        f"concurrency {entity.min_provisioned_concurrency}-{entity.max_provisioned_concurrency}"
    )
    traits = [size, str(entity.workload_type)]
    if entity.scale_to_zero_enabled:
        traits.append("scale to zero")
    return f"{entity.name} ({', '.join(traits)})"


def _tag(tag: Json) -> str:
    return f"{tag['key']}={tag['value']}" if "value" in tag else str(tag["key"])
