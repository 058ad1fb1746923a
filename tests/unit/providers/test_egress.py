"""Calls to providers cannot be turned on the inside: checked when a config is stored and again
as each connection resolves, so a name that resolves elsewhere later still cannot."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from berth.core.errors import BerthError, InvalidParameter, Unavailable
from berth.providers.client import ProviderClient
from berth.providers.egress import Egress
from tests.unit.providers.support import options

STRICT = Egress()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://api.example.com/v1", "https"),
        ("https://127.0.0.1:8443/v1", "internal address"),
        ("https://localhost/v1", "internal address"),
        ("https://169.254.169.254/latest", "internal address"),
        ("https://10.1.2.3/v1", "internal address"),
        ("https://[::1]/v1", "internal address"),
        ("ftp://files.example.com/x", "https://"),
    ],
)
def test_internal_or_plain_http_base_urls_are_refused_when_stored(url: str, says: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        STRICT.check_url(url, "openai_config.openai_api_base")
    assert says in refused.value.message
    assert "openai_config.openai_api_base" in refused.value.message


def test_the_operators_allow_list_admits_a_host_over_http() -> None:
    Egress(frozenset({"localhost"})).check_url("http://localhost:9000/v1", "x")
    Egress(allow_http=True).check_url("http://1.1.1.1/v1", "x")


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
