"""The rules for model names and version numbers, which also become artifact folder names."""

from __future__ import annotations

import re

from berth.core.errors import InvalidParameter

_MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")


def check_model_name(name: str) -> str:
    """A model name is safe as one path component: no separators, not ``.`` or ``..``."""
    if not _MODEL_NAME.fullmatch(name) or name in {".", ".."}:
        raise InvalidParameter(
            f"Invalid model name {name!r}: use 1 to 255 characters among letters, digits, "
            "'_', '.' and '-' (and not '.' or '..')."
        )
    return name


def parse_version(version: str) -> int:
    if not version.isascii() or not version.isdigit() or int(version) < 1:
        raise InvalidParameter(
            f"Invalid model version {version!r}: versions are positive integers such as '1'."
        )
    return int(version)
