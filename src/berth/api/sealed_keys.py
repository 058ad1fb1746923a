"""Provider keys given as ``*_plaintext`` move into the endpoint's own encrypted secret scope.

The stored config keeps a ``{{secrets/...}}`` reference in their place, so no provider key
lands in the store in plain text; the controller resolves references into memory only.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from berth.api.external_model_rules import PLAINTEXT_SUFFIX
from berth.core.endpoint_config import EndpointConfigDoc, ExternalModel, ServedEntity, entities_of
from berth.core.errors import AlreadyExists, InvalidParameter, NotFound
from berth.core.principal import SYSTEM
from berth.secrets import SecretsService

Json = dict[str, Any]
Put = Callable[[str, str], str]


def endpoint_scope(endpoint_id: str) -> str:
    return f"berth-endpoint-{endpoint_id}"


def seal_plaintext_keys(
    doc: EndpointConfigDoc, endpoint_id: str, secrets: SecretsService
) -> EndpointConfigDoc:
    """Config ``doc`` with its plaintext keys sealed as secrets and replaced by references.

    The scope belongs to berth (``SYSTEM``), not to whoever sent the key: the endpoint's
    managers change its keys through its config, and nobody lists the scope but admins."""
    scope = endpoint_scope(endpoint_id)
    made: list[bool] = []

    def put(key: str, value: str) -> str:
        if not made:
            with contextlib.suppress(AlreadyExists):
                secrets.create_scope(SYSTEM, scope)
            made.append(True)
        secrets.put_secret(SYSTEM, scope, key, value.encode())
        return f"{{{{secrets/{scope}/{key}}}}}"

    def sealed(entity: ServedEntity) -> ServedEntity:
        external = entity.external_model
        if external is None:
            return entity
        blocks = {name: copy.deepcopy(dict(block)) for name, block in external.blocks.items()}
        for config in blocks.values():
            # Keys named by config version: a pending update's keys never replace the keys
            # the current config serves with, so a failed or cancelled update leaves the old
            # keys in force.
            _seal(config, f"v{doc.config_version}.{entity.name}", put)
        return replace(entity, external_model=replace(external, blocks=blocks))

    return replace(doc, served_entities=tuple(sealed(e) for e in doc.served_entities))


def check_kept_keys(
    current: EndpointConfigDoc | None, new_entities: Iterable[ServedEntity], endpoint_id: str
) -> None:
    """A config may keep referring to its endpoint's sealed keys only where the entity still
    calls the same provider at the same URLs: a key goes nowhere its sender did not send it."""
    scope_ref = f"{{{{secrets/{endpoint_scope(endpoint_id)}/"
    before = {e.name: e.external_model for e in entities_of(current)}
    for entity in new_entities:
        external = entity.external_model
        if external is None or scope_ref not in json.dumps(external.to_json()):
            continue
        old = before.get(entity.name)
        if old is None or _destination(old) != _destination(external):
            raise InvalidParameter(
                f"Served entity '{entity.name}' changes its provider or base URL but keeps "
                "the endpoint's sealed key: give the key again (*_plaintext, or a reference to "
                "a secret you may read), so it is sent only where you mean."
            )


def _destination(external: ExternalModel) -> Json:
    """The provider and every URL of an external model's config."""
    found: Json = {"provider": external.provider}
    for block_name, block in external.blocks.items():
        for key, value in block.items():
            if key.endswith("_api_base") or key.endswith("_url") or key.endswith("_api_type"):
                found[f"{block_name}.{key}"] = value
    return found


def drop_endpoint_scope(endpoint_id: str, secrets: SecretsService) -> None:
    with contextlib.suppress(NotFound):
        secrets.delete_scope(SYSTEM, endpoint_scope(endpoint_id))


def _seal(config: Json, prefix: str, put: Put) -> None:
    for name in list(config):
        value = config[name]
        if isinstance(value, dict):
            _seal(value, f"{prefix}.{name}", put)
        elif name.endswith(PLAINTEXT_SUFFIX) and isinstance(value, str):
            field = name.removesuffix(PLAINTEXT_SUFFIX)
            del config[name]
            config[field] = put(f"{prefix}.{field}", value)
