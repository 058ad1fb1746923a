"""Provider keys given as ``*_plaintext`` move into the endpoint's own encrypted secret scope.

The stored config keeps a ``{{secrets/...}}`` reference in their place, so no provider key
lands in the store in plain text; the controller resolves references into memory only.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any

from berth.api.external_model_rules import PLAINTEXT_SUFFIX
from berth.core.errors import AlreadyExists, NotFound
from berth.core.principal import SYSTEM
from berth.secrets import SecretsService

Json = dict[str, Any]
Put = Callable[[str, str], str]


def endpoint_scope(endpoint_id: str) -> str:
    return f"berth-endpoint-{endpoint_id}"


def seal_plaintext_keys(doc: Json, endpoint_id: str, secrets: SecretsService) -> Json:
    """A copy of config ``doc`` whose plaintext keys are sealed secrets and references.

    The scope belongs to berth (``SYSTEM``), not to whoever sent the key: the endpoint's
    managers change its keys through its config, and nobody lists the scope but admins."""
    sealed = copy.deepcopy(doc)
    scope = endpoint_scope(endpoint_id)
    made: list[bool] = []

    def put(key: str, value: str) -> str:
        if not made:
            with contextlib.suppress(AlreadyExists):
                secrets.create_scope(SYSTEM, scope)
            made.append(True)
        secrets.put_secret(SYSTEM, scope, key, value.encode())
        return f"{{{{secrets/{scope}/{key}}}}}"

    for entity in sealed["served_entities"]:
        block = entity.get("external_model")
        for config in (block or {}).values():
            if isinstance(config, dict):
                _seal(config, entity["name"], put)
    return sealed


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
