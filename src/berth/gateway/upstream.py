"""Forwarding a body to a replica over pooled keep-alive connections."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from berth.core.errors import BerthError, DeadlineExceeded, Unavailable


class ReplicaUnreachable(Unavailable):
    """The replica answered nothing: the connection was refused, or dropped before any byte
    of an answer (the process died). Scoring has no side effects a second try could repeat,
    so the gateway may send the request to another replica."""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    content_type: str


class Upstream:
    """One pooled HTTP client for every replica of this process."""

    def __init__(self, max_connections: int = 1024) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http = httpx.AsyncClient(limits=limits, timeout=None, trust_env=False)

    async def post(
        self, address: str, path: str, body: bytes, content_type: str, timeout_s: float
    ) -> UpstreamResponse:
        try:
            response = await self._http.post(
                f"http://{address}{path}",
                content=body,
                headers={"content-type": content_type},
                timeout=timeout_s,
            )
        except httpx.ConnectError as exc:
            raise ReplicaUnreachable(f"Replica at {address} refused the connection.") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise ReplicaUnreachable(f"Replica at {address} dropped the connection.") from exc
        except httpx.TimeoutException as exc:
            raise DeadlineExceeded(f"The model did not answer within {timeout_s:.0f}s.") from exc
        except httpx.HTTPError as exc:
            raise BerthError(f"The replica at {address} failed mid-request: {exc}") from exc
        return UpstreamResponse(
            response.status_code,
            response.content,
            response.headers.get("content-type", "application/json"),
        )

    async def close(self) -> None:
        await self._http.aclose()
