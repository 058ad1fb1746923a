"""Permission checks of the control plane, shared by the endpoint, model and permission routes.

Levels and how grants combine live in ``berth.core.permissions``; this module looks objects
up, applies those rules, and records what changed in the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from berth.api.endpoint_config import NormalisedConfig
from berth.api.sealed_keys import endpoint_scope
from berth.core.errors import NotFound, PermissionDenied
from berth.core.permissions import RUN_MODEL_CODE, ObjectType, require_level
from berth.core.principal import Principal
from berth.registry.names import parse_version
from berth.secrets import SecretsService, parse_reference
from berth.secrets.service import RESERVED_PREFIX
from berth.settings import AccessSettings
from berth.store import audit, entitlements, grants, models
from berth.store import endpoints as store
from berth.store.endpoints import EndpointRecord

Json = dict[str, Any]

ENDPOINT = ObjectType.SERVING_ENDPOINT
MODEL = ObjectType.REGISTERED_MODEL


def endpoint(session: Session, name: str, principal: Principal, needed: str) -> EndpointRecord:
    """The endpoint named ``name`` if ``principal`` holds ``needed`` on it."""
    record = store.get_endpoint(session, name)
    if record is None:
        raise NotFound(f"Endpoint with name '{name}' does not exist.")
    endpoint_level(session, record, principal, needed)
    return record


def endpoint_level(
    session: Session, record: EndpointRecord, principal: Principal, needed: str
) -> str:
    return require_level(
        ENDPOINT,
        grants.grants_on(session, ENDPOINT, record.id),
        principal,
        needed,
        f"serving endpoint '{record.name}'",
    )


def model(session: Session, name: str, principal: Principal, needed: str) -> None:
    """``NotFound`` for an unknown model, else ``PermissionDenied`` unless ``needed`` is held."""
    models.get_model(session, name)
    require_level(
        MODEL,
        grants.grants_on(session, MODEL, name),
        principal,
        needed,
        f"registered model '{name}'",
    )


def require_run_model_code(
    session: Session, principal: Principal, access: AccessSettings, action: str
) -> None:
    """Registering a model version or deploying one runs its code on this server: that takes
    the ``run-model-code`` entitlement (admins hold it; ``code_execution: all`` gives it to
    everyone)."""
    if access.code_execution == "all" or principal.is_admin:
        return
    if entitlements.holds(session, principal.name, principal.groups, RUN_MODEL_CODE):
        return
    raise PermissionDenied(
        f"'{principal.name}' may not {action}: that runs the model's code on this server and "
        f"needs the '{RUN_MODEL_CODE}' entitlement, which an admin grants on the user or one of "
        "its groups (SCIM entitlements, e.g. `berth users entitle NAME`)."
    )


def check_served(
    session: Session,
    config: NormalisedConfig,
    principal: Principal,
    secrets: SecretsService,
    endpoint_id: str | None,
    *,
    access: AccessSettings,
) -> None:
    """Each served model version exists and ``principal`` may read it and run its code; each
    secret the config references is readable by ``principal`` (the endpoint's own sealed
    scope aside)."""
    if config.model_refs:
        require_run_model_code(session, principal, access, "deploy model versions")
    for ref in config.model_refs:
        try:
            models.get_version(session, ref.model, parse_version(ref.version))
        except NotFound as exc:
            raise NotFound(f"Served entity '{ref.served_name}': {exc.message}") from exc
        model(session, ref.model, principal, "CAN_READ")
    own = endpoint_scope(endpoint_id) if endpoint_id is not None else None
    given = [entity.to_json() for entity in config.served_entities]
    for scope in sorted({s for s in _referenced_scopes(given) if s != own}):
        if scope.startswith(RESERVED_PREFIX):
            raise PermissionDenied(
                f"The config references secret scope '{scope}', which holds another "
                "endpoint's sealed provider keys; give the key itself (*_plaintext) or a "
                "reference to a scope of your own."
            )
        secrets.require_read(principal, scope)


def record_change(
    session: Session,
    principal: Principal,
    action: str,
    subject: tuple[ObjectType, str],
    now_ms: int,
    *,
    before: Json | None = None,
    after: Json | None = None,
) -> None:
    """Audit ``action`` by ``principal`` on ``subject`` (its type and id) in the transaction
    of the change itself, so the change and its record land together."""
    object_type, object_id = subject
    audit.record(
        session,
        actor=principal.name,
        action=action,
        object_type=object_type.value,
        object_id=object_id,
        now_ms=now_ms,
        before=before,
        after=after,
    )


def _referenced_scopes(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, dict):
            yield from _referenced_scopes(value.values())
        elif isinstance(value, list):
            yield from _referenced_scopes(value)
        elif isinstance(value, str) and (ref := parse_reference(value)) is not None:
            yield ref.scope
