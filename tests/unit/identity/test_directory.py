"""The directory over a real SQLite store: who may change what, what cannot be changed, and
what deactivating or deleting a principal does to its tokens."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from berth.core.errors import (
    AlreadyExists,
    InvalidParameter,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from berth.core.principal import Principal, PrincipalKind
from berth.identity.directory import Directory
from berth.identity.token_manager import TokenManager
from berth.identity.tokens import TokenService
from berth.store import audit
from berth.store import tokens as token_store
from berth.store.db import Database
from berth.store.groups import GroupInfo
from berth.store.listing import Match
from tests.unit.identity.conftest import ADMIN, Changes

USER = PrincipalKind.USER
SP = PrincipalKind.SERVICE_PRINCIPAL
ALICE = Principal("alice", USER)


def _user(directory: Directory, name: str, display_name: str = "", active: bool = True) -> int:
    return directory.create_principal(ADMIN, USER, name, display_name, active).id


def test_users_are_listed_filtered_and_paged(directory: Directory) -> None:
    for name in ["ann@x.io", "bob@x.io", "bea@y.io"]:
        _user(directory, name, name.split("@")[0].title())
    everyone = directory.list_principals(ADMIN, USER, None, 0, 100)
    assert [u.name for u in everyone.items] == ["admin", "ann@x.io", "bob@x.io", "bea@y.io"]
    assert everyone.total == 4

    def names(match: Match, offset: int = 0, limit: int = 100) -> tuple[int, list[str]]:
        page = directory.list_principals(ADMIN, USER, match, offset, limit)
        return page.total, [u.name for u in page.items]

    assert names(Match("name", "eq", "BOB@x.io")) == (1, ["bob@x.io"])
    assert names(Match("display_name", "sw", "b")) == (2, ["bob@x.io", "bea@y.io"])
    assert names(Match("name", "co", "@x.")) == (2, ["ann@x.io", "bob@x.io"])
    assert names(Match("name", "ne", "admin"), offset=1, limit=1) == (3, ["bob@x.io"])
    assert names(Match("name", "co", "%")) == (0, [])
    assert directory.list_principals(ADMIN, SP, None, 0, 100).total == 0


def test_a_service_principal_gets_a_uuid_name_and_shares_the_namespace(
    directory: Directory,
) -> None:
    made = directory.create_principal(ADMIN, SP, None, "ci", True)
    assert str(uuid.UUID(made.name)) == made.name
    assert (made.kind, made.display_name, made.active) == (SP, "ci", True)
    with pytest.raises(AlreadyExists, match=f"Service principal '{made.name}' already exists"):
        directory.create_principal(ADMIN, USER, made.name, "", True)
    with pytest.raises(NotFound, match=f"User with id '{made.id}' does not exist"):
        directory.get_principal(ADMIN, USER, made.id)
    with pytest.raises(InvalidParameter, match="userName is required"):
        directory.create_principal(ADMIN, USER, None, "", True)
    with pytest.raises(InvalidParameter, match="without spaces"):
        directory.create_principal(ADMIN, USER, "two words", "", True)


DENIED: list[Callable[[Directory], object]] = [
    lambda d: d.create_principal(ALICE, USER, "x", "", True),
    lambda d: d.list_principals(ALICE, SP, None, 0, 10),
    lambda d: d.get_principal(ALICE, USER, 1),
    lambda d: d.update_principal(ALICE, USER, 1, active=False),
    lambda d: d.delete_principal(ALICE, USER, 1),
    lambda d: d.create_group(ALICE, "g", []),
    lambda d: d.list_groups(ALICE, None, 0, 10),
    lambda d: d.change_members(ALICE, 1, add=[1]),
    lambda d: d.delete_group(ALICE, 1),
]


@pytest.mark.parametrize("call", DENIED)
def test_only_admins_manage_the_directory(
    directory: Directory, call: Callable[[Directory], object]
) -> None:
    with pytest.raises(PermissionDenied, match="Only admins .* 'alice' is not one"):
        call(directory)


def test_everyone_sees_themselves(directory: Directory) -> None:
    made = _user(directory, "alice", "Alice")
    me = directory.me(ALICE)
    assert (me.id, me.name, me.display_name, me.groups) == (made, "alice", "Alice", ())


def test_the_built_in_admin_and_admins_stay(directory: Directory) -> None:
    [admin] = directory.list_principals(ADMIN, USER, Match("name", "eq", "admin"), 0, 1).items
    [admins] = directory.list_groups(ADMIN, Match("name", "eq", "admins"), 0, 1).items
    with pytest.raises(InvalidParameter, match="'admin' user cannot be deleted"):
        directory.delete_principal(ADMIN, USER, admin.id)
    with pytest.raises(InvalidParameter, match="'admin' user cannot be deactivated"):
        directory.update_principal(ADMIN, USER, admin.id, active=False)
    with pytest.raises(InvalidParameter, match="'admins' group cannot be deleted"):
        directory.delete_group(ADMIN, admins.id)
    with pytest.raises(InvalidParameter, match="'admin' user stays in 'admins'"):
        directory.change_members(ADMIN, admins.id, remove=[admin.id])
    with pytest.raises(InvalidParameter, match="'admin' user stays in 'admins'"):
        directory.change_members(ADMIN, admins.id, replace=[])
    assert directory.get_group(ADMIN, admins.id).members[0].name == "admin"


def test_names_cannot_change_and_users_is_not_a_group(directory: Directory) -> None:
    alice = _user(directory, "alice")
    group = directory.create_group(ADMIN, "team", [alice])
    with pytest.raises(InvalidParameter, match="'alice' cannot be changed to 'alicia'"):
        directory.update_principal(ADMIN, USER, alice, name="alicia")
    with pytest.raises(InvalidParameter, match="'team' cannot be renamed to 'crew'"):
        directory.change_members(ADMIN, group.id, name="crew")
    with pytest.raises(InvalidParameter, match="'users' is built in"):
        directory.create_group(ADMIN, "users", [])
    with pytest.raises(AlreadyExists, match="Group 'team' already exists"):
        directory.create_group(ADMIN, "team", [])


def test_members_are_added_removed_and_replaced(directory: Directory, changes: Changes) -> None:
    ids = [_user(directory, name) for name in ["a", "b", "c"]]
    group = directory.create_group(ADMIN, "team", ids[:1])

    def members(info: GroupInfo) -> list[str]:
        return [m.name for m in info.members]

    change = directory.change_members
    assert members(change(ADMIN, group.id, add=[ids[1], ids[0]])) == ["a", "b"]
    assert members(change(ADMIN, group.id, remove=[ids[0]], add=[ids[2]])) == ["b", "c"]
    assert members(change(ADMIN, group.id, replace=[ids[0]])) == ["a"]
    assert [g.name for g in directory.get_principal(ADMIN, USER, ids[0]).groups] == ["team"]
    with pytest.raises(InvalidParameter, match="No user or service principal has id 999"):
        change(ADMIN, group.id, add=[999])
    assert changes.count == 4  # the creation with a member, then three changes


def test_deactivating_refuses_tokens_on_both_planes_until_activated(
    directory: Directory, tokens: TokenManager, auth: TokenService, db: Database, changes: Changes
) -> None:
    alice = _user(directory, "alice")
    value = tokens.create_on_behalf(ADMIN, "alice", None, "").value
    assert auth.authenticate(f"Bearer {value}").name == "alice"
    before = changes.count

    directory.update_principal(ADMIN, USER, alice, active=False)
    assert changes.count == before + 1
    with pytest.raises(Unauthenticated, match="unknown, revoked or expired"):
        auth.authenticate(f"Bearer {value}")
    with db.transaction() as session:
        assert {p.name for p in token_store.live_tokens(session, 0).values()} == {"admin"}
    with pytest.raises(InvalidParameter, match="'alice' is deactivated"):
        tokens.create_on_behalf(ADMIN, "alice", None, "")

    directory.update_principal(ADMIN, USER, alice, active=True)
    assert auth.authenticate(f"Bearer {value}").name == "alice"
    directory.update_principal(ADMIN, USER, alice, display_name="Alice")
    assert changes.count == before + 2  # a display name changes no token


def test_deleting_a_principal_deletes_its_tokens_and_memberships(
    directory: Directory, tokens: TokenManager, db: Database
) -> None:
    alice = _user(directory, "alice")
    group = directory.create_group(ADMIN, "team", [alice])
    tokens.create_on_behalf(ADMIN, "alice", None, "one")
    tokens.create_on_behalf(ADMIN, "alice", 60, "two")
    directory.delete_principal(ADMIN, USER, alice)
    with db.transaction() as session:
        assert [t.owner for t in token_store.list_tokens(session)] == ["admin"]
    assert directory.get_group(ADMIN, group.id).members == ()
    with pytest.raises(NotFound, match=f"User with id '{alice}' does not exist"):
        directory.delete_principal(ADMIN, USER, alice)


def test_every_change_is_audited(directory: Directory, db: Database) -> None:
    alice = _user(directory, "alice")
    directory.update_principal(ADMIN, USER, alice, active=False)
    group = directory.create_group(ADMIN, "team", [alice])
    directory.delete_group(ADMIN, group.id)
    directory.delete_principal(ADMIN, USER, alice)
    with db.transaction() as session:
        entries = audit.entries(session)
    assert [(e.actor, e.action, e.object_type, e.object_id) for e in reversed(entries)] == [
        ("admin", "users.create", "user", "alice"),
        ("admin", "users.update", "user", "alice"),
        ("admin", "groups.create", "group", "team"),
        ("admin", "groups.delete", "group", "team"),
        ("admin", "users.delete", "user", "alice"),
    ]
    update = entries[3]
    assert update.before is not None and update.after is not None
    assert (update.before["active"], update.after["active"]) == (True, False)
    assert entries[2].after == {"id": group.id, "name": "team", "members": ["alice"]}
    assert entries[0].after is None and entries[0].before is not None
