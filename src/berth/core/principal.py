"""Who is calling: the principal every request is attributed to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

ADMINS_GROUP = "admins"


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE_PRINCIPAL = "service_principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """A user or a service principal with the groups it belongs to."""

    name: str
    kind: PrincipalKind = PrincipalKind.USER
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return ADMINS_GROUP in self.groups


SYSTEM = Principal("berth", PrincipalKind.SERVICE_PRINCIPAL, frozenset({ADMINS_GROUP}))
"""berth acting on its own behalf, e.g. keeping an endpoint's sealed provider keys."""
