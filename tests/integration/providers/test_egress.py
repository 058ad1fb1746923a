"""Calls to providers cannot be turned on the inside as each connection resolves, so a name
that resolves elsewhere later still cannot; and redirects are not followed."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from berth.core.errors import BerthError, Unavailable
from berth.providers.client import ProviderClient
from berth.providers.egress import Egress
from tests.support.providers import options

pytestmark = pytest.mark.integration

STRICT = Egress()


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, int(port)


async def _answer(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _redirect(_request: web.Request) -> web.Response:
    raise web.HTTPFound("http://169.254.169.254/")


def test_a_name_resolving_inside_is_refused_when_connecting() -> None:
    """``localhost`` passes no check at storage time here (the config could have been stored
    while the name resolved outside): the resolver still refuses it."""

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat", _answer)
        runner, port = await _serve(app)
        guarded = ProviderClient("openai", {}, [], options(egress=STRICT, max_retries=0))
        allowed = ProviderClient("openai", {}, [], options(egress=Egress(frozenset({"localhost"}))))
        try:
            with pytest.raises(Unavailable) as refused:
                await guarded.post_json(f"http://localhost:{port}/v1/chat", {})
            assert "could not be reached" in refused.value.message
            with pytest.raises(Unavailable):
                await guarded.post_json(f"http://127.0.0.1:{port}/v1/chat", {})
            assert await allowed.post_json(f"http://localhost:{port}/v1/chat", {}) == {"ok": True}
        finally:
            await guarded.aclose()
            await allowed.aclose()
            await runner.cleanup()

    asyncio.run(scenario())


def test_redirects_are_not_followed() -> None:
    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat", _redirect)
        runner, port = await _serve(app)
        client = ProviderClient("openai", {}, [], options())
        try:
            with pytest.raises(BerthError) as refused:
                await client.post_json(f"http://127.0.0.1:{port}/v1/chat", {})
            assert "does not follow redirects" in refused.value.message
        finally:
            await client.aclose()
            await runner.cleanup()

    asyncio.run(scenario())
