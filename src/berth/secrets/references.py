"""``{{secrets/<scope>/<key>}}``: how configs name a secret instead of holding its value.

The gateway and controller resolve references when they need the value; messages name the
reference and who made it, never the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from berth.core.errors import InvalidParameter, NotFound
from berth.secrets.names import NAME
from berth.secrets.service import SecretsService

_REFERENCE = re.compile(r"\{\{secrets/(" + NAME + r")/(" + NAME + r")\}\}")
_LOOKS_LIKE = re.compile(r"\s*\{\{\s*secrets/.*\}\}\s*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class SecretRef:
    scope: str
    key: str

    def __str__(self) -> str:
        return f"{{{{secrets/{self.scope}/{self.key}}}}}"


def parse_reference(text: str) -> SecretRef | None:
    """The secret ``text`` refers to when it is a reference as a whole, else None.

    Text that looks like a reference but is not a valid one is refused rather than taken
    as a literal value, which would otherwise be sent on as a credential.
    """
    found = _REFERENCE.fullmatch(text)
    if found is not None:
        return SecretRef(found.group(1), found.group(2))
    if _LOOKS_LIKE.fullmatch(text):
        raise InvalidParameter(
            f"{text!r} is not a valid secret reference: write {{{{secrets/<scope>/<key>}}}} "
            "with nothing around it, and scope and key names of 1 to 128 characters among "
            "letters, digits, '_', '.' and '-'."
        )
    return None


def resolve_reference(secrets: SecretsService, text: str, referenced_by: str) -> str | None:
    """The value ``text`` refers to, or None when it is no reference (a literal value).

    ``referenced_by`` names who holds the reference, e.g. ``endpoint 'chat'``, for messages.
    """
    ref = parse_reference(text)
    if ref is None:
        return None
    try:
        value = secrets.reveal(ref.scope, ref.key)
    except NotFound as exc:
        raise NotFound(
            f"The secret scope/key {ref} referenced by {referenced_by} does not exist: "
            f"put it with 'berth secrets put {ref.scope} {ref.key}' (after 'berth secrets "
            f"create-scope {ref.scope}' if the scope is new)."
        ) from exc
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        # Not chained: the decode error quotes a byte of the value.
        raise InvalidParameter(
            f"The secret {ref} referenced by {referenced_by} holds bytes that are not UTF-8 "
            "text: put it as a string value."
        ) from None
