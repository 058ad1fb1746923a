"""SCIM ``entitlements`` on Users, ServicePrincipals and Groups: bodies and PATCH operations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from berth.api.schemas.identity import Entitlement, PatchBody, PatchOperation, known
from berth.core.errors import InvalidParameter
from berth.core.permissions import ENTITLEMENTS


def values(given: list[Entitlement] | None) -> list[str] | None:
    return None if given is None else sorted({e.value for e in given})


@dataclass(frozen=True, slots=True)
class EntitlementChanges:
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    replace: tuple[str, ...] | None = None

    @property
    def any(self) -> bool:
        return bool(self.add or self.remove or self.replace is not None)


_ONE = re.compile(r'entitlements\[value eq "?([^"\]]*)"?\]', re.IGNORECASE)


def split_patch(body: PatchBody) -> tuple[PatchBody, EntitlementChanges]:
    """The operations on ``entitlements``, and the body without them."""
    rest: list[PatchOperation] = []
    add: list[str] = []
    remove: list[str] = []
    replace: list[str] | None = None
    for operation in body.operations:
        path = (operation.path or "").strip()
        one = _ONE.fullmatch(path)
        if one is not None and operation.op == "remove":
            remove.append(known(one[1]))
            continue
        if path.lower() == "entitlements":
            given = _values(operation.value)
        elif not path and isinstance(operation.value, dict) and _has(operation.value):
            others = {k: v for k, v in operation.value.items() if k.lower() != "entitlements"}
            given = _values(next(v for k, v in operation.value.items() if _is(k)))
            if others:
                rest.append(operation.model_copy(update={"value": others}))
        else:
            rest.append(operation)
            continue
        if operation.op == "add":
            add += given or []
        elif operation.op == "remove":
            remove += given if given is not None else list(ENTITLEMENTS)
        else:
            replace, add, remove = list(given or []), [], []
    changes = EntitlementChanges(
        tuple(add), tuple(remove), None if replace is None else tuple(replace)
    )
    return body.model_copy(update={"operations": rest}), changes


def _is(key: str) -> bool:
    return key.lower() == "entitlements"


def _has(value: dict[str, Any]) -> bool:
    return any(_is(k) for k in value)


def _values(value: object) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise InvalidParameter(
                f'Entitlements are given as [{{"value": "run-model-code"}}], got {item!r}.'
            )
        found.append(known(item["value"]))
    return found
