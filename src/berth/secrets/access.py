"""Who may do what on a secret scope.

Databricks orders the permissions READ < WRITE < MANAGE. For now every authenticated
principal holds MANAGE on every scope; per-scope ACLs replace ``AnyPrincipal``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from berth.core.principal import Principal


class Permission(IntEnum):
    READ = 1
    WRITE = 2
    MANAGE = 3


class ScopeAccess(Protocol):
    def require(self, principal: Principal, scope: str, needed: Permission) -> None:
        """Raise ``PermissionDenied`` unless ``principal`` holds ``needed`` on ``scope``."""


class AnyPrincipal:
    """Every authenticated principal may do everything."""

    def require(self, principal: Principal, scope: str, needed: Permission) -> None:
        return None
