"""Wire types of the permissions API (``/api/2.0/permissions/...``), as Databricks has them."""

from __future__ import annotations

from pydantic import BaseModel, model_validator

from berth.api.schemas.strict import Strict
from berth.core.permissions import GranteeKind

NAME_FIELDS = {
    "user_name": GranteeKind.USER,
    "group_name": GranteeKind.GROUP,
    "service_principal_name": GranteeKind.SERVICE_PRINCIPAL,
}


class AccessControlRequest(Strict):
    user_name: str | None = None
    group_name: str | None = None
    service_principal_name: str | None = None
    permission_level: str

    @model_validator(mode="after")
    def _one_grantee(self) -> AccessControlRequest:
        named = [field for field in NAME_FIELDS if getattr(self, field) is not None]
        if len(named) != 1:
            raise ValueError(
                "each access_control_list entry names exactly one of user_name, group_name "
                f"and service_principal_name; got {', '.join(named) or 'none'}"
            )
        return self

    def grantee(self) -> tuple[GranteeKind, str]:
        for field, kind in NAME_FIELDS.items():
            value = getattr(self, field)
            if value is not None:
                return kind, str(value)
        raise AssertionError("validated to name one grantee")


class PermissionsRequest(Strict):
    access_control_list: list[AccessControlRequest] = []


class Permission(BaseModel):
    permission_level: str
    inherited: bool = False
    inherited_from_object: list[str] | None = None


class AccessControlResponse(BaseModel):
    user_name: str | None = None
    group_name: str | None = None
    service_principal_name: str | None = None
    all_permissions: list[Permission]


class ObjectPermissions(BaseModel):
    object_id: str
    object_type: str
    access_control_list: list[AccessControlResponse]


class PermissionLevel(BaseModel):
    permission_level: str
    description: str


class PermissionLevels(BaseModel):
    permission_levels: list[PermissionLevel]
