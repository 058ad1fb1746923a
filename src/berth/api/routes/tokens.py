"""Routes of Databricks' Token API (``/api/2.0/token``: the caller's own tokens) and Token
Management API (``/api/2.0/token-management``: every token, admins only).

A token's value is in one answer only: the one to its creation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from berth.api.deps import PrincipalDep, ServicesDep
from berth.api.schemas.identity import (
    CreateOboTokenRequest,
    CreateOboTokenResponse,
    CreateTokenRequest,
    CreateTokenResponse,
    DeleteTokenRequest,
    GetTokenResponse,
    ListPublicTokensResponse,
    ListTokensResponse,
    PublicTokenInfo,
    TokenInfoOut,
)
from berth.identity.policy import require_admin
from berth.identity.token_manager import TokenManager


def token_manager(services: ServicesDep) -> TokenManager:
    return TokenManager(services.db, services.clock, services.controller.nudge)


def admins_only(caller: PrincipalDep) -> None:
    """Checked before the body is read, so a non-admin hears 403 whatever it sent."""
    require_admin(caller, "manage others' tokens")


router = APIRouter(tags=["tokens"])
management = APIRouter(prefix="/api/2.0/token-management", dependencies=[Depends(admins_only)])


TokensDep = Annotated[TokenManager, Depends(token_manager)]


@router.post("/api/2.0/token/create")
def create_token(
    body: CreateTokenRequest, tokens: TokensDep, caller: PrincipalDep
) -> CreateTokenResponse:
    issued = tokens.create(caller, body.lifetime_seconds, body.comment)
    return CreateTokenResponse(token_value=issued.value, token_info=PublicTokenInfo.of(issued.info))


@router.get("/api/2.0/token/list")
def list_tokens(tokens: TokensDep, caller: PrincipalDep) -> ListPublicTokensResponse:
    """The caller's own tokens, expired ones included (their ``expiry_time`` tells)."""
    return ListPublicTokensResponse(
        token_infos=[PublicTokenInfo.of(info) for info in tokens.list_own(caller)]
    )


@router.post("/api/2.0/token/delete")
def delete_token(
    body: DeleteTokenRequest, tokens: TokensDep, caller: PrincipalDep
) -> dict[str, str]:
    tokens.delete_own(caller, body.token_id)
    return {}


@management.post("/on-behalf-of/tokens")
def create_obo_token(
    body: CreateOboTokenRequest, tokens: TokensDep, caller: PrincipalDep
) -> CreateOboTokenResponse:
    issued = tokens.create_on_behalf(
        caller, body.application_id, body.lifetime_seconds, body.comment
    )
    return CreateOboTokenResponse(token_value=issued.value, token_info=TokenInfoOut.of(issued.info))


@management.get("/tokens")
def list_all_tokens(
    tokens: TokensDep,
    caller: PrincipalDep,
    created_by_id: Annotated[
        int | None, Query(ge=0, le=2**53, description="Id of the maker.")
    ] = None,
    created_by_username: Annotated[str | None, Query(description="Name of the maker.")] = None,
) -> ListTokensResponse:
    found = tokens.list_all(caller, created_by_id, created_by_username)
    return ListTokensResponse(token_infos=[TokenInfoOut.of(info) for info in found])


@management.get("/tokens/{token_id}")
def get_token(token_id: str, tokens: TokensDep, caller: PrincipalDep) -> GetTokenResponse:
    return GetTokenResponse(token_info=TokenInfoOut.of(tokens.get(caller, token_id)))


@management.delete("/tokens/{token_id}")
def revoke_token(token_id: str, tokens: TokensDep, caller: PrincipalDep) -> dict[str, str]:
    tokens.delete(caller, token_id)
    return {}


router.include_router(management)
