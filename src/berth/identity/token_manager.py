"""Personal access tokens: each principal's own, and every token for admins.

A token's value leaves only once, in the answer to its creation; every change is audited in
its own transaction and then ``on_change`` is called, so the controller republishes the
data plane's token snapshot at once.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from berth.core.clock import Clock
from berth.core.errors import InvalidParameter, NotFound
from berth.core.principal import Principal
from berth.identity.policy import check_lifetime, require_admin
from berth.identity.tokens import IssuedToken, issue
from berth.store import audit, principals
from berth.store import tokens as token_store
from berth.store.db import Database
from berth.store.principals import PrincipalInfo
from berth.store.tables import Json
from berth.store.tokens import TokenInfo

TOKEN = "token"


class TokenManager:
    def __init__(self, db: Database, clock: Clock, on_change: Callable[[], None]) -> None:
        self._db = db
        self._clock = clock
        self._on_change = on_change

    def create(self, caller: Principal, lifetime_seconds: int | None, comment: str) -> IssuedToken:
        """A new token for the caller itself."""
        return self._issue(caller, caller.name, lifetime_seconds, comment)

    def create_on_behalf(
        self, caller: Principal, owner: str, lifetime_seconds: int | None, comment: str
    ) -> IssuedToken:
        """A new token for the user or service principal named ``owner`` (admins only)."""
        require_admin(caller, "create tokens on behalf of others")
        return self._issue(caller, owner, lifetime_seconds, comment)

    def list_own(self, caller: Principal) -> list[TokenInfo]:
        with self._db.transaction() as session:
            return token_store.list_tokens(session, owner_id=_principal(session, caller.name).id)

    def delete_own(self, caller: Principal, token_id: str) -> None:
        """Revoke one of the caller's own tokens; another's is as unknown as a missing one."""
        with self._db.transaction() as session:
            info = token_store.get_token(session, token_id)
            if info.owner != caller.name:
                raise NotFound(f"Token with id '{token_id}' does not exist.")
            self._delete(session, caller, info)
        self._on_change()

    def list_all(
        self, caller: Principal, created_by_id: int | None, created_by_username: str | None
    ) -> list[TokenInfo]:
        """Every token, or those made by one principal (admins only)."""
        require_admin(caller, "list every token")
        with self._db.transaction() as session:
            if created_by_id is not None:
                maker = principals.principal_with_id(session, created_by_id)
                if maker is None or created_by_username not in (None, maker.name):
                    return []
                created_by_username = maker.name
            return token_store.list_tokens(session, created_by=created_by_username)

    def get(self, caller: Principal, token_id: str) -> TokenInfo:
        require_admin(caller, "read others' tokens")
        with self._db.transaction() as session:
            return token_store.get_token(session, token_id)

    def delete(self, caller: Principal, token_id: str) -> None:
        """Revoke any token (admins only)."""
        require_admin(caller, "revoke others' tokens")
        with self._db.transaction() as session:
            self._delete(session, caller, token_store.get_token(session, token_id))
        self._on_change()

    def _issue(
        self, caller: Principal, owner: str, lifetime_seconds: int | None, comment: str
    ) -> IssuedToken:
        check_lifetime(lifetime_seconds)
        now = self._clock.now_ms()
        expires_at = None if lifetime_seconds is None else now + lifetime_seconds * 1000
        with self._db.transaction() as session:
            found = _principal(session, owner)
            if not found.active:
                raise InvalidParameter(
                    f"'{owner}' is deactivated, so a token of theirs would be refused: "
                    "activate them first (SCIM PATCH active=true)."
                )
            issued = issue(
                session,
                found.id,
                comment=comment,
                now_ms=now,
                expires_at=expires_at,
                created_by=caller.name,
            )
            audit.record(
                session,
                actor=caller.name,
                action="tokens.create",
                object_type=TOKEN,
                object_id=issued.info.token_id,
                now_ms=now,
                after=audit_view(issued.info),
            )
        self._on_change()
        return issued

    def _delete(self, session: Session, caller: Principal, info: TokenInfo) -> None:
        token_store.delete_token(session, info.token_id)
        audit.record(
            session,
            actor=caller.name,
            action="tokens.delete",
            object_type=TOKEN,
            object_id=info.token_id,
            now_ms=self._clock.now_ms(),
            before=audit_view(info),
        )


def audit_view(info: TokenInfo) -> Json:
    """What the audit log keeps of a token: never its value or hash."""
    return {
        "token_id": info.token_id,
        "owner": info.owner,
        "comment": info.comment,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "created_by": info.created_by,
    }


def _principal(session: Session, name: str) -> PrincipalInfo:
    found = principals.principal_named(session, name)
    if found is None:
        raise NotFound(
            f"No user or service principal is named '{name}': give a userName or a service "
            "principal's applicationId."
        )
    return found
