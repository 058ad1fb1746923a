"""Who may do what on a secret scope: Databricks' per-scope ACLs, READ < WRITE < MANAGE.

A scope's creator gets MANAGE; ``initial_manage_principal: "users"`` gives it to everyone.
ACL principals are user, service principal or group names, as in Databricks.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from berth.core.errors import NotFound
from berth.core.permissions import EVERYONE, GranteeKind, ObjectType, require_level
from berth.core.principal import Principal
from berth.store import grants
from berth.store import secrets as store

SCOPE = ObjectType.SECRET_SCOPE


def require(session: Session, principal: Principal, scope: str, needed: str) -> None:
    """``NotFound`` for a missing scope, else ``PermissionDenied`` unless ``needed`` is held."""
    store.scope_id(session, scope)
    require_level(
        SCOPE, grants.grants_on(session, SCOPE, scope), principal, needed, f"secret scope '{scope}'"
    )


def grantee(session: Session, name: str) -> tuple[GranteeKind, str]:
    """How an ACL principal name is held: a group when one has that name, else a user or
    service principal; ``NotFound`` when nobody has it."""
    if name == EVERYONE or grants.grantee_exists(session, GranteeKind.GROUP, name):
        return GranteeKind.GROUP, name
    for kind in (GranteeKind.USER, GranteeKind.SERVICE_PRINCIPAL):
        if grants.grantee_exists(session, kind, name):
            return kind, name
    raise NotFound(f"No user, service principal or group is named '{name}'.")
