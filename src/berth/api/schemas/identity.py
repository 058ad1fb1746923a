"""Wire types of the identity routes: the SCIM 2.0 subset of Databricks' workspace SCIM API
(Users, ServicePrincipals, Groups, Me) and the Token and Token Management APIs.

SCIM PATCH bodies are read here into plain changes (``PrincipalChanges``, ``MemberChanges``),
so the identity service never sees SCIM's operation syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from berth.api.schemas.strict import Strict
from berth.core.errors import InvalidParameter
from berth.core.permissions import ENTITLEMENTS
from berth.core.principal import PrincipalKind
from berth.store.groups import GroupInfo
from berth.store.principals import PrincipalInfo
from berth.store.tokens import TokenInfo

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
SERVICE_PRINCIPAL_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

_SCHEMAS = {
    PrincipalKind.USER: USER_SCHEMA,
    PrincipalKind.SERVICE_PRINCIPAL: SERVICE_PRINCIPAL_SCHEMA,
}
_RESOURCES = {PrincipalKind.USER: "Users", PrincipalKind.SERVICE_PRINCIPAL: "ServicePrincipals"}

T = TypeVar("T")


class ScimBody(Strict):
    """A SCIM request body: camelCase on the wire; ``schemas`` and ``id`` are accepted and
    ignored, as the id is the path's and the schema is implied by the route."""

    schemas: list[str] | None = None
    id: str | None = None


class Entitlement(BaseModel):
    """``{"value": "run-model-code"}``."""

    model_config = ConfigDict(extra="ignore")
    value: str

    @field_validator("value")
    @classmethod
    def _known(cls, value: str) -> str:
        return known(value)


def known(value: str) -> str:
    if value not in ENTITLEMENTS:
        raise InvalidParameter(
            f"Unknown entitlement {value!r}: berth knows {', '.join(sorted(ENTITLEMENTS))}."
        )
    return value


class PrincipalBody(ScimBody):
    """POST and PUT of a user (``userName``) or a service principal (``applicationId``)."""

    user_name: str | None = Field(None, alias="userName")
    application_id: str | None = Field(None, alias="applicationId")
    display_name: str | None = Field(None, alias="displayName")
    active: bool | None = None
    entitlements: list[Entitlement] | None = None

    def name(self, kind: PrincipalKind) -> str | None:
        """The berth name given for ``kind``; the other kind's name field is refused."""
        if kind is PrincipalKind.USER:
            given, other = self.user_name, ("applicationId", self.application_id)
        else:
            given, other = self.application_id, ("userName", self.user_name)
        if other[1] is not None:
            raise InvalidParameter(
                f"{other[0]} belongs to the other kind of principal: a user has a userName, "
                "a service principal an applicationId."
            )
        return given


class MemberValue(BaseModel):
    """A SCIM ComplexValue naming a member: only ``value`` (the principal's id) counts."""

    model_config = ConfigDict(extra="forbid")
    value: str
    display: str | None = None
    ref: str | None = Field(None, alias="$ref")
    type: str | None = None
    primary: bool | None = None


class GroupBody(ScimBody):
    display_name: str = Field(alias="displayName")
    members: list[MemberValue] | None = None
    entitlements: list[Entitlement] | None = None

    def member_ids(self) -> list[int]:
        return member_ids(self.members or [])


class PatchOperation(Strict):
    op: Literal["add", "remove", "replace"]
    path: str | None = None
    value: Any = None

    @field_validator("op", mode="before")
    @classmethod
    def _lower(cls, op: object) -> object:
        """Azure AD and others send ``Add``/``Replace``: SCIM operation names ignore case."""
        return op.lower() if isinstance(op, str) else op


class PatchBody(ScimBody):
    operations: list[PatchOperation] = Field(alias="Operations")


@dataclass(frozen=True, slots=True)
class PrincipalChanges:
    display_name: str | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class MemberChanges:
    name: str | None = None
    add: tuple[int, ...] = ()
    remove: tuple[int, ...] = ()
    replace: tuple[int, ...] | None = None


def principal_changes(body: PatchBody) -> PrincipalChanges:
    """``add``/``replace`` of ``displayName`` and ``active``, by path or as a value object."""
    found: dict[str, Any] = {}
    for operation in body.operations:
        if operation.op == "remove":
            raise InvalidParameter(
                f"Cannot remove '{operation.path}' of a user or service principal: replace "
                "displayName or active instead."
            )
        found.update(_attributes(operation, {"displayname", "active"}))
    display_name = found.get("displayname")
    if display_name is not None and not isinstance(display_name, str):
        raise InvalidParameter(f"displayName must be a string, got {display_name!r}.")
    return PrincipalChanges(display_name, _active(found.get("active")))


_MEMBER_PATH = re.compile(r'members\[value eq "?([^"\]]*)"?\]', re.IGNORECASE)


def member_changes(body: PatchBody) -> MemberChanges:
    """Members added, removed (``members[value eq "id"]`` or a list of values) or replaced,
    and ``displayName`` replaced."""
    changes = MemberChanges()
    for operation in body.operations:
        changes = _member_change(changes, operation)
    return changes


def _member_change(changes: MemberChanges, operation: PatchOperation) -> MemberChanges:
    path = (operation.path or "").strip()
    if operation.op == "remove":
        selected = _MEMBER_PATH.fullmatch(path)
        if selected is not None:
            return _with(changes, remove=(_member_id(selected[1]),))
        if path.lower() != "members":
            raise InvalidParameter(
                f"Cannot remove {path!r} of a group: remove members with path "
                "'members[value eq \"<id>\"]' or path 'members' and a list of values."
            )
        if operation.value is None:
            return _with(changes, replace=())
        return _with(changes, remove=tuple(member_ids(_members(operation.value))))
    found = _attributes(operation, {"displayname", "members"})
    if "displayname" in found:
        changes = _with(changes, name=str(found["displayname"]))
    if "members" not in found:
        return changes
    given = tuple(member_ids(_members(found["members"])))
    return _with(changes, replace=given) if operation.op == "replace" else _with(changes, add=given)


def _with(
    changes: MemberChanges,
    *,
    name: str | None = None,
    add: tuple[int, ...] = (),
    remove: tuple[int, ...] = (),
    replace: tuple[int, ...] | None = None,
) -> MemberChanges:
    """``changes`` followed by one more; a later replace wins over earlier adds/removes."""
    if replace is not None:
        return MemberChanges(name or changes.name, (), (), replace)
    if changes.replace is not None:
        kept = [m for m in changes.replace if m not in remove]
        return MemberChanges(name or changes.name, (), (), (*kept, *add))
    return MemberChanges(
        name or changes.name, (*changes.add, *add), (*changes.remove, *remove), None
    )


def _attributes(operation: PatchOperation, allowed: set[str]) -> dict[str, Any]:
    """The attributes an ``add``/``replace`` sets, by lower-cased name."""
    if operation.path:
        values = {operation.path: operation.value}
    elif isinstance(operation.value, dict):
        values = operation.value
    else:
        raise InvalidParameter(
            f"A '{operation.op}' operation without a path needs an object value, got "
            f"{operation.value!r}."
        )
    found = {key.lower(): value for key, value in values.items()}
    unknown = sorted(set(found) - allowed)
    if unknown:
        raise InvalidParameter(
            f"Cannot {operation.op} {', '.join(unknown)}: berth's SCIM PATCH changes only "
            f"{', '.join(sorted(allowed))}."
        )
    return found


def _active(value: object) -> bool | None:
    """SCIM clients send ``active`` as a JSON boolean or as ``"True"``/``"False"``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParameter(f"active must be true or false, got {value!r}.")


def _members(value: object) -> list[MemberValue]:
    items = value if isinstance(value, list) else [value]
    try:
        return [MemberValue.model_validate(item) for item in items]
    except ValueError as exc:
        raise InvalidParameter(
            'Group members are given as [{"value": "<user or service principal id>"}].'
        ) from exc


def member_ids(members: list[MemberValue]) -> list[int]:
    return [_member_id(m.value) for m in members]


def _member_id(value: str) -> int:
    try:
        found = int(value)
        if not 0 <= found < 2**53:
            raise ValueError(value)
        return found
    except ValueError:
        raise InvalidParameter(
            f"Member {value!r} is not an id: give the id of a user or service principal "
            "(the Users and ServicePrincipals APIs answer it)."
        ) from None


class ScimRef(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    value: str
    display: str
    ref: str = Field(alias="$ref")


class ScimValue(BaseModel):
    """A SCIM multi-valued attribute's item, e.g. an entitlement."""

    value: str


class ScimPrincipal(BaseModel):
    """A user or a service principal; ``Me`` gives a service principal a ``userName`` too,
    as Databricks does, so clients that read the caller's ``userName`` work for both."""

    model_config = ConfigDict(populate_by_name=True)
    schemas: list[str]
    id: str
    user_name: str | None = Field(None, alias="userName")
    application_id: str | None = Field(None, alias="applicationId")
    display_name: str = Field(alias="displayName")
    active: bool
    groups: list[ScimRef]
    entitlements: list[ScimValue] = []

    @classmethod
    def of(cls, info: PrincipalInfo, *, me: bool = False) -> ScimPrincipal:
        is_user = info.kind is PrincipalKind.USER
        return cls(
            schemas=[_SCHEMAS[info.kind]],
            id=str(info.id),
            user_name=info.name if is_user or me else None,
            application_id=None if is_user else info.name,
            display_name=info.display_name or info.name,
            active=info.active,
            groups=[
                ScimRef(value=str(g.id), display=g.name, ref=f"Groups/{g.id}") for g in info.groups
            ],
        )


class ScimGroup(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    schemas: list[str] = [GROUP_SCHEMA]
    id: str
    display_name: str = Field(alias="displayName")
    members: list[ScimRef]
    entitlements: list[ScimValue] = []
    meta: dict[str, str] = {"resourceType": "Group"}

    @classmethod
    def of(cls, info: GroupInfo) -> ScimGroup:
        return cls(
            id=str(info.id),
            display_name=info.name,
            members=[
                ScimRef(
                    value=str(m.id),
                    display=m.display_name or m.name,
                    ref=f"{_RESOURCES[m.kind]}/{m.id}",
                )
                for m in info.members
            ],
        )


class ScimList(BaseModel, Generic[T]):
    model_config = ConfigDict(populate_by_name=True)
    schemas: list[str] = [LIST_SCHEMA]
    total_results: int = Field(alias="totalResults")
    start_index: int = Field(alias="startIndex")
    items_per_page: int = Field(alias="itemsPerPage")
    resources: list[T] = Field(alias="Resources")

    @classmethod
    def of(cls, total: int, start_index: int, resources: list[T]) -> ScimList[T]:
        return cls(
            total_results=total,
            start_index=start_index,
            items_per_page=len(resources),
            resources=resources,
        )


# Tokens


class CreateTokenRequest(Strict):
    lifetime_seconds: int | None = Field(None, le=100 * 365 * 86_400)
    comment: str = ""


class CreateOboTokenRequest(CreateTokenRequest):
    application_id: str = Field(
        description="The userName of a user or the applicationId of a service principal."
    )


class DeleteTokenRequest(Strict):
    token_id: str


class PublicTokenInfo(BaseModel):
    """A token as its owner sees it; ``expiry_time`` is -1 for a token that never expires."""

    token_id: str
    creation_time: int
    expiry_time: int
    comment: str

    @classmethod
    def of(cls, info: TokenInfo) -> PublicTokenInfo:
        return cls(**_public(info))


class TokenInfoOut(PublicTokenInfo):
    """A token as admins see it: also who owns it and who made it."""

    owner_id: int
    created_by_id: int | None
    created_by_username: str | None

    @classmethod
    def of(cls, info: TokenInfo) -> TokenInfoOut:
        return cls(
            **_public(info),
            owner_id=info.owner_id,
            created_by_id=info.created_by_id,
            created_by_username=info.created_by,
        )


def _public(info: TokenInfo) -> dict[str, Any]:
    return {
        "token_id": info.token_id,
        "creation_time": info.created_at,
        "expiry_time": -1 if info.expires_at is None else info.expires_at,
        "comment": info.comment,
    }


class CreateTokenResponse(BaseModel):
    token_value: str
    token_info: PublicTokenInfo


class CreateOboTokenResponse(BaseModel):
    token_value: str
    token_info: TokenInfoOut


class ListPublicTokensResponse(BaseModel):
    token_infos: list[PublicTokenInfo]


class ListTokensResponse(BaseModel):
    token_infos: list[TokenInfoOut]


class GetTokenResponse(BaseModel):
    token_info: TokenInfoOut
