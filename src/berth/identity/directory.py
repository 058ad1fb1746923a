"""Users, service principals and groups: admin-only changes, each audited with the change.

Whatever can disable a token (deactivating or deleting a principal) or change what its
token's principal looks like (group membership) calls ``on_change`` once committed, so the
data plane's token snapshot is republished at once rather than at the next tick.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection

from sqlalchemy.orm import Session

from berth.core.clock import Clock
from berth.core.errors import InvalidParameter, NotFound
from berth.core.permissions import RUN_MODEL_CODE, GranteeKind
from berth.core.principal import ADMINS_GROUP, Principal, PrincipalKind
from berth.identity.policy import (
    ADMIN_NAME,
    check_group_name,
    check_principal_name,
    require_admin,
)
from berth.store import audit, entitlements, grants, principals
from berth.store import groups as group_store
from berth.store.db import Database
from berth.store.groups import GroupInfo
from berth.store.listing import Match, Page
from berth.store.principals import PrincipalInfo
from berth.store.tables import Json

NAME_FIELDS = {PrincipalKind.USER: "userName", PrincipalKind.SERVICE_PRINCIPAL: "applicationId"}
"""The SCIM attribute that holds each kind's berth name."""

_AUDIT = {
    PrincipalKind.USER: ("users", "user"),
    PrincipalKind.SERVICE_PRINCIPAL: ("service-principals", "service-principal"),
}
GROUP = "group"


class Directory:
    def __init__(self, db: Database, clock: Clock, on_change: Callable[[], None]) -> None:
        self._db = db
        self._clock = clock
        self._on_change = on_change

    # Users and service principals

    def create_principal(
        self,
        caller: Principal,
        kind: PrincipalKind,
        name: str | None,
        display_name: str | None,
        active: bool,
    ) -> PrincipalInfo:
        """A service principal without a name gets a new UUID, as Databricks gives one."""
        require_admin(caller, "manage users and service principals")
        if name is None and kind is PrincipalKind.SERVICE_PRINCIPAL:
            name = str(uuid.uuid4())
        if name is None:
            raise InvalidParameter(f"{NAME_FIELDS[kind]} is required to create a user.")
        check_principal_name(NAME_FIELDS[kind], name)
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            info = principals.create_principal(
                session,
                name=name,
                kind=kind,
                display_name=display_name or "",
                active=active,
                now_ms=now,
            )
            self._audit(session, caller, kind, "create", info, None, info)
        return info

    def get_principal(
        self, caller: Principal, kind: PrincipalKind, principal_id: int
    ) -> PrincipalInfo:
        require_admin(caller, "read users and service principals")
        with self._db.transaction() as session:
            return principals.get_principal(session, principal_id, kind)

    def list_principals(
        self, caller: Principal, kind: PrincipalKind, match: Match | None, offset: int, limit: int
    ) -> Page[PrincipalInfo]:
        require_admin(caller, "list users and service principals")
        with self._db.transaction() as session:
            return principals.list_principals(session, kind, match, offset, limit)

    def update_principal(
        self,
        caller: Principal,
        kind: PrincipalKind,
        principal_id: int,
        *,
        name: str | None = None,
        display_name: str | None = None,
        active: bool | None = None,
    ) -> PrincipalInfo:
        """Change what is given; deactivating refuses the principal's tokens on both planes.
        ``name`` may only repeat the principal's own, since grants and tokens' makers name it."""
        require_admin(caller, "manage users and service principals")
        with self._db.transaction() as session:
            before = principals.get_principal(session, principal_id, kind)
            if name is not None and name != before.name:
                raise InvalidParameter(
                    f"{NAME_FIELDS[kind]} '{before.name}' cannot be changed to '{name}': "
                    "permissions are granted by name. Create a new one instead."
                )
            if active is False:
                _keep_admin(before, "deactivated")
            after = principals.update_principal(
                session, principal_id, kind, display_name=display_name, active=active
            )
            self._audit(session, caller, kind, "update", after, before, after)
        if before.active != after.active:
            self._on_change()
        return after

    def delete_principal(self, caller: Principal, kind: PrincipalKind, principal_id: int) -> None:
        """Delete the principal, its tokens and its group memberships."""
        require_admin(caller, "manage users and service principals")
        with self._db.transaction() as session:
            before = principals.get_principal(session, principal_id, kind)
            _keep_admin(before, "deleted")
            principals.delete_principal(session, principal_id, kind)
            grants.drop_grantee(session, GranteeKind(kind.value), before.name)
            self._audit(session, caller, kind, "delete", before, before, None)
        self._on_change()

    def me(self, caller: Principal) -> PrincipalInfo:
        """The caller as stored, for everyone."""
        with self._db.transaction() as session:
            found = principals.principal_named(session, caller.name)
        if found is None:
            raise NotFound(f"'{caller.name}' is not a stored user or service principal.")
        return found

    # Groups

    def create_group(self, caller: Principal, name: str, member_ids: Collection[int]) -> GroupInfo:
        require_admin(caller, "manage groups")
        check_group_name(name)
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            info = group_store.create_group(session, name, member_ids, now)
            self._audit_group(session, caller, "create", info, None, info)
        if member_ids:
            self._on_change()
        return info

    def get_group(self, caller: Principal, group_id: int) -> GroupInfo:
        require_admin(caller, "read groups")
        with self._db.transaction() as session:
            return group_store.get_group(session, group_id)

    def list_groups(
        self, caller: Principal, match: Match | None, offset: int, limit: int
    ) -> Page[GroupInfo]:
        require_admin(caller, "list groups")
        with self._db.transaction() as session:
            return group_store.list_groups(session, match, offset, limit)

    def change_members(
        self,
        caller: Principal,
        group_id: int,
        *,
        name: str | None = None,
        add: Collection[int] = (),
        remove: Collection[int] = (),
        replace: Collection[int] | None = None,
    ) -> GroupInfo:
        """Add and remove members, or ``replace`` them all; ``name`` may only repeat the
        group's own, since grants name groups."""
        require_admin(caller, "manage groups")
        with self._db.transaction() as session:
            before = group_store.get_group(session, group_id)
            if name is not None and name != before.name:
                raise InvalidParameter(
                    f"Group '{before.name}' cannot be renamed to '{name}': permissions are "
                    "granted to groups by name. Create a new group and move the members."
                )
            if replace is not None:
                remove = {m.id for m in before.members} - set(replace)
                add = replace
            if before.name == ADMINS_GROUP and _admin_id(before) in remove:
                raise InvalidParameter(
                    f"The built-in '{ADMIN_NAME}' user stays in '{ADMINS_GROUP}', so berth "
                    "always has an administrator."
                )
            after = group_store.change_members(session, group_id, add=add, remove=remove)
            self._audit_group(session, caller, "update", after, before, after)
        self._on_change()
        return after

    def delete_group(self, caller: Principal, group_id: int) -> None:
        require_admin(caller, "manage groups")
        with self._db.transaction() as session:
            before = group_store.get_group(session, group_id)
            if before.name == ADMINS_GROUP:
                raise InvalidParameter(
                    f"The built-in '{ADMINS_GROUP}' group cannot be deleted: its members are "
                    "berth's administrators. Remove members from it instead."
                )
            group_store.delete_group(session, group_id)
            grants.drop_grantee(session, GranteeKind.GROUP, before.name)
            self._audit_group(session, caller, "delete", before, before, None)
        self._on_change()

    # Entitlements

    def entitlements(
        self, *, principal_id: int | None = None, group_id: int | None = None
    ) -> list[str]:
        with self._db.transaction() as session:
            return entitlements.entitlements_of(
                session, principal_id=principal_id, group_id=group_id
            )

    def change_entitlements(
        self,
        caller: Principal,
        *,
        principal_id: int | None = None,
        group_id: int | None = None,
        add: Collection[str] = (),
        remove: Collection[str] = (),
        replace: Collection[str] | None = None,
    ) -> list[str]:
        """Grant or take away entitlements of one principal or group (admins only)."""
        require_admin(caller, "manage entitlements")
        with self._db.transaction() as session:
            before = entitlements.entitlements_of(
                session, principal_id=principal_id, group_id=group_id
            )
            after = entitlements.change_entitlements(
                session,
                principal_id=principal_id,
                group_id=group_id,
                add=list(add),
                remove=list(remove),
                replace=None if replace is None else list(replace),
            )
            if after != before:
                subject = (
                    ("principal", str(principal_id)) if group_id is None else (GROUP, str(group_id))
                )
                self._record(
                    session,
                    caller,
                    "entitlements.update",
                    subject,
                    {"entitlements": before},
                    {"entitlements": after},
                )
        return after

    def may_run_model_code(self, principal: Principal) -> bool:
        """Admins may; others when they or one of their groups hold ``run-model-code``."""
        if principal.is_admin:
            return True
        with self._db.transaction() as session:
            return entitlements.holds(session, principal.name, principal.groups, RUN_MODEL_CODE)

    def _audit(
        self,
        session: Session,
        caller: Principal,
        kind: PrincipalKind,
        verb: str,
        subject: PrincipalInfo,
        before: PrincipalInfo | None,
        after: PrincipalInfo | None,
    ) -> None:
        plural, object_type = _AUDIT[kind]
        self._record(
            session,
            caller,
            f"{plural}.{verb}",
            (object_type, subject.name),
            _principal_view(before),
            _principal_view(after),
        )

    def _audit_group(
        self,
        session: Session,
        caller: Principal,
        verb: str,
        subject: GroupInfo,
        before: GroupInfo | None,
        after: GroupInfo | None,
    ) -> None:
        self._record(
            session,
            caller,
            f"groups.{verb}",
            (GROUP, subject.name),
            _group_view(before),
            _group_view(after),
        )

    def _record(
        self,
        session: Session,
        caller: Principal,
        action: str,
        subject: tuple[str, str],
        before: Json | None,
        after: Json | None,
    ) -> None:
        audit.record(
            session,
            actor=caller.name,
            action=action,
            object_type=subject[0],
            object_id=subject[1],
            now_ms=self._clock.now_ms(),
            before=before,
            after=after,
        )


def _keep_admin(info: PrincipalInfo, what: str) -> None:
    if info.name == ADMIN_NAME and info.kind is PrincipalKind.USER:
        raise InvalidParameter(
            f"The built-in '{ADMIN_NAME}' user cannot be {what}: berth needs one administrator "
            f"that always exists. Revoke its tokens instead, or add other users to "
            f"'{ADMINS_GROUP}'."
        )


def _admin_id(group: GroupInfo) -> int | None:
    return next((m.id for m in group.members if m.name == ADMIN_NAME), None)


def _principal_view(info: PrincipalInfo | None) -> Json | None:
    if info is None:
        return None
    return {
        "id": info.id,
        "name": info.name,
        "display_name": info.display_name,
        "active": info.active,
    }


def _group_view(info: GroupInfo | None) -> Json | None:
    if info is None:
        return None
    return {"id": info.id, "name": info.name, "members": [m.name for m in info.members]}
