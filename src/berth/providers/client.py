"""One pooled HTTP client per provider: bounded retries with backoff, errors as berth's.

aiohttp rather than httpx: under many concurrent requests httpx's pool made chat calls through
the gateway collapse to ~170 req/s at concurrency 64 (bench/chat.py), as it had done for
forwarding to replicas.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence

import aiohttp

from berth.core.errors import BerthError, DeadlineExceeded, Unavailable
from berth.providers.base import JsonObject, ProviderOptions
from berth.providers.egress import GuardedResolver
from berth.providers.errors import provider_message, retry_after_s, scrub, upstream_error
from berth.providers.sse import ServerEvent, read_events

# As the OpenAI and Anthropic SDKs do: a lock timeout, a rate limit, or the server's fault.
_RETRIED_STATUSES = frozenset({408, 409, 429})
# Failures before the provider saw the request, or a pooled connection it had closed.
_RETRIED_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)


class ProviderClient:
    """Posts JSON to one provider with fixed headers; ``secrets`` are scrubbed from errors."""

    def __init__(
        self,
        provider: str,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        options: ProviderOptions,
    ) -> None:
        self.provider = provider
        self._secrets = tuple(secrets)
        self._options = options
        self._headers = dict(headers)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        """The pooled session, made on first use (it must be made inside the event loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self._options.connect_timeout_s,
                    sock_read=self._options.timeout_s,
                ),
                connector=aiohttp.TCPConnector(
                    limit=self._options.max_connections,
                    resolver=GuardedResolver(self._options.egress),
                ),
            )
        return self._session

    async def post_json(self, url: str, body: JsonObject) -> JsonObject:
        response = await self._send(url, body)
        try:
            payload = await response.read()
        except TimeoutError as exc:
            raise self._timed_out() from exc
        except aiohttp.ClientError as exc:
            raise self._dropped() from exc
        finally:
            response.release()
        return self._decode(payload)

    async def post_events(self, url: str, body: JsonObject) -> AsyncGenerator[ServerEvent, None]:
        """The provider's server-sent events; close the iterator to free the connection."""
        response = await self._send(url, body)
        try:
            async for event in read_events(_lines(response)):
                yield event
        except TimeoutError as exc:
            raise self._timed_out() from exc
        except aiohttp.ClientError as exc:
            raise self._dropped() from exc
        finally:
            response.release()

    def stream_error(self, data: str) -> BerthError:
        """The error for an error event in a stream that had begun well."""
        said = scrub(provider_message(data.encode()), self._secrets)
        return BerthError(f"The {self.provider} provider failed mid-stream: {said}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _send(self, url: str, body: JsonObject) -> aiohttp.ClientResponse:
        attempt = 0
        while True:
            delay = await self._attempt(url, body, attempt)
            if isinstance(delay, aiohttp.ClientResponse):
                return delay
            await self._options.sleep(delay)
            attempt += 1

    async def _attempt(
        self, url: str, body: JsonObject, attempt: int
    ) -> aiohttp.ClientResponse | float:
        """The successful response, or how long to wait before the next attempt."""
        last = attempt >= self._options.max_retries
        try:
            self._options.egress.check_connect(url)
        except OSError as exc:
            raise Unavailable(f"The {self.provider} provider cannot be called: {exc}.") from exc
        try:
            response = await self._http().post(url, json=body, allow_redirects=False)
        except _RETRIED_ERRORS as exc:
            if last:
                raise Unavailable(
                    f"The {self.provider} provider could not be reached at {url}: "
                    f"{type(exc).__name__}. Retry later."
                ) from exc
            return self._backoff(attempt)
        except TimeoutError as exc:
            raise self._timed_out() from exc
        except aiohttp.ClientError as exc:
            raise self._dropped() from exc
        if 300 <= response.status < 400:
            response.release()
            raise BerthError(
                f"The {self.provider} provider at {url} answered a redirect "
                f"({response.status}); berth does not follow redirects: give the final URL."
            )
        if response.status < 400:
            return response
        return await self._failed(response, attempt, last)

    async def _failed(self, response: aiohttp.ClientResponse, attempt: int, last: bool) -> float:
        try:
            payload = await response.read()
        except (TimeoutError, aiohttp.ClientError):
            payload = b""
        finally:
            response.release()
        asked = retry_after_s(response.headers)
        status = response.status
        retried = status in _RETRIED_STATUSES or status >= 500
        if retried and not last and (asked is None or asked <= self._options.max_backoff_s):
            return self._backoff(attempt) if asked is None else asked
        raise upstream_error(self.provider, status, payload, asked, self._secrets)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._options.max_backoff_s, self._options.backoff_base_s * 2.0**attempt)
        return ceiling * (0.5 + self._options.rng.random() / 2)

    def _decode(self, payload: bytes) -> JsonObject:
        try:
            parsed = json.loads(payload)
        except ValueError as exc:
            raise BerthError(f"The {self.provider} provider answered with invalid JSON.") from exc
        if not isinstance(parsed, dict):
            raise BerthError(f"The {self.provider} provider answered JSON that is no object.")
        return parsed

    def _timed_out(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"The {self.provider} provider did not answer within {self._options.timeout_s:g}s."
        )

    def _dropped(self) -> Unavailable:
        return Unavailable(f"The {self.provider} provider dropped the connection. Retry later.")


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The response body as text lines without their line endings."""
    async for raw in response.content:
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")
