"""Encryption of secret values at rest, and the key it uses.

AES-256-GCM with a fresh random 96-bit nonce per value; the name of the secret is the
associated data, so a ciphertext copied onto another row does not decrypt. Nothing here
logs or formats a plaintext or the key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from berth.core.errors import BerthError, InvalidParameter
from berth.settings import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# The first byte of every stored value names its format, so a later one can be told apart.
FORMAT_V1 = b"\x01"

KEY_ADVICE = (
    "32 random bytes in URL-safe base64, e.g. from `python -c 'import base64,os; "
    "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'`"
)


class SecretCipher:
    """Seals and opens values; ``context`` binds each value to where it is stored."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise InvalidParameter(f"The secret key must be {KEY_BYTES} bytes, not {len(key)}.")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT_V1 + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def decrypt(self, sealed: bytes, context: str) -> bytes:
        refused = BerthError(
            f"The stored value of secret {context} cannot be decrypted: it was altered, or "
            "written under another key than this server's (BERTH_SECRET_KEY or "
            "$BERTH_HOME/secret-key). Put the secret again."
        )
        if not sealed.startswith(FORMAT_V1) or len(sealed) < 1 + NONCE_BYTES + TAG_BYTES:
            raise refused
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, context.encode())
        except InvalidTag as exc:
            raise refused from exc


def load_key(settings: Settings) -> bytes:
    """The key from ``BERTH_SECRET_KEY``, else from the key file, made on first start."""
    if settings.secret_key is not None:
        return _decode_key(settings.secret_key.get_secret_value(), "BERTH_SECRET_KEY")
    path = settings.secret_key_file
    if not path.exists():
        _create_key_file(path)
    return _decode_key(path.read_text().strip(), str(path))


def _create_key_file(path: Path) -> None:
    """Write a new key with mode 0600, whole or not at all.

    The key is written to a private temporary file and then linked into place, which fails
    if a server starting at the same time got there first; its key is then the one used.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()
    fd, temporary = tempfile.mkstemp(prefix=".secret-key-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(encoded + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _decode_key(encoded: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InvalidParameter(
            f"The secret key in {source} is not URL-safe base64: use {KEY_ADVICE}."
        ) from exc
    if len(key) != KEY_BYTES:
        raise InvalidParameter(
            f"The secret key in {source} decodes to {len(key)} bytes, not {KEY_BYTES}: "
            f"use {KEY_ADVICE}."
        )
    return key
