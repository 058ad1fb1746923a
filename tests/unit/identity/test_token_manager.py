"""Tokens over a real SQLite store: values shown once and never stored, expiry, who sees and
revokes which tokens, and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from berth.core.errors import InvalidParameter, NotFound, PermissionDenied, Unauthenticated
from berth.core.ids import hash_token
from berth.core.principal import Principal, PrincipalKind
from berth.identity.directory import Directory
from berth.identity.token_manager import TokenManager
from berth.identity.tokens import TokenService
from berth.store import audit
from berth.store import tokens as token_store
from berth.store.db import Database
from tests.unit.identity.conftest import ADMIN, Changes, ManualClock

ALICE = Principal("alice", PrincipalKind.USER)


@pytest.fixture
def alice(directory: Directory) -> int:
    return directory.create_principal(ADMIN, PrincipalKind.USER, "alice", "", True).id


def test_a_token_works_until_it_expires(
    tokens: TokenManager, auth: TokenService, clock: ManualClock, db: Database, alice: int
) -> None:
    issued = tokens.create(ALICE, 60, "laptop")
    assert issued.value.startswith("bth_") and issued.value not in repr(issued)
    info = issued.info
    assert (info.owner, info.owner_id, info.comment, info.created_by) == (
        "alice",
        alice,
        "laptop",
        "alice",
    )
    assert info.expires_at == clock.now + 60_000
    assert auth.authenticate(f"Bearer {issued.value}") == ALICE

    clock.now += 60_000
    with pytest.raises(Unauthenticated, match="unknown, revoked or expired"):
        auth.authenticate(f"Bearer {issued.value}")
    with db.transaction() as session:
        assert "alice" not in {p.name for p in token_store.live_tokens(session, clock.now).values()}
        assert "alice" in {p.name for p in token_store.live_tokens(session, clock.now - 1).values()}


@pytest.mark.parametrize("lifetime", [0, -1])
def test_a_lifetime_must_be_positive(tokens: TokenManager, alice: int, lifetime: int) -> None:
    with pytest.raises(InvalidParameter, match="leave it out for a token that does not expire"):
        tokens.create(ALICE, lifetime, "")


def test_each_principal_sees_and_revokes_only_its_own(
    tokens: TokenManager, alice: int, changes: Changes
) -> None:
    own = tokens.create(ALICE, None, "mine").info
    admins = tokens.create(ADMIN, None, "admin's").info
    assert [t.token_id for t in tokens.list_own(ALICE)] == [own.token_id]
    with pytest.raises(NotFound, match=f"Token with id '{admins.token_id}' does not exist"):
        tokens.delete_own(ALICE, admins.token_id)
    before = changes.count
    tokens.delete_own(ALICE, own.token_id)
    assert changes.count == before + 1
    assert tokens.list_own(ALICE) == []
    with pytest.raises(NotFound):
        tokens.delete_own(ALICE, own.token_id)


def test_admins_manage_everyone_s_tokens(
    tokens: TokenManager, auth: TokenService, directory: Directory, alice: int
) -> None:
    robot = directory.create_principal(ADMIN, PrincipalKind.SERVICE_PRINCIPAL, None, "", True)
    made = tokens.create_on_behalf(ADMIN, robot.name, 3600, "ci")
    assert (made.info.owner, made.info.created_by, made.info.created_by_id) == (
        robot.name,
        "admin",
        1,
    )
    assert auth.authenticate(f"Bearer {made.value}").kind is PrincipalKind.SERVICE_PRINCIPAL
    tokens.create(ALICE, None, "alice's own")

    by_admin = tokens.list_all(ADMIN, None, "admin")
    assert made.info.token_id in [t.token_id for t in by_admin]
    assert "alice" not in [t.owner for t in by_admin]
    assert tokens.list_all(ADMIN, 1, None) == by_admin
    assert tokens.list_all(ADMIN, 1, "alice") == []
    assert tokens.list_all(ADMIN, 999, None) == []
    assert {t.owner for t in tokens.list_all(ADMIN, None, None)} == {"admin", "alice", robot.name}
    assert tokens.get(ADMIN, made.info.token_id) == made.info

    tokens.delete(ADMIN, made.info.token_id)
    with pytest.raises(Unauthenticated):
        auth.authenticate(f"Bearer {made.value}")
    with pytest.raises(NotFound, match="No user or service principal is named 'nobody'"):
        tokens.create_on_behalf(ADMIN, "nobody", None, "")


ADMIN_ONLY: list[Callable[[TokenManager], object]] = [
    lambda t: t.create_on_behalf(ALICE, "alice", None, ""),
    lambda t: t.list_all(ALICE, None, None),
    lambda t: t.get(ALICE, "x"),
    lambda t: t.delete(ALICE, "x"),
]


@pytest.mark.parametrize("call", ADMIN_ONLY)
def test_token_management_is_for_admins(
    tokens: TokenManager, alice: int, call: Callable[[TokenManager], object]
) -> None:
    with pytest.raises(PermissionDenied, match="Only admins"):
        call(tokens)


def test_tokens_are_audited_without_their_values(
    tokens: TokenManager, db: Database, alice: int
) -> None:
    issued = tokens.create_on_behalf(ADMIN, "alice", None, "for alice")
    tokens.delete_own(ALICE, issued.info.token_id)
    with db.transaction() as session:
        entries = [e for e in audit.entries(session) if e.object_type == "token"]
    assert [(e.actor, e.action, e.object_id) for e in reversed(entries)] == [
        ("admin", "tokens.create", issued.info.token_id),
        ("alice", "tokens.delete", issued.info.token_id),
    ]
    assert entries[0].before is not None and entries[0].before["owner"] == "alice"
    text = json.dumps([[e.before, e.after] for e in entries])
    assert issued.value not in text and hash_token(issued.value) not in text
