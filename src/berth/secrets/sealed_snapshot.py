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
