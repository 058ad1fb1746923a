"""Permission levels and who holds them: pure rules shared by the API and the data plane.

Each kind of object has three ordered levels (Databricks' names). A principal's level on an
object is the highest of its direct grants and those of its groups; admins hold the top level
on everything, and the group ``users`` stands for every principal (Databricks'
``initial_manage_principal: "users"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from berth.core.errors import PermissionDenied
from berth.core.principal import Principal, PrincipalKind

EVERYONE = "users"

RUN_MODEL_CODE = "run-model-code"
"""The entitlement to register model versions and deploy them: both run the model's code."""
ENTITLEMENTS = frozenset(
    {
        RUN_MODEL_CODE,
        "workspace-access",
        "databricks-sql-access",
        "allow-cluster-create",
        "allow-instance-pool-create",
    }
)
"""What SCIM's ``entitlements`` may hold: berth's own, and Databricks' names (stored and shown,
for the clients that send them; only ``run-model-code`` means something to berth)."""


class ObjectType(StrEnum):
    SERVING_ENDPOINT = "serving-endpoint"
    SECRET_SCOPE = "secret-scope"
    REGISTERED_MODEL = "registered-model"


class GranteeKind(StrEnum):
    USER = "user"
    SERVICE_PRINCIPAL = "service_principal"
    GROUP = "group"


LEVELS: dict[ObjectType, tuple[str, ...]] = {
    ObjectType.SERVING_ENDPOINT: ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"),
    ObjectType.SECRET_SCOPE: ("READ", "WRITE", "MANAGE"),
    ObjectType.REGISTERED_MODEL: ("CAN_READ", "CAN_EDIT", "CAN_MANAGE"),
}

DESCRIPTIONS: dict[str, str] = {
    "CAN_VIEW": "Can view the endpoint, its config, events and logs",
    "CAN_QUERY": "Can view the endpoint and send it queries",
    "CAN_MANAGE": "Can update, delete and set permissions on the object",
    "READ": "Can list the scope's secret keys and reference them in configs",
    "WRITE": "Can also put and delete secrets in the scope",
    "MANAGE": "Can also change the scope's ACLs and delete it",
    "CAN_READ": "Can read the model and its versions and serve them",
    "CAN_EDIT": "Can also register new versions",
}


@dataclass(frozen=True, slots=True)
class Grant:
    kind: GranteeKind
    name: str
    level: str


def owner_grant(object_type: ObjectType, principal: Principal) -> Grant:
    """The top level, for whoever creates an object."""
    kind = (
        GranteeKind.SERVICE_PRINCIPAL
        if principal.kind is PrincipalKind.SERVICE_PRINCIPAL
        else GranteeKind.USER
    )
    return Grant(kind, principal.name, top_level(object_type))


def top_level(object_type: ObjectType) -> str:
    return LEVELS[object_type][-1]


def rank(object_type: ObjectType, level: str | None) -> int:
    """0 for no level, then 1, 2, 3 up the object type's order."""
    return 0 if level is None else LEVELS[object_type].index(level) + 1


def holds(grant: Grant, principal: Principal) -> bool:
    if grant.kind is GranteeKind.GROUP:
        return grant.name == EVERYONE or grant.name in principal.groups
    return grant.name == principal.name


def effective_level(
    object_type: ObjectType, grants: Iterable[Grant], principal: Principal
) -> str | None:
    """The highest level ``principal`` holds directly or through a group, or None."""
    if principal.is_admin:
        return top_level(object_type)
    best: str | None = None
    for grant in grants:
        if holds(grant, principal) and rank(object_type, grant.level) > rank(object_type, best):
            best = grant.level
    return best


def grant_key(grant: Grant) -> str:
    return f"g:{grant.name}" if grant.kind is GranteeKind.GROUP else f"u:{grant.name}"


def require_level(
    object_type: ObjectType,
    grants: Iterable[Grant],
    principal: Principal,
    needed: str,
    what: str,
) -> str:
    """``principal``'s level on the object, or ``PermissionDenied`` naming the level it lacks.

    ``what`` names the object for the message, e.g. ``serving endpoint 'ads'``.
    """
    level = effective_level(object_type, grants, principal)
    if rank(object_type, level) < rank(object_type, needed):
        has = f" (it has {level})" if level else ""
        raise PermissionDenied(
            f"'{principal.name}' does not have {needed} on {what}{has}; someone with "
            f"{top_level(object_type)} on it, or an admin, can grant it."
        )
    assert level is not None
    return level


def keys_at_least(object_type: ObjectType, grants: Iterable[Grant], needed: str) -> frozenset[str]:
    """The grantee keys (``u:<name>``, ``g:<group>``) holding at least ``needed``."""
    floor = rank(object_type, needed)
    return frozenset(grant_key(g) for g in grants if rank(object_type, g.level) >= floor)


def may(principal: Principal, keys: frozenset[str]) -> bool:
    """Whether ``principal`` is among ``keys`` (from ``keys_at_least``), or an admin."""
    if principal.is_admin or f"u:{principal.name}" in keys or f"g:{EVERYONE}" in keys:
        return True
    return any(f"g:{group}" in keys for group in principal.groups)
