"""Bearer tokens: issuing, hashing, verifying, and the first admin token."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from berth.core.clock import Clock
from berth.core.errors import Unauthenticated
from berth.core.ids import hash_token, new_token
from berth.core.principal import ADMINS_GROUP, Principal, PrincipalKind
from berth.store import principals
from berth.store.db import Database

ADMIN_NAME = "admin"


@dataclass(frozen=True, slots=True)
class AdminBootstrap:
    """What the first start did about the admin token; ``token`` is set only when generated."""

    created: bool
    token: str | None
    token_file: Path


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
            principals.ensure_group_member(session, ADMINS_GROUP, admin_id, now)
            if configured is not None:
                if principals.principal_for_token(session, hash_token(configured), now) is None:
                    self._add(session, admin_id, configured, "admin token from BERTH_ADMIN_TOKEN")
                return AdminBootstrap(created=False, token=None, token_file=token_file)
            if principals.count_tokens(session) > 0:
                return AdminBootstrap(created=False, token=None, token_file=token_file)
            token = new_token()
            self._add(session, admin_id, token, "admin token made on first start")
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
            principal = principals.principal_for_token(
                session, hash_token(token.strip()), self._clock.now_ms()
            )
        if principal is None:
            raise Unauthenticated("Invalid access token: it is unknown, revoked or expired.")
        return principal

    def _add(self, session: Session, principal_id: int, token: str, comment: str) -> None:
        principals.add_token(
            session,
            token_id=uuid.uuid4().hex,
            principal_id=principal_id,
            token_hash=hash_token(token),
            comment=comment,
            now_ms=self._clock.now_ms(),
            expires_at=None,
        )


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.chmod(path, 0o600)
