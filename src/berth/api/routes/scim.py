"""Routes of Databricks' workspace SCIM API subset: ``/api/2.0/preview/scim/v2`` Users,
ServicePrincipals and Groups (admins only) and Me (everyone).

Ids on the wire are the stored integer ids as strings; an id that is not a number is as
unknown as a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from berth.api.deps import PrincipalDep, ServicesDep
from berth.api.schemas.entitlements import EntitlementChanges, split_patch, values
from berth.api.schemas.identity import (
    GroupBody,
    PatchBody,
    PrincipalBody,
    ScimGroup,
    ScimList,
    ScimPrincipal,
    ScimValue,
    member_changes,
    principal_changes,
)
from berth.core.errors import NotFound
from berth.core.principal import Principal, PrincipalKind
from berth.identity.directory import Directory
from berth.identity.filters import Field, parse_filter
from berth.identity.policy import require_admin
from berth.store.groups import GroupInfo
from berth.store.principals import NOUNS, PrincipalInfo

BASE = "/api/2.0/preview/scim/v2"
MAX_COUNT = 10_000
MAX_ID_DIGITS = 15
"""Longer ids exist nowhere (and would overflow the store's integers)."""


def directory(services: ServicesDep) -> Directory:
    return Directory(services.db, services.clock, services.controller.nudge)


def admins_only(caller: PrincipalDep) -> None:
    """Checked before the body is read, so a non-admin hears 403 whatever it sent."""
    require_admin(caller, "manage users, service principals and groups")


router = APIRouter(prefix=BASE, tags=["scim"])
admin_router = APIRouter(dependencies=[Depends(admins_only)])


DirectoryDep = Annotated[Directory, Depends(directory)]
Filter = Annotated[
    str | None, Query(description='One comparison, e.g. userName eq "alice@example.com".')
]
StartIndex = Annotated[
    int, Query(alias="startIndex", le=2**31, description="1-based index of the first.")
]
Count = Annotated[int, Query(le=2**31, description="At most this many resources (up to 10000).")]


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: str | None
    start: int
    offset: int
    limit: int


def list_query(
    filter: Filter = None, start_index: StartIndex = 1, count: Count = MAX_COUNT
) -> ListQuery:
    """SCIM paging: ``startIndex`` counts from 1 (a start below 1 means 1, RFC 7644)."""
    start = max(start_index, 1)
    return ListQuery(filter, start, start - 1, min(max(count, 0), MAX_COUNT))


ListQueryDep = Annotated[ListQuery, Depends(list_query)]


def parse_id(text: str, noun: str) -> int:
    if not text.isdigit() or len(text) > MAX_ID_DIGITS:
        raise NotFound(f"{noun} with id '{text}' does not exist.")
    return int(text)


def _principal_routes(resource: str, kind: PrincipalKind, attributes: dict[str, Field]) -> None:
    """Users and ServicePrincipals differ only in kind and in the name attribute."""
    noun = NOUNS[kind]
    path = f"/{resource}/{{principal_id}}"
    tags: list[str | Enum] = [resource]

    @admin_router.post(
        f"/{resource}",
        name=f"create_{resource}",
        response_model_exclude_none=True,
        tags=tags,
    )
    def create(body: PrincipalBody, found: DirectoryDep, caller: PrincipalDep) -> ScimPrincipal:
        active = True if body.active is None else body.active
        info = found.create_principal(caller, kind, body.name(kind), body.display_name, active)
        given = values(body.entitlements)
        if given:
            found.change_entitlements(caller, principal_id=info.id, replace=given)
        return _principal(found, info)

    @admin_router.get(
        f"/{resource}", name=f"list_{resource}", response_model_exclude_none=True, tags=tags
    )
    def list_(
        found: DirectoryDep, caller: PrincipalDep, query: ListQueryDep
    ) -> ScimList[ScimPrincipal]:
        match = parse_filter(query.filter, attributes)
        listed = found.list_principals(caller, kind, match, query.offset, query.limit)
        return ScimList.of(listed.total, query.start, [_principal(found, i) for i in listed.items])

    @admin_router.get(path, name=f"get_{resource}", response_model_exclude_none=True, tags=tags)
    def get(principal_id: str, found: DirectoryDep, caller: PrincipalDep) -> ScimPrincipal:
        return _principal(found, found.get_principal(caller, kind, parse_id(principal_id, noun)))

    @admin_router.put(path, name=f"update_{resource}", response_model_exclude_none=True, tags=tags)
    def update(
        principal_id: str, body: PrincipalBody, found: DirectoryDep, caller: PrincipalDep
    ) -> ScimPrincipal:
        """Fields left out keep their values."""
        info = found.update_principal(
            caller,
            kind,
            parse_id(principal_id, noun),
            name=body.name(kind),
            display_name=body.display_name,
            active=body.active,
        )
        given = values(body.entitlements)
        if given is not None:
            found.change_entitlements(caller, principal_id=info.id, replace=given)
        return _principal(found, info)

    @admin_router.patch(path, name=f"patch_{resource}", response_model_exclude_none=True, tags=tags)
    def patch(
        principal_id: str, body: PatchBody, found: DirectoryDep, caller: PrincipalDep
    ) -> ScimPrincipal:
        rest, granted = split_patch(body)
        changes = principal_changes(rest)
        info = found.update_principal(
            caller,
            kind,
            parse_id(principal_id, noun),
            display_name=changes.display_name,
            active=changes.active,
        )
        _entitle(found, caller, granted, principal_id=info.id)
        return _principal(found, info)

    @admin_router.delete(path, name=f"delete_{resource}", status_code=204, tags=tags)
    def delete(principal_id: str, found: DirectoryDep, caller: PrincipalDep) -> Response:
        found.delete_principal(caller, kind, parse_id(principal_id, noun))
        return Response(status_code=204)


_principal_routes(
    "Users",
    PrincipalKind.USER,
    {"userName": "name", "displayName": "display_name", "id": "id"},
)
_principal_routes(
    "ServicePrincipals",
    PrincipalKind.SERVICE_PRINCIPAL,
    {"applicationId": "name", "displayName": "display_name", "id": "id"},
)


@router.get("/Me", response_model_exclude_none=True, tags=["Me"])
def me(
    found: DirectoryDep, caller: PrincipalDep, services: ServicesDep, response: Response
) -> ScimPrincipal:
    """The caller, user or service principal; open to everyone. ``X-Databricks-Org-Id`` is
    the workspace id that ``/.well-known/databricks-config`` answers too."""
    response.headers["X-Databricks-Org-Id"] = services.settings.server.workspace_id
    info = found.me(caller)
    return ScimPrincipal.of(info, me=True).model_copy(
        update={"entitlements": _values(found.entitlements(principal_id=info.id))}
    )


GROUP_ATTRIBUTES: dict[str, Field] = {"displayName": "name", "id": "id"}


@admin_router.post("/Groups", tags=["Groups"])
def create_group(body: GroupBody, found: DirectoryDep, caller: PrincipalDep) -> ScimGroup:
    info = found.create_group(caller, body.display_name, body.member_ids())
    given = values(body.entitlements)
    if given:
        found.change_entitlements(caller, group_id=info.id, replace=given)
    return _group(found, info)


@admin_router.get("/Groups", tags=["Groups"])
def list_groups(
    found: DirectoryDep, caller: PrincipalDep, query: ListQueryDep
) -> ScimList[ScimGroup]:
    match = parse_filter(query.filter, GROUP_ATTRIBUTES)
    listed = found.list_groups(caller, match, query.offset, query.limit)
    return ScimList.of(listed.total, query.start, [_group(found, i) for i in listed.items])


@admin_router.get("/Groups/{group_id}", tags=["Groups"])
def get_group(group_id: str, found: DirectoryDep, caller: PrincipalDep) -> ScimGroup:
    return _group(found, found.get_group(caller, parse_id(group_id, "Group")))


@admin_router.put("/Groups/{group_id}", tags=["Groups"])
def update_group(
    group_id: str, body: GroupBody, found: DirectoryDep, caller: PrincipalDep
) -> ScimGroup:
    """Replace the members (left out: kept); the name may only repeat the group's own."""
    replace = None if body.members is None else body.member_ids()
    info = found.change_members(
        caller, parse_id(group_id, "Group"), name=body.display_name, replace=replace
    )
    given = values(body.entitlements)
    if given is not None:
        found.change_entitlements(caller, group_id=info.id, replace=given)
    return _group(found, info)


@admin_router.patch("/Groups/{group_id}", tags=["Groups"])
def patch_group(
    group_id: str, body: PatchBody, found: DirectoryDep, caller: PrincipalDep
) -> ScimGroup:
    rest, granted = split_patch(body)
    changes = member_changes(rest)
    info = found.change_members(
        caller,
        parse_id(group_id, "Group"),
        name=changes.name,
        add=changes.add,
        remove=changes.remove,
        replace=changes.replace,
    )
    _entitle(found, caller, granted, group_id=info.id)
    return _group(found, info)


@admin_router.delete("/Groups/{group_id}", status_code=204, tags=["Groups"])
def delete_group(group_id: str, found: DirectoryDep, caller: PrincipalDep) -> Response:
    found.delete_group(caller, parse_id(group_id, "Group"))
    return Response(status_code=204)


def _entitle(
    found: Directory,
    caller: Principal,
    granted: EntitlementChanges,
    *,
    principal_id: int | None = None,
    group_id: int | None = None,
) -> None:
    """A PATCH's entitlement operations, when it has any."""
    if granted.any:
        found.change_entitlements(
            caller,
            principal_id=principal_id,
            group_id=group_id,
            add=granted.add,
            remove=granted.remove,
            replace=granted.replace,
        )


def _values(held: list[str]) -> list[ScimValue]:
    return [ScimValue(value=value) for value in held]


def _principal(found: Directory, info: PrincipalInfo) -> ScimPrincipal:
    held = found.entitlements(principal_id=info.id)
    return ScimPrincipal.of(info).model_copy(update={"entitlements": _values(held)})


def _group(found: Directory, info: GroupInfo) -> ScimGroup:
    held = found.entitlements(group_id=info.id)
    return ScimGroup.of(info).model_copy(update={"entitlements": _values(held)})


router.include_router(admin_router)
