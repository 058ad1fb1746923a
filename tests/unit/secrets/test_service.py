"""The secrets service over a real SQLite store: sealed at rest, names and sizes checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from berth.core.errors import AlreadyExists, BerthError, InvalidParameter, NotFound
from berth.secrets import MAX_VALUE_BYTES, SecretsService
from berth.store.db import Database
from berth.store.tables import SecretRow
from tests.unit.secrets.conftest import ALICE

MARKER = b"plaintext-marker-7f3a9c"


def _ciphertexts(db: Database) -> dict[str, bytes]:
    with db.transaction() as session:
        return {row.key: row.ciphertext for row in session.scalars(select(SecretRow))}


def test_values_are_stored_sealed(service: SecretsService, db: Database, tmp_path: Path) -> None:
    service.create_scope(ALICE, "s")
    service.put_secret(ALICE, "s", "k", MARKER)
    stored = _ciphertexts(db)["k"]
    assert MARKER not in stored and len(stored) == 1 + 12 + len(MARKER) + 16
    assert service.reveal("s", "k") == MARKER
    db.dispose()
    for path in tmp_path.iterdir():
        assert MARKER not in path.read_bytes(), path


def test_a_value_moved_onto_another_row_is_refused(service: SecretsService, db: Database) -> None:
    service.create_scope(ALICE, "s")
    service.put_secret(ALICE, "s", "a", MARKER)
    service.put_secret(ALICE, "s", "b", b"other")
    with db.transaction() as session:
        session.execute(
            update(SecretRow).where(SecretRow.key == "b").values(ciphertext=_ciphertexts(db)["a"])
        )
    with pytest.raises(BerthError, match="secret s/b cannot be decrypted"):
        service.reveal("s", "b")


def test_overwriting_keeps_one_secret_and_moves_its_timestamp(service: SecretsService) -> None:
    service.create_scope(ALICE, "s")
    service.put_secret(ALICE, "s", "k", b"one")
    [first] = service.list_secrets(ALICE, "s")
    service.put_secret(ALICE, "s", "k", b"two")
    [second] = service.list_secrets(ALICE, "s")
    assert (second.key, second.creator) == ("k", "alice")
    assert second.last_updated > first.last_updated
    assert service.reveal("s", "k") == b"two"


def test_the_size_limit_is_128_kib(service: SecretsService) -> None:
    service.create_scope(ALICE, "s")
    service.put_secret(ALICE, "s", "max", b"x" * MAX_VALUE_BYTES)
    with pytest.raises(InvalidParameter, match="131073 bytes; secret values may be at most"):
        service.put_secret(ALICE, "s", "big", b"x" * (MAX_VALUE_BYTES + 1))
    assert [s.key for s in service.list_secrets(ALICE, "s")] == ["max"]


def test_deleting_a_scope_deletes_its_secrets(service: SecretsService, db: Database) -> None:
    service.create_scope(ALICE, "gone")
    service.create_scope(ALICE, "kept")
    service.put_secret(ALICE, "gone", "k", b"1")
    service.put_secret(ALICE, "kept", "k", b"2")
    service.delete_scope(ALICE, "gone")
    assert [s.name for s in service.list_scopes()] == ["kept"]
    assert len(_ciphertexts(db)) == 1
    service.create_scope(ALICE, "gone")
    assert service.list_secrets(ALICE, "gone") == []


def test_missing_and_duplicate_names(service: SecretsService) -> None:
    service.create_scope(ALICE, "s")
    with pytest.raises(AlreadyExists, match="Secret scope 's' already exists"):
        service.create_scope(ALICE, "s")
    with pytest.raises(NotFound, match="Secret scope 'nope' does not exist"):
        service.put_secret(ALICE, "nope", "k", b"v")
    with pytest.raises(NotFound, match="Secret 'k' does not exist in scope 's'"):
        service.delete_secret(ALICE, "s", "k")
    with pytest.raises(InvalidParameter, match="Invalid secret key name 'a/b'"):
        service.put_secret(ALICE, "s", "a/b", b"v")
