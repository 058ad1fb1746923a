"""The rules for scope and key names, as Databricks has them."""

from __future__ import annotations

import re

from berth.core.errors import InvalidParameter

NAME = r"[A-Za-z0-9_.-]{1,128}"
_NAME = re.compile(NAME)


def check_name(kind: str, name: str) -> str:
    """``kind`` is ``scope`` or ``key``; raises ``InvalidParameter`` naming the rule."""
    if not _NAME.fullmatch(name):
        raise InvalidParameter(
            f"Invalid secret {kind} name {name!r}: use 1 to 128 characters among letters, "
            "digits, '_', '.' and '-'."
        )
    return name
