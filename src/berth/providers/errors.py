"""Upstream failures as berth errors: what the provider said, never the key berth sent it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from berth.core.errors import (
    BadRequest,
    BerthError,
    DeadlineExceeded,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)

# Key-shaped words (OpenAI "sk-...", Anthropic "sk-ant-...") are masked even when they are
# not the configured key: a provider may echo a partly masked form of it.
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{3,}")
_MAX_MESSAGE = 500


class ProviderCredentialsRejected(PermissionDenied):
    """The provider refused the credentials in the endpoint's config (its 401 or 403).

    A 403 rather than a 401: the caller's berth token was fine, the endpoint's provider key
    is not, and only whoever manages the endpoint can fix that.
    """


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, and anything shaped like an API key, replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEY_LIKE.sub("***", text)


def provider_message(body: bytes) -> str:
    """The human message in an OpenAI (``{"error": {...}}``) or Anthropic error body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:_MAX_MESSAGE]
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:_MAX_MESSAGE]
    return json.dumps(error)[:_MAX_MESSAGE]


def retry_after_s(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """The wait a provider asked for: ``retry-after-ms``, else ``retry-after`` (s or date)."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def upstream_error(
    provider: str, status: int, body: bytes, retry_after: float | None, secrets: Iterable[str]
) -> BerthError:
    """The berth error for a provider's error answer, naming the provider and its message."""
    said = scrub(provider_message(body), secrets)
    wait = None if retry_after is None else math.ceil(retry_after)
    head = f"The {provider} provider answered {status}: {said}"
    if status in (401, 403):
        return ProviderCredentialsRejected(
            f"{head} Check the API key in the endpoint's {provider} config."
        )
    if status == 429:
        return RateLimited(f"{head} Retry later.", retry_after=wait)
    if status in (408, 504):
        return DeadlineExceeded(head)
    if status >= 500:
        return Unavailable(f"{head} Retry later.", retry_after=wait)
    if status == 404:
        return NotFound(f"{head} Check the external model's name and the provider's URL.")
    if 400 <= status < 500:
        return BadRequest(head)
    return BerthError(head)
