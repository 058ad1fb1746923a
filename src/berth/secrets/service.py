"""Secret scopes and secrets: names checked, access checked, values sealed before the store."""

from __future__ import annotations

from berth.core.clock import Clock
from berth.core.errors import InvalidParameter
from berth.core.principal import Principal
from berth.secrets.access import AnyPrincipal, Permission, ScopeAccess
from berth.secrets.cipher import SecretCipher
from berth.secrets.names import check_name
from berth.store import secrets as store
from berth.store.db import Database
from berth.store.secrets import ScopeInfo, SecretInfo

MAX_VALUE_BYTES = 128 * 1024


class SecretsService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        cipher: SecretCipher,
        access: ScopeAccess | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._cipher = cipher
        self._access = access or AnyPrincipal()

    def create_scope(
        self, principal: Principal, scope: str, initial_manage_principal: str | None = None
    ) -> None:
        check_name("scope", scope)
        with self._db.transaction() as session:
            store.create_scope(
                session,
                scope,
                creator=principal.name,
                initial_manage_principal=initial_manage_principal,
                now_ms=self._clock.now_ms(),
            )

    def list_scopes(self) -> list[ScopeInfo]:
        with self._db.transaction() as session:
            return store.list_scopes(session)

    def delete_scope(self, principal: Principal, scope: str) -> None:
        """Delete the scope and every secret in it."""
        check_name("scope", scope)
        self._access.require(principal, scope, Permission.MANAGE)
        with self._db.transaction() as session:
            store.delete_scope(session, scope)

    def put_secret(self, principal: Principal, scope: str, key: str, value: bytes) -> None:
        """Store ``value`` under ``scope``/``key``, overwriting any value there."""
        check_name("scope", scope)
        check_name("key", key)
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidParameter(
                f"The value of secret '{key}' is {len(value)} bytes; secret values may be at "
                f"most {MAX_VALUE_BYTES} bytes (128 KiB)."
            )
        self._access.require(principal, scope, Permission.WRITE)
        sealed = self._cipher.encrypt(value, _context(scope, key))
        with self._db.transaction() as session:
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
        self._access.require(principal, scope, Permission.READ)
        with self._db.transaction() as session:
            return store.list_secrets(session, scope)

    def delete_secret(self, principal: Principal, scope: str, key: str) -> None:
        check_name("scope", scope)
        check_name("key", key)
        self._access.require(principal, scope, Permission.WRITE)
        with self._db.transaction() as session:
            store.delete_secret(session, scope, key)

    def reveal(self, scope: str, key: str) -> bytes:
        """The decrypted value, for the server's own use (never for an API answer)."""
        with self._db.transaction() as session:
            sealed = store.sealed_value(session, scope, key)
        return self._cipher.decrypt(sealed, _context(scope, key))


def _context(scope: str, key: str) -> str:
    # Names cannot hold '/', so this names exactly one secret.
    return f"{scope}/{key}"
