"""Routes of the secrets resource: ``/api/2.0/secrets``, as the Databricks Secrets API,
with its per-scope ACLs (``/acls/put|delete|get|list``).

No route answers a secret's value; values only go in.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from berth.api.deps import PrincipalDep, ServicesDep
from berth.api.schemas.secrets import (
    AclItem,
    AclRequest,
    CreateScopeRequest,
    ListAclsResponse,
    ListScopesResponse,
    ListSecretsResponse,
    PutAclRequest,
    PutSecretRequest,
    ScopeRequest,
    SecretMetadata,
    SecretRequest,
    SecretScope,
)
from berth.core.errors import NotFound

router = APIRouter(prefix="/api/2.0/secrets", tags=["secrets"])


@router.post("/scopes/create")
def create_scope(
    body: CreateScopeRequest, services: ServicesDep, principal: PrincipalDep
) -> dict[str, str]:
    services.secrets.create_scope(principal, body.scope, body.initial_manage_principal)
    return {}


@router.get("/scopes/list")
def list_scopes(services: ServicesDep) -> ListScopesResponse:
    return ListScopesResponse(scopes=[SecretScope.of(s) for s in services.secrets.list_scopes()])


@router.post("/scopes/delete")
def delete_scope(
    body: ScopeRequest, services: ServicesDep, principal: PrincipalDep
) -> dict[str, str]:
    services.secrets.delete_scope(principal, body.scope)
    return {}


@router.post("/put")
def put_secret(
    body: PutSecretRequest, services: ServicesDep, principal: PrincipalDep
) -> dict[str, str]:
    services.secrets.put_secret(principal, body.scope, body.key, body.value())
    return {}


@router.get("/list")
def list_secrets(
    scope: Annotated[str, Query(description="The scope whose keys to list.")],
    services: ServicesDep,
    principal: PrincipalDep,
) -> ListSecretsResponse:
    found = services.secrets.list_secrets(principal, scope)
    return ListSecretsResponse(secrets=[SecretMetadata.of(info) for info in found])


@router.post("/delete")
def delete_secret(
    body: SecretRequest, services: ServicesDep, principal: PrincipalDep
) -> dict[str, str]:
    services.secrets.delete_secret(principal, body.scope, body.key)
    return {}


@router.post("/acls/put")
def put_acl(body: PutAclRequest, services: ServicesDep, principal: PrincipalDep) -> dict[str, str]:
    services.secrets.put_acl(principal, body.scope, body.principal, body.permission)
    return {}


@router.post("/acls/delete")
def delete_acl(body: AclRequest, services: ServicesDep, principal: PrincipalDep) -> dict[str, str]:
    services.secrets.delete_acl(principal, body.scope, body.principal)
    return {}


@router.get("/acls/list")
def list_acls(
    scope: Annotated[str, Query(description="The scope whose ACLs to list.")],
    services: ServicesDep,
    principal: PrincipalDep,
) -> ListAclsResponse:
    found = services.secrets.list_acls(principal, scope)
    return ListAclsResponse(items=[AclItem(principal=g.name, permission=g.level) for g in found])


@router.get("/acls/get")
def get_acl(
    scope: Annotated[str, Query(description="The scope.")],
    name: Annotated[str, Query(alias="principal", description="The principal.")],
    services: ServicesDep,
    principal: PrincipalDep,
) -> AclItem:
    for grant in services.secrets.list_acls(principal, scope):
        if grant.name == name:
            return AclItem(principal=grant.name, permission=grant.level)
    raise NotFound(f"Secret scope '{scope}' has no ACL for '{name}'.")
