"""AES-GCM sealing of values and the key's two sources: the setting and the private file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from berth.core.errors import BerthError, InvalidParameter
from berth.secrets import SecretCipher, load_key
from berth.settings import Settings

PLAINTEXT = b"hunter2-\x00\xff-value"


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERTH_SECRET_KEY", raising=False)


def _settings(home: Path, secret_key: str | None = None) -> Settings:
    return Settings(home=home, secret_key=None if secret_key is None else SecretStr(secret_key))


def test_round_trip_with_a_fresh_nonce_each_time() -> None:
    cipher = SecretCipher(os.urandom(32))
    first, second = cipher.encrypt(PLAINTEXT, "s/k"), cipher.encrypt(PLAINTEXT, "s/k")
    assert first != second
    assert PLAINTEXT not in first
    assert cipher.decrypt(first, "s/k") == cipher.decrypt(second, "s/k") == PLAINTEXT
    assert cipher.decrypt(cipher.encrypt(b"", "s/k"), "s/k") == b""


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_a_tampered_ciphertext_is_refused(position: int) -> None:
    cipher = SecretCipher(os.urandom(32))
    sealed = bytearray(cipher.encrypt(PLAINTEXT, "s/k"))
    sealed[position] ^= 0x01
    with pytest.raises(BerthError, match="cannot be decrypted: it was altered") as caught:
        cipher.decrypt(bytes(sealed), "s/k")
    assert "s/k" in caught.value.message
    assert "hunter2" not in caught.value.message


@pytest.mark.parametrize("cut", [0, 1, 28])
def test_a_truncated_ciphertext_is_refused(cut: int) -> None:
    cipher = SecretCipher(os.urandom(32))
    with pytest.raises(BerthError, match="cannot be decrypted"):
        cipher.decrypt(cipher.encrypt(PLAINTEXT, "s/k")[:cut], "s/k")


def test_a_value_moved_to_another_secret_or_key_is_refused() -> None:
    key = os.urandom(32)
    sealed = SecretCipher(key).encrypt(PLAINTEXT, "s/k")
    with pytest.raises(BerthError, match="cannot be decrypted"):
        SecretCipher(key).decrypt(sealed, "s/other")
    with pytest.raises(BerthError, match="another key than this server's"):
        SecretCipher(os.urandom(32)).decrypt(sealed, "s/k")


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = load_key(_settings(home))
    key_file = home / "secret-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key) == 32
    assert base64.urlsafe_b64decode(key_file.read_text().strip()) == key
    assert load_key(_settings(home)) == key
    assert [p.name for p in home.iterdir()] == ["secret-key"]


def test_the_configured_key_wins_and_writes_no_file(tmp_path: Path) -> None:
    configured = os.urandom(32)
    encoded = base64.urlsafe_b64encode(configured).decode()
    assert load_key(_settings(tmp_path, encoded)) == configured
    assert not (tmp_path / "secret-key").exists()


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("not base64 at all!", "is not URL-safe base64"),
        (base64.urlsafe_b64encode(b"short").decode(), "decodes to 5 bytes, not 32"),
    ],
)
def test_a_bad_configured_key_is_refused_without_echoing_it(
    tmp_path: Path, configured: str, expected: str
) -> None:
    with pytest.raises(InvalidParameter, match=expected) as caught:
        load_key(_settings(tmp_path, configured))
    assert "BERTH_SECRET_KEY" in caught.value.message
    assert configured not in caught.value.message


def test_a_damaged_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "secret-key").write_text("c2hvcnQ=\n")
    with pytest.raises(InvalidParameter, match="secret-key decodes to 5 bytes"):
        load_key(_settings(tmp_path))
