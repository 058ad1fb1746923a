"""Reading JSON bodies on the data plane: every way a body can be bad is a ``ValueError``.

``json.loads`` raises ``RecursionError`` for deeply nested input and ``ValueError`` for an
integer of more than 4,300 digits; callers catch ``ValueError`` and answer 400.
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise ValueError("the JSON is nested too deeply") from exc
