"""``/api/2.0/permissions/serving-endpoints/{id}`` and ``.../registered-models/{name}``.

GET answers the direct grants plus the ``admins`` group's inherited top level; PUT replaces
the direct grants, PATCH adds to or changes them. Both need the top level on the object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter
from sqlalchemy.orm import Session

from berth.api import access
from berth.api.deps import PrincipalDep, ServicesDep
from berth.api.schemas.permissions import (
    AccessControlRequest,
    AccessControlResponse,
    ObjectPermissions,
    Permission,
    PermissionLevel,
    PermissionLevels,
    PermissionsRequest,
)
from berth.api.services import Services
from berth.core.errors import InvalidParameter, NotFound
from berth.core.permissions import (
    DESCRIPTIONS,
    LEVELS,
    Grant,
    GranteeKind,
    ObjectType,
    require_level,
    top_level,
)
from berth.core.principal import ADMINS_GROUP, Principal
from berth.store import endpoints as endpoint_store
from berth.store import grants, models

router = APIRouter(prefix="/api/2.0/permissions", tags=["permissions"])


@dataclass(frozen=True, slots=True)
class _Object:
    object_type: ObjectType
    object_id: str
    """The key grants are stored under: the endpoint's id, the model's name."""
    path: str
    """Databricks' ``object_id``: ``/serving-endpoints/<id>``."""
    what: str


_Finder = Callable[[Session], _Object]


def _endpoint(session: Session, endpoint_id: str) -> _Object:
    record = endpoint_store.get_endpoint_by_id(session, endpoint_id)
    if record is None:
        raise NotFound(
            f"No serving endpoint has id '{endpoint_id}': the permissions API takes the "
            "endpoint's id (GET /api/2.0/serving-endpoints/<name> shows it), not its name."
        )
    return _Object(
        access.ENDPOINT,
        record.id,
        f"/serving-endpoints/{record.id}",
        f"serving endpoint '{record.name}'",
    )


def _model(session: Session, name: str) -> _Object:
    models.get_model(session, name)
    return _Object(access.MODEL, name, f"/registered-models/{name}", f"registered model '{name}'")


@router.get("/serving-endpoints/{endpoint_id}", response_model_exclude_none=True)
def get_endpoint_permissions(
    endpoint_id: str, services: ServicesDep, principal: PrincipalDep
) -> ObjectPermissions:
    return _read(services, principal, lambda s: _endpoint(s, endpoint_id))


@router.put("/serving-endpoints/{endpoint_id}", response_model_exclude_none=True)
def set_endpoint_permissions(
    endpoint_id: str, body: PermissionsRequest, services: ServicesDep, principal: PrincipalDep
) -> ObjectPermissions:
    return _write(services, principal, lambda s: _endpoint(s, endpoint_id), body, replace=True)


@router.patch("/serving-endpoints/{endpoint_id}", response_model_exclude_none=True)
def update_endpoint_permissions(
    endpoint_id: str, body: PermissionsRequest, services: ServicesDep, principal: PrincipalDep
) -> ObjectPermissions:
    return _write(services, principal, lambda s: _endpoint(s, endpoint_id), body, replace=False)


@router.get("/serving-endpoints/{endpoint_id}/permissionLevels")
def endpoint_permission_levels(
    endpoint_id: str, services: ServicesDep, principal: PrincipalDep
) -> PermissionLevels:
    _read(services, principal, lambda s: _endpoint(s, endpoint_id))
    return _levels(access.ENDPOINT)


@router.get("/registered-models/{name}", response_model_exclude_none=True)
def get_model_permissions(
    name: str, services: ServicesDep, principal: PrincipalDep
) -> ObjectPermissions:
    return _read(services, principal, lambda s: _model(s, name))


@router.put("/registered-models/{name}", response_model_exclude_none=True)
def set_model_permissions(
    name: str, body: PermissionsRequest, services: ServicesDep, principal: PrincipalDep
) -> ObjectPermissions:
    return _write(services, principal, lambda s: _model(s, name), body, replace=True)


@router.patch("/registered-models/{name}", response_model_exclude_none=True)
def update_model_permissions(
    name: str, body: PermissionsRequest, services: ServicesDep, principal: PrincipalDep
) -> ObjectPermissions:
    return _write(services, principal, lambda s: _model(s, name), body, replace=False)


@router.get("/registered-models/{name}/permissionLevels")
def model_permission_levels(
    name: str, services: ServicesDep, principal: PrincipalDep
) -> PermissionLevels:
    _read(services, principal, lambda s: _model(s, name))
    return _levels(access.MODEL)


def _read(services: Services, principal: Principal, find: _Finder) -> ObjectPermissions:
    """Anyone who can see the object can see who else can."""
    with services.db.transaction() as session:
        found = find(session)
        current = grants.grants_on(session, found.object_type, found.object_id)
        lowest = LEVELS[found.object_type][0]
        require_level(found.object_type, current, principal, lowest, found.what)
    return _answer(found, current)


def _write(
    services: Services,
    principal: Principal,
    find: _Finder,
    body: PermissionsRequest,
    *,
    replace: bool,
) -> ObjectPermissions:
    with services.db.transaction() as session:
        found = find(session)
        before = grants.grants_on(session, found.object_type, found.object_id)
        top = top_level(found.object_type)
        require_level(found.object_type, before, principal, top, found.what)
        wanted = [_grant(session, found.object_type, entry) for entry in body.access_control_list]
        if replace:
            grants.replace_grants(session, found.object_type, found.object_id, wanted)
        else:
            for grant in wanted:
                grants.set_grant(session, found.object_type, found.object_id, grant)
        session.flush()
        after = grants.grants_on(session, found.object_type, found.object_id)
        access.record_change(
            session,
            principal,
            f"permissions.{'set' if replace else 'update'}",
            (found.object_type, found.object_id),
            services.clock.now_ms(),
            before={"grants": [_entry(g) for g in before]},
            after={"grants": [_entry(g) for g in after]},
        )
    services.controller.nudge()  # the data plane checks CAN_QUERY from its snapshot
    return _answer(found, after)


def _grant(session: Session, object_type: ObjectType, entry: AccessControlRequest) -> Grant:
    kind, name = entry.grantee()
    if entry.permission_level not in LEVELS[object_type]:
        raise InvalidParameter(
            f"permission_level '{entry.permission_level}' does not apply to a "
            f"{object_type.value}: use one of {', '.join(LEVELS[object_type])}."
        )
    if not grants.grantee_exists(session, kind, name):
        raise InvalidParameter(
            f"No {kind.value.replace('_', ' ')} is named '{name}': create it first "
            "(the SCIM API under /api/2.0/preview/scim/v2)."
        )
    return Grant(kind, name, entry.permission_level)


def _answer(found: _Object, current: list[Grant]) -> ObjectPermissions:
    entries = [
        AccessControlResponse(
            **{_FIELD[g.kind]: g.name},
            all_permissions=[Permission(permission_level=g.level)],
        )
        for g in current
    ]
    root = found.path.rsplit("/", 1)[0] + "/"
    entries.append(
        AccessControlResponse(
            group_name=ADMINS_GROUP,
            all_permissions=[
                Permission(
                    permission_level=top_level(found.object_type),
                    inherited=True,
                    inherited_from_object=[root],
                )
            ],
        )
    )
    return ObjectPermissions(
        object_id=found.path, object_type=found.object_type.value, access_control_list=entries
    )


def _levels(object_type: ObjectType) -> PermissionLevels:
    return PermissionLevels(
        permission_levels=[
            PermissionLevel(permission_level=level, description=DESCRIPTIONS[level])
            for level in LEVELS[object_type]
        ]
    )


def _entry(grant: Grant) -> dict[str, str]:
    return {_FIELD[grant.kind]: grant.name, "permission_level": grant.level}


_FIELD = {
    GranteeKind.USER: "user_name",
    GranteeKind.GROUP: "group_name",
    GranteeKind.SERVICE_PRINCIPAL: "service_principal_name",
}
