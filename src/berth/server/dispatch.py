"""The outermost ASGI app: data-plane paths go straight to the gateway, the rest to the API."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from berth.gateway.app import Gateway


class Dispatch:
    def __init__(self, gateway: Gateway, api: ASGIApp) -> None:
        self._gateway = gateway
        self._api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._gateway.handles(scope["path"]):
            await self._gateway(scope, receive, send)
        else:
            await self._api(scope, receive, send)
