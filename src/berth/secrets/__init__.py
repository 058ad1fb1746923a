"""Secrets: scopes of named values, encrypted at rest, resolved from ``{{secrets/scope/key}}``.

Imports only ``berth.core``, ``berth.settings`` and ``berth.store``; values never leave it
except through ``SecretsService.reveal`` and the resolver, for server-side use.
"""

from berth.secrets.cipher import SecretCipher, load_key
from berth.secrets.references import SecretRef, parse_reference, resolve_reference
from berth.secrets.service import MAX_VALUE_BYTES, SecretsService

__all__ = [
    "MAX_VALUE_BYTES",
    "SecretCipher",
    "SecretRef",
    "SecretsService",
    "load_key",
    "parse_reference",
    "resolve_reference",
]
