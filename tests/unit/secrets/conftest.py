"""A secrets service over a real, migrated SQLite store with a stepping clock."""

from __future__ import annotations

import os

import pytest

from berth.core.principal import Principal
from berth.secrets import SecretCipher, SecretsService
from berth.store.db import Database
from tests.unit.clock import StepClock

ALICE = Principal("alice")


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def service(db: Database, key: bytes) -> SecretsService:
    return SecretsService(db, StepClock(), SecretCipher(key))
