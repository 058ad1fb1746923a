"""External models' credentials in the data-plane snapshot, sealed for the wire.

The controller resolves an external entity's ``{{secrets/...}}`` references into its route, so
gateways can call providers without the store. Gateways in other processes follow the snapshot
over HTTP (``GET /api/2.0/berth/data-plane``): there the external blocks travel sealed with the
server's secret key, which those gateways share (``BERTH_SECRET_KEY`` or
``$BERTH_HOME/secret-key``), so no HTTP answer carries a provider key in the clear.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from berth.core.dataplane import Snapshot
from berth.secrets.cipher import SecretCipher

CONTEXT = "data-plane/external"
SEALED = "sealed"


def seal_externals(payload: dict[str, Any], cipher: SecretCipher) -> dict[str, Any]:
    """A snapshot's JSON with every entity's ``external`` block sealed."""
    return _each_external(payload, lambda block: {SEALED: _seal(block, cipher)})


def open_externals(payload: dict[str, Any], cipher: SecretCipher) -> dict[str, Any]:
    """The inverse of `seal_externals`; raises ``BerthError`` under another key."""
    return _each_external(
        payload, lambda block: _open(block[SEALED], cipher) if SEALED in block else block
    )


class SealedSnapshots:
    """Snapshots as the wire and the store carry them (sealed JSON), encoded once per version:
    every follower of one server (gateway workers, ``berth gateway``) asks for the same one, as
    does the store when this server leads. At 1,000 endpoints one encoding is a 1.7 MB body."""

    def __init__(self, cipher: SecretCipher) -> None:
        self.cipher = cipher
        self._last: tuple[int, bytes] | None = None

    def body(self, snapshot: Snapshot) -> bytes:
        """``snapshot`` sealed and encoded; versions of one bus never change, so the last
        encoding serves every later call for the same version."""
        last = self._last
        if last is not None and last[0] == snapshot.version:
            return last[1]
        sealed = seal_externals(snapshot.to_json(), self.cipher)
        body = json.dumps(sealed, separators=(",", ":")).encode()
        self._last = (snapshot.version, body)
        return body


def _each_external(payload: dict[str, Any], change: Any) -> dict[str, Any]:
    endpoints = []
    for endpoint in payload.get("endpoints", []):
        entities = [
            {**e, "external": change(e["external"])} if e.get("external") else e
            for e in endpoint.get("entities", [])
        ]
        endpoints.append({**endpoint, "entities": entities})
    return {**payload, "endpoints": endpoints}


def _seal(block: dict[str, Any], cipher: SecretCipher) -> str:
    return base64.b64encode(cipher.encrypt(json.dumps(block).encode(), CONTEXT)).decode()


def _open(sealed: str, cipher: SecretCipher) -> dict[str, Any]:
    opened: dict[str, Any] = json.loads(cipher.decrypt(base64.b64decode(sealed), CONTEXT))
    return opened
