"""One pooled HTTP client per provider: bounded retries with backoff, errors as berth's."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence

import httpx

from berth.core.errors import BerthError, DeadlineExceeded, Unavailable
from berth.providers.base import JsonObject, ProviderOptions
from berth.providers.errors import provider_message, retry_after_s, scrub, upstream_error
from berth.providers.sse import ServerEvent, read_events

# As the OpenAI and Anthropic SDKs do: a lock timeout, a rate limit, or the server's fault.
_RETRIED_STATUSES = frozenset({408, 409, 429})
# Failures before the provider saw the request, or a pooled connection it had closed.
_RETRIED_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


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
        self._http = httpx.AsyncClient(
            headers=dict(headers),
            timeout=httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s),
            limits=httpx.Limits(max_connections=options.max_connections),
        )

    async def post_json(self, url: str, body: JsonObject) -> JsonObject:
        response = await self._send(url, body)
        try:
            payload = await response.aread()
        except httpx.TimeoutException as exc:
            raise self._timed_out() from exc
        except httpx.TransportError as exc:
            raise self._dropped() from exc
        finally:
            await response.aclose()
        return self._decode(payload)

    async def post_events(self, url: str, body: JsonObject) -> AsyncGenerator[ServerEvent, None]:
        """The provider's server-sent events; close the iterator to free the connection."""
        response = await self._send(url, body)
        try:
            async for event in read_events(response.aiter_lines()):
                yield event
        except httpx.TimeoutException as exc:
            raise self._timed_out() from exc
        except httpx.TransportError as exc:
            raise self._dropped() from exc
        finally:
            await response.aclose()

    def stream_error(self, data: str) -> BerthError:
        """The error for an error event in a stream that had begun well."""
        said = scrub(provider_message(data.encode()), self._secrets)
        return BerthError(f"The {self.provider} provider failed mid-stream: {said}")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, url: str, body: JsonObject) -> httpx.Response:
        attempt = 0
        while True:
            delay = await self._attempt(url, body, attempt)
            if isinstance(delay, httpx.Response):
                return delay
            await self._options.sleep(delay)
            attempt += 1

    async def _attempt(self, url: str, body: JsonObject, attempt: int) -> httpx.Response | float:
        """The successful response, or how long to wait before the next attempt."""
        last = attempt >= self._options.max_retries
        try:
            response = await self._http.send(
                self._http.build_request("POST", url, json=body), stream=True
            )
        except _RETRIED_ERRORS as exc:
            if last:
                raise Unavailable(
                    f"The {self.provider} provider could not be reached at {url}: "
                    f"{type(exc).__name__}. Retry later."
                ) from exc
            return self._backoff(attempt)
        except httpx.TimeoutException as exc:
            raise self._timed_out() from exc
        except httpx.TransportError as exc:
            raise self._dropped() from exc
        if response.is_success:
            return response
        return await self._failed(response, attempt, last)

    async def _failed(self, response: httpx.Response, attempt: int, last: bool) -> float:
        try:
            payload = await response.aread()
        except httpx.TransportError:
            payload = b""
        finally:
            await response.aclose()
        asked = retry_after_s(response.headers)
        status = response.status_code
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
