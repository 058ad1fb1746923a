"""A directory and a token manager over a real SQLite store holding the built-in admin, with
a clock the tests move by hand."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from berth.core.principal import ADMINS_GROUP, Principal, PrincipalKind
from berth.identity.directory import Directory
from berth.identity.token_manager import TokenManager
from berth.identity.tokens import TokenService
from berth.store.db import Database

ADMIN = Principal("admin", PrincipalKind.USER, frozenset({ADMINS_GROUP}))
ADMIN_TOKEN = "bth_unit-admin"


@dataclass
class ManualClock:
    now: int = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.now


@dataclass
class Changes:
    """Stands in for the controller's nudge: counts the calls."""

    count: int = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def auth(db: Database, clock: ManualClock, tmp_path: Path) -> TokenService:
    service = TokenService(db, clock)
    service.bootstrap_admin(tmp_path / "admin-token", ADMIN_TOKEN)
    return service


@pytest.fixture
def directory(db: Database, clock: ManualClock, changes: Changes, auth: TokenService) -> Directory:
    return Directory(db, clock, changes)


@pytest.fixture
def tokens(db: Database, clock: ManualClock, changes: Changes, auth: TokenService) -> TokenManager:
    return TokenManager(db, clock, changes)
