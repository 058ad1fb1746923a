"""Secret scopes and secrets: names checked, access checked, values sealed before the store."""

from __future__ import annotations

from sqlalchemy.orm import Session

from berth.core.clock import Clock
from berth.core.errors import InvalidParameter, NotFound, PermissionDenied
from berth.core.permissions import EVERYONE, LEVELS, Grant, GranteeKind, ObjectType, owner_grant
from berth.core.principal import SYSTEM, Principal
from berth.secrets import access
from berth.secrets.cipher import SecretCipher
from berth.secrets.names import check_name
from berth.store import audit, grants
from berth.store import secrets as store
from berth.store.db import Database
from berth.store.secrets import ScopeInfo, SecretInfo

SCOPE = ObjectType.SECRET_SCOPE

MAX_VALUE_BYTES = 128 * 1024


class SecretsService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        cipher: SecretCipher,
    ) -> None:
        self._db = db
        self._clock = clock
        self._cipher = cipher

    @property
    def cipher(self) -> SecretCipher:
        """The server's cipher, for what must travel sealed (the data-plane snapshot)."""
        return self._cipher

    def create_scope(
        self, principal: Principal, scope: str, initial_manage_principal: str | None = None
    ) -> None:
        """Make the scope; its creator gets MANAGE, and everyone does with
        ``initial_manage_principal: "users"`` (the only other value Databricks accepts)."""
        check_name("scope", scope)
        _not_reserved(principal, scope)
        if initial_manage_principal not in (None, EVERYONE):
            raise InvalidParameter(
                f"initial_manage_principal must be '{EVERYONE}' or left out; got "
                f"'{initial_manage_principal}'. Grant others access with secrets/acls/put."
            )
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            store.create_scope(
                session,
                scope,
                creator=principal.name,
                initial_manage_principal=initial_manage_principal,
                now_ms=now,
            )
            grants.set_grant(session, SCOPE, scope, owner_grant(SCOPE, principal))
            if initial_manage_principal == EVERYONE:
                grants.set_grant(
                    session, SCOPE, scope, Grant(GranteeKind.GROUP, EVERYONE, "MANAGE")
                )
            audit.record(
                session,
                actor=principal.name,
                action="secrets.create_scope",
                object_type=SCOPE.value,
                object_id=scope,
                now_ms=now,
                after={"scope": scope, "initial_manage_principal": initial_manage_principal},
            )

    def list_scopes(self) -> list[ScopeInfo]:
        with self._db.transaction() as session:
            return store.list_scopes(session)

    def delete_scope(self, principal: Principal, scope: str) -> None:
        """Delete the scope and every secret in it."""
        check_name("scope", scope)
        with self._db.transaction() as session:
            access.require(session, principal, scope, "MANAGE")
            store.delete_scope(session, scope)
            grants.drop_object(session, SCOPE, scope)
            self._audit(session, principal, "secrets.delete_scope", scope)

    def put_secret(self, principal: Principal, scope: str, key: str, value: bytes) -> None:
        """Store ``value`` under ``scope``/``key``, overwriting any value there."""
        check_name("scope", scope)
        _not_reserved(principal, scope)
        check_name("key", key)
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidParameter(
                f"The value of secret '{key}' is {len(value)} bytes; secret values may be at "
                f"most {MAX_VALUE_BYTES} bytes (128 KiB)."
            )
        sealed = self._cipher.encrypt(value, _context(scope, key))
        with self._db.transaction() as session:
            access.require(session, principal, scope, "WRITE")
            self._audit(session, principal, "secrets.put", scope, {"key": key})
            store.put_secret(
                session,
                scope,
                key,
                ciphertext=sealed,
                creator=principal.name,
                now_ms=self._clock.now_ms(),
            )

    def list_secrets(self, principal: Principal, scope: str) -> list[SecretInfo]:
        check_name("scope", scope)
        with self._db.transaction() as session:
            access.require(session, principal, scope, "READ")
            return store.list_secrets(session, scope)

    def require_read(self, principal: Principal, scope: str) -> None:
        """Whoever puts a ``{{secrets/scope/key}}`` reference in a config must hold READ."""
        with self._db.transaction() as session:
            access.require(session, principal, scope, "READ")

    def delete_secret(self, principal: Principal, scope: str, key: str) -> None:
        check_name("scope", scope)
        check_name("key", key)
        with self._db.transaction() as session:
            access.require(session, principal, scope, "WRITE")
            store.delete_secret(session, scope, key)
            self._audit(session, principal, "secrets.delete", scope, {"key": key})

    def put_acl(self, principal: Principal, scope: str, name: str, permission: str) -> None:
        _not_reserved(principal, scope)
        if permission not in LEVELS[SCOPE]:
            raise InvalidParameter(
                f"permission must be one of {', '.join(LEVELS[SCOPE])}; got '{permission}'."
            )
        with self._db.transaction() as session:
            access.require(session, principal, scope, "MANAGE")
            kind, name = access.grantee(session, name)
            grants.set_grant(session, SCOPE, scope, Grant(kind, name, permission))
            after = {"principal": name, "permission": permission}
            self._audit(session, principal, "secrets.put_acl", scope, after)

    def delete_acl(self, principal: Principal, scope: str, name: str) -> None:
        with self._db.transaction() as session:
            access.require(session, principal, scope, "MANAGE")
            if not any(
                grants.remove_grant(session, SCOPE, scope, kind, name) for kind in GranteeKind
            ):
                raise NotFound(f"Secret scope '{scope}' has no ACL for '{name}'.")
            self._audit(session, principal, "secrets.delete_acl", scope, {"principal": name})

    def list_acls(self, principal: Principal, scope: str) -> list[Grant]:
        with self._db.transaction() as session:
            access.require(session, principal, scope, "MANAGE")
            return grants.grants_on(session, SCOPE, scope)

    def _audit(
        self,
        session: Session,
        principal: Principal,
        action: str,
        scope: str,
        detail: dict[str, str] | None = None,
    ) -> None:
        audit.record(
            session,
            actor=principal.name,
            action=action,
            object_type=SCOPE.value,
            object_id=scope,
            now_ms=self._clock.now_ms(),
            after=detail,
        )

    def reveal(self, scope: str, key: str) -> bytes:
        """The decrypted value, for the server's own use (never for an API answer)."""
        with self._db.transaction() as session:
            sealed = store.sealed_value(session, scope, key)
        return self._cipher.decrypt(sealed, _context(scope, key))


def _context(scope: str, key: str) -> str:
    # Names cannot hold '/', so this names exactly one secret.
    return f"{scope}/{key}"


RESERVED_PREFIX = "berth-endpoint-"
"""Scopes berth makes to seal an endpoint's provider keys: no one else makes or changes them."""


def _not_reserved(principal: Principal, scope: str) -> None:
    if scope.startswith(RESERVED_PREFIX) and principal != SYSTEM:
        raise PermissionDenied(
            f"Secret scope names starting with '{RESERVED_PREFIX}' belong to berth (they hold "
            "endpoints' sealed provider keys); choose another name."
        )
