"""Wire types of the secrets resource, in the JSON shapes of the Databricks Secrets API."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import BaseModel, Field

from berth.api.schemas.strict import Strict
from berth.core.errors import InvalidParameter
from berth.store.secrets import ScopeInfo, SecretInfo

BackendType = Literal["DATABRICKS"]
BACKEND_TYPE: BackendType = "DATABRICKS"


class CreateScopeRequest(Strict):
    scope: str
    initial_manage_principal: str | None = None
    scope_backend_type: BackendType = BACKEND_TYPE


class ScopeRequest(Strict):
    scope: str


class PutSecretRequest(Strict):
    """Exactly one of the values; neither is ever echoed, logged or put in a message."""

    scope: str
    key: str
    string_value: str | None = Field(None, repr=False)
    bytes_value: str | None = Field(None, repr=False)

    def value(self) -> bytes:
        if (self.string_value is None) == (self.bytes_value is None):
            raise InvalidParameter(
                "Give exactly one of string_value and bytes_value (base64) for secret "
                f"'{self.key}'."
            )
        if self.string_value is not None:
            return self.string_value.encode("utf-8")
        assert self.bytes_value is not None
        try:
            return base64.b64decode(self.bytes_value, validate=True)
        except (binascii.Error, ValueError):
            # Not chained: the decoder's message may quote the value.
            raise InvalidParameter(
                f"bytes_value of secret '{self.key}' is not valid base64: encode the bytes "
                "with standard base64 (RFC 4648, '+' and '/', '=' padding)."
            ) from None


class SecretRequest(Strict):
    scope: str
    key: str


class SecretScope(BaseModel):
    name: str
    backend_type: BackendType = BACKEND_TYPE

    @classmethod
    def of(cls, info: ScopeInfo) -> SecretScope:
        return cls(name=info.name)


class ListScopesResponse(BaseModel):
    scopes: list[SecretScope]


class SecretMetadata(BaseModel):
    key: str
    last_updated_timestamp: int

    @classmethod
    def of(cls, info: SecretInfo) -> SecretMetadata:
        return cls(key=info.key, last_updated_timestamp=info.last_updated)


class ListSecretsResponse(BaseModel):
    secrets: list[SecretMetadata]


AclPermission = Literal["READ", "WRITE", "MANAGE"]


class PutAclRequest(Strict):
    scope: str
    principal: str
    permission: AclPermission


class AclRequest(Strict):
    scope: str
    principal: str


class AclItem(BaseModel):
    principal: str
    permission: AclPermission


class ListAclsResponse(BaseModel):
    items: list[AclItem]
