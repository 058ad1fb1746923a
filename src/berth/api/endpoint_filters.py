"""berth's filters on the endpoint list (``state`` and ``tag``, as OCI's console filters model
deployments): optional query parameters the Databricks clients never send, so their calls
answer as before."""

from __future__ import annotations

from dataclasses import dataclass

from berth.core.errors import InvalidParameter
from berth.core.states import ConfigUpdate, EndpointReady
from berth.store.endpoints import EndpointRecord

STATES = tuple(s.value for s in EndpointReady) + tuple(s.value for s in ConfigUpdate)
"""What ``state`` matches: the endpoint's readiness or the state of its config update."""


@dataclass(frozen=True, slots=True)
class EndpointFilter:
    """Endpoints in any of ``states`` (all when none is given) that carry every tag of
    ``tags``: a key alone matches any value of it, ``key=value`` that value only."""

    states: frozenset[str] = frozenset()
    tags: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, states: list[str], tags: list[str]) -> EndpointFilter:
        wanted = frozenset(state.strip().upper() for state in states)
        unknown = sorted(wanted - set(STATES))
        if unknown:
            raise InvalidParameter(
                f"Unknown state {', '.join(unknown)}: filter by {', '.join(STATES)}."
            )
        return cls(wanted, tuple(_tag(text) for text in tags))

    def matches(self, record: EndpointRecord) -> bool:
        if self.states and not {record.ready.value, record.config_update.value} & self.states:
            return False
        carried = {tag["key"]: tag.get("value") for tag in record.tags}
        return all(
            key in carried and (value is None or carried[key] == value) for key, value in self.tags
        )


def _tag(text: str) -> tuple[str, str | None]:
    key, equals, value = text.partition("=")
    if not key.strip():
        raise InvalidParameter(f"tag {text!r} has no key: give key or key=value.")
    return key.strip(), value if equals else None
