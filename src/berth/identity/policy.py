"""The rules every identity change follows: who may make it and which names are allowed."""

from __future__ import annotations

from berth.core.errors import InvalidParameter, PermissionDenied
from berth.core.permissions import EVERYONE
from berth.core.principal import ADMINS_GROUP, Principal

ADMIN_NAME = "admin"
MAX_NAME = 255


def require_admin(principal: Principal, what: str) -> None:
    """``what`` completes "Only admins may ...", e.g. ``manage users``."""
    if not principal.is_admin:
        raise PermissionDenied(
            f"Only admins (members of the '{ADMINS_GROUP}' group) may {what}; "
            f"'{principal.name}' is not one. Ask an admin."
        )


def check_principal_name(field: str, name: str) -> str:
    """A user's ``userName`` or a service principal's ``applicationId``."""
    if not 0 < len(name) <= MAX_NAME or any(c.isspace() or not c.isprintable() for c in name):
        raise InvalidParameter(
            f"Invalid {field} {name!r}: use 1 to {MAX_NAME} printable characters without "
            "spaces, e.g. an e-mail address."
        )
    return name


def check_group_name(name: str) -> str:
    if not 0 < len(name) <= MAX_NAME or name != name.strip() or not name.isprintable():
        raise InvalidParameter(
            f"Invalid group displayName {name!r}: use 1 to {MAX_NAME} printable characters, "
            "not starting or ending with a space."
        )
    if name == EVERYONE:
        raise InvalidParameter(
            f"'{EVERYONE}' is built in: it stands for every user and service principal, so "
            "it cannot be created as a group. Pick another name."
        )
    return name


def check_lifetime(lifetime_seconds: int | None) -> None:
    if lifetime_seconds is not None and lifetime_seconds <= 0:
        raise InvalidParameter(
            f"lifetime_seconds must be a positive number of seconds, got {lifetime_seconds}; "
            "leave it out for a token that does not expire."
        )
