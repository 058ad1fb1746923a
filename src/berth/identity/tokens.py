"""Bearer tokens: issuing, hashing, verifying, and the first admin token."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from berth.core.clock import Clock
from berth.core.errors import Unauthenticated
from berth.core.ids import hash_token, new_token
from berth.core.principal import ADMINS_GROUP, Principal, PrincipalKind
from berth.identity.policy import ADMIN_NAME
from berth.store import groups as group_store
from berth.store import principals
from berth.store import tokens as token_store
from berth.store.db import Database
from berth.store.tokens import TokenInfo


@dataclass(frozen=True, slots=True)
class AdminBootstrap:
    """What the first start did about the admin token; ``token`` is set only when generated."""

    created: bool
    token: str | None
    token_file: Path


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``value`` is shown once, to whoever asked for it, and stored nowhere."""

    value: str = field(repr=False)
    info: TokenInfo


def issue(
    session: Session,
    owner_id: int,
    *,
    comment: str,
    now_ms: int,
    expires_at: int | None,
    created_by: str,
    value: str | None = None,
) -> IssuedToken:
    """Store a token's hash for ``owner_id``: ``value`` when given, else a new random one."""
    value = value or new_token()
    info = token_store.add_token(
        session,
        token_id=uuid.uuid4().hex,
        principal_id=owner_id,
        token_hash=hash_token(value),
        comment=comment,
        now_ms=now_ms,
        expires_at=expires_at,
        created_by=created_by,
    )
    return IssuedToken(value, info)


class TokenService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def bootstrap_admin(self, token_file: Path, configured: str | None) -> AdminBootstrap:
        """Make the admin principal and, on the very first start, its token.

        The configured token (``BERTH_ADMIN_TOKEN``) is always made valid; a generated one is
        written to ``token_file`` with mode 0600 and returned once so it can be printed.
        """
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            admin_id = principals.ensure_principal(
                session, ADMIN_NAME, PrincipalKind.USER, now, display_name="Administrator"
            )
            group_store.ensure_group_member(session, ADMINS_GROUP, admin_id, now)
            if configured is not None:
                if token_store.principal_for_token(session, hash_token(configured), now) is None:
                    self._add(session, admin_id, "admin token from BERTH_ADMIN_TOKEN", configured)
                return AdminBootstrap(created=False, token=None, token_file=token_file)
            if token_store.count_tokens(session) > 0:
                return AdminBootstrap(created=False, token=None, token_file=token_file)
            token = self._add(session, admin_id, "admin token made on first start").value
        _write_private(token_file, token + "\n")
        return AdminBootstrap(created=True, token=token, token_file=token_file)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization: Bearer <token>`` header."""
        if not authorization:
            raise Unauthenticated(
                "Missing credentials: send 'Authorization: Bearer <token>' with a berth token."
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "Unsupported authorization header: use 'Authorization: Bearer <token>'."
            )
        with self._db.transaction() as session:
            principal = token_store.principal_for_token(
                session, hash_token(token.strip()), self._clock.now_ms()
            )
        if principal is None:
            raise Unauthenticated("Invalid access token: it is unknown, revoked or expired.")
        return principal

    def _add(
        self, session: Session, admin_id: int, comment: str, value: str | None = None
    ) -> IssuedToken:
        return issue(
            session,
            admin_id,
            comment=comment,
            now_ms=self._clock.now_ms(),
            expires_at=None,
            created_by=ADMIN_NAME,
            value=value,
        )


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.chmod(path, 0o600)
