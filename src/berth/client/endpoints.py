"""The endpoints resource of the SDK."""

from __future__ import annotations

from berth.client.transport import Transport


class EndpointsApi:
    def __init__(self, transport: Transport) -> None:
        self._t = transport
