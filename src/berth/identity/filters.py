"""SCIM list filters (RFC 7644 §3.4.2.2), the simple forms the Databricks SDK sends:
one ``attribute op value`` comparison, ``op`` one of ``eq``, ``ne``, ``co`` and ``sw``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Literal, cast

from berth.core.errors import InvalidParameter
from berth.store.listing import Match

Field = Literal["id", "name", "display_name"]
Op = Literal["eq", "ne", "co", "sw"]

_COMPARISON = re.compile(
    r'\s*(?P<attr>[A-Za-z][\w.]*)\s+(?P<op>eq|ne|co|sw)\s+(?P<value>"(?:[^"\\]|\\.)*"|[^\s"]+)\s*',
    re.IGNORECASE,
)


def parse_filter(text: str | None, attributes: Mapping[str, Field]) -> Match | None:
    """``attributes`` maps each filterable SCIM attribute name to the field it compares."""
    if text is None or not text.strip():
        return None
    found = _COMPARISON.fullmatch(text)
    if found is None:
        raise InvalidParameter(
            f"Unsupported filter {text!r}: berth understands one comparison such as "
            "'userName eq \"alice@example.com\"' (operators eq, ne, co, sw; no and/or)."
        )
    by_lower = {name.lower(): field for name, field in attributes.items()}
    field = by_lower.get(found["attr"].lower())
    if field is None:
        raise InvalidParameter(
            f"Cannot filter on {found['attr']!r}: use one of {', '.join(attributes)}."
        )
    return Match(field, cast(Op, found["op"].lower()), _value(found["value"]))


def _value(raw: str) -> str:
    if not raw.startswith('"'):
        return raw
    try:
        decoded: str = json.loads(raw)
    except ValueError as exc:
        raise InvalidParameter(
            f"Filter value {raw} is not a valid quoted string: write it as a JSON string."
        ) from exc
    return decoded
