"""Snapshots as the wire and the store carry them: external credentials sealed, each version
encoded once however many followers ask."""

from __future__ import annotations

import json
import os

from berth.core.dataplane import EndpointRoute, EntityRoute, Snapshot
from berth.secrets.cipher import SecretCipher
from berth.secrets.sealed_snapshot import SealedSnapshots, open_externals


def routes(version: int) -> Snapshot:
    external = EntityRoute("gpt", 100, (), external={"openai_api_key_plaintext": "sk-plain"})
    return Snapshot(version, {"ep": EndpointRoute("ep", "id-1", 1, (external,))})


def test_a_version_is_sealed_once_and_opens_to_the_same_routes() -> None:
    sealed = SealedSnapshots(SecretCipher(os.urandom(32)))
    first = sealed.body(routes(3))
    assert b"sk-plain" not in first
    assert sealed.body(routes(3)) is first, "the same version is not encoded again"
    opened = Snapshot.from_json(open_externals(json.loads(first), sealed.cipher))
    assert opened.endpoints == routes(3).endpoints
    newer = sealed.body(routes(4))
    assert newer is not first and json.loads(newer)["version"] == 4
