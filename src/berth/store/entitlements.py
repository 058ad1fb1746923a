"""Entitlements of principals and groups: SCIM's ``entitlements``, stored one row a value."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from berth.store.tables import EntitlementRow, GroupRow, PrincipalRow


def entitlements_of(
    session: Session, *, principal_id: int | None = None, group_id: int | None = None
) -> list[str]:
    """The values held directly by one principal or one group, sorted."""
    owner = _owner(principal_id, group_id)
    return sorted(session.scalars(select(EntitlementRow.value).where(owner)))


def change_entitlements(
    session: Session,
    *,
    principal_id: int | None = None,
    group_id: int | None = None,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    replace: Sequence[str] | None = None,
) -> list[str]:
    """Apply ``replace`` (all of them), then ``add`` and ``remove``; the values now held."""
    owner = _owner(principal_id, group_id)
    held = set(entitlements_of(session, principal_id=principal_id, group_id=group_id))
    wanted = set(replace) if replace is not None else set(held)
    wanted = (wanted | set(add)) - set(remove)
    gone = held - wanted
    if gone:
        session.execute(delete(EntitlementRow).where(owner, EntitlementRow.value.in_(gone)))
    for value in sorted(wanted - held):
        session.add(EntitlementRow(principal_id=principal_id, group_id=group_id, value=value))
    session.flush()
    return sorted(wanted)


def holds(session: Session, name: str, groups: Collection[str], value: str) -> bool:
    """Whether the principal ``name`` holds ``value`` itself or through one of ``groups``."""
    own = (
        select(EntitlementRow.id)
        .join(PrincipalRow, PrincipalRow.id == EntitlementRow.principal_id)
        .where(PrincipalRow.name == name, EntitlementRow.value == value)
    )
    through = (
        select(EntitlementRow.id)
        .join(GroupRow, GroupRow.id == EntitlementRow.group_id)
        .where(GroupRow.name.in_(list(groups)), EntitlementRow.value == value)
    )
    return session.scalars(own.union_all(through).limit(1)).first() is not None


def _owner(principal_id: int | None, group_id: int | None) -> ColumnElement[bool]:
    if (principal_id is None) == (group_id is None):
        raise ValueError("entitlements belong to one principal or one group")
    if principal_id is not None:
        return EntitlementRow.principal_id == principal_id
    return EntitlementRow.group_id == group_id
