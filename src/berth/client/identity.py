"""Users, service principals, groups and tokens in the SDK: the SCIM, Token and Token
Management APIs, in their Databricks JSON shapes.

Principals and groups are found by name with a SCIM ``eq`` filter, so callers (the CLI) can
use names where the API wants ids.
"""

from __future__ import annotations

from typing import Any

from berth.client.transport import ApiError, Transport

SCIM = "/api/2.0/preview/scim/v2"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

Json = dict[str, Any]
JsonObjects = list[Json]


class _Scim:
    """What every SCIM resource shares: list with a filter, get, find by name, delete."""

    resource = ""
    noun = ""
    name_attribute = ""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self, filter: str | None = None) -> JsonObjects:
        params = {"filter": filter} if filter else {}
        found: JsonObjects = self._t.request("GET", self._path(), params=params).get(
            "Resources", []
        )
        return found

    def get(self, resource_id: str) -> Json:
        found: Json = self._t.request("GET", self._path(resource_id))
        return found

    def find(self, name: str) -> Json:
        """The one whose name is ``name``; ``ApiError`` 404 when there is none."""
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        for item in self.list(f'{self.name_attribute} eq "{quoted}"'):
            if item.get(self.name_attribute) == name:
                return item
        raise ApiError(
            "RESOURCE_DOES_NOT_EXIST",
            f"No {self.resource} has {self.name_attribute} '{name}'.",
            404,
        )

    def delete(self, resource_id: str) -> None:
        self._t.request("DELETE", self._path(resource_id))

    def _patch(self, resource_id: str, operations: JsonObjects) -> Json:
        body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
        found: Json = self._t.request("PATCH", self._path(resource_id), json=body)
        return found

    def _path(self, resource_id: str | None = None) -> str:
        base = f"{SCIM}/{self.resource}"
        return base if resource_id is None else f"{base}/{resource_id}"


class _PrincipalsApi(_Scim):
    def update(
        self, resource_id: str, *, display_name: str | None = None, active: bool | None = None
    ) -> Json:
        """Change the display name and/or activation; deactivating refuses every token of
        the principal at once (and activating accepts them again)."""
        value: Json = {}
        if display_name is not None:
            value["displayName"] = display_name
        if active is not None:
            value["active"] = active
        return self._patch(resource_id, [{"op": "replace", "value": value}])

    def _create(self, body: Json, display_name: str | None, active: bool) -> Json:
        if display_name is not None:
            body["displayName"] = display_name
        created: Json = self._t.request("POST", self._path(), json={**body, "active": active})
        return created


class UsersApi(_PrincipalsApi):
    resource = "Users"
    noun = "user"
    name_attribute = "userName"

    def create(self, user_name: str, display_name: str | None = None, active: bool = True) -> Json:
        return self._create({"userName": user_name}, display_name, active)

    def me(self) -> Json:
        """The caller, user or service principal."""
        found: Json = self._t.request("GET", f"{SCIM}/Me")
        return found


class ServicePrincipalsApi(_PrincipalsApi):
    resource = "ServicePrincipals"
    noun = "service principal"
    name_attribute = "applicationId"

    def create(
        self,
        application_id: str | None = None,
        display_name: str | None = None,
        active: bool = True,
    ) -> Json:
        """Without ``application_id`` the server makes one (a UUID)."""
        body = {} if application_id is None else {"applicationId": application_id}
        return self._create(body, display_name, active)


class GroupsApi(_Scim):
    resource = "Groups"
    noun = "group"
    name_attribute = "displayName"

    def create(self, name: str, member_ids: list[str] | None = None) -> Json:
        body = {"displayName": name, "members": [{"value": m} for m in member_ids or []]}
        created: Json = self._t.request("POST", self._path(), json=body)
        return created

    def add_members(self, group_id: str, member_ids: list[str]) -> Json:
        members = [{"value": m} for m in member_ids]
        return self._patch(group_id, [{"op": "add", "path": "members", "value": members}])

    def remove_members(self, group_id: str, member_ids: list[str]) -> Json:
        return self._patch(
            group_id,
            [{"op": "remove", "path": f'members[value eq "{m}"]'} for m in member_ids],
        )


class TokensApi:
    """The caller's own tokens, and (admins) everyone's through Token Management."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, lifetime_seconds: int | None = None, comment: str = "") -> Json:
        """``{"token_value", "token_info"}``: the value is in this answer only."""
        return self._create("/api/2.0/token/create", {}, lifetime_seconds, comment)

    def list(self) -> JsonObjects:
        found: JsonObjects = self._t.request("GET", "/api/2.0/token/list").get("token_infos", [])
        return found

    def delete(self, token_id: str) -> None:
        self._t.request("POST", "/api/2.0/token/delete", json={"token_id": token_id})

    def create_for(
        self, application_id: str, lifetime_seconds: int | None = None, comment: str = ""
    ) -> Json:
        """A token for another user (``userName``) or service principal (``applicationId``)."""
        return self._create(
            "/api/2.0/token-management/on-behalf-of/tokens",
            {"application_id": application_id},
            lifetime_seconds,
            comment,
        )

    def list_all(self, created_by_username: str | None = None) -> JsonObjects:
        params = {} if created_by_username is None else {"created_by_username": created_by_username}
        found: JsonObjects = self._t.request(
            "GET", "/api/2.0/token-management/tokens", params=params
        ).get("token_infos", [])
        return found

    def get_any(self, token_id: str) -> Json:
        info: Json = self._t.request("GET", f"/api/2.0/token-management/tokens/{token_id}")[
            "token_info"
        ]
        return info

    def delete_any(self, token_id: str) -> None:
        self._t.request("DELETE", f"/api/2.0/token-management/tokens/{token_id}")

    def _create(self, path: str, body: Json, lifetime_seconds: int | None, comment: str) -> Json:
        if lifetime_seconds is not None:
            body["lifetime_seconds"] = lifetime_seconds
        created: Json = self._t.request("POST", path, json={**body, "comment": comment})
        return created
