"""``BerthClient``: one entry point with a sub-API per resource."""

from __future__ import annotations

from types import TracebackType

from berth.client.endpoints import EndpointsApi
from berth.client.envs import EnvsApi
from berth.client.governance import GovernanceApi
from berth.client.identity import GroupsApi, ServicePrincipalsApi, TokensApi, UsersApi
from berth.client.models import ModelsApi
from berth.client.secrets import SecretsApi
from berth.client.transport import Transport


class BerthClient:
    """Talks to a berth server; host and token default to ``BERTH_HOST`` and ``BERTH_TOKEN``."""

    def __init__(self, host: str | None = None, token: str | None = None, timeout: float = 60.0):
        self._transport = Transport(host, token, timeout)
        self.models = ModelsApi(self._transport)
        self.endpoints = EndpointsApi(self._transport)
        self.envs = EnvsApi(self._transport)
        self.secrets = SecretsApi(self._transport)
        self.governance = GovernanceApi(self._transport)
        self.users = UsersApi(self._transport)
        self.service_principals = ServicePrincipalsApi(self._transport)
        self.groups = GroupsApi(self._transport)
        self.tokens = TokensApi(self._transport)

    @property
    def host(self) -> str:
        return self._transport.host

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> BerthClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
