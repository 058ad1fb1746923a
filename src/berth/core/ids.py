"""Identifiers: endpoint ids as Databricks writes them, and bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid

TOKEN_PREFIX = "bth_"


def new_endpoint_id() -> str:
    """A 32-hex id, the shape Databricks gives serving endpoints."""
    return uuid.uuid4().hex


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are high-entropy, so one SHA-256 is enough to keep them unreadable at rest."""
    return hashlib.sha256(token.encode()).hexdigest()
