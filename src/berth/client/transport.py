"""HTTP transport of the SDK: bearer auth, JSON in and out, errors as ``ApiError``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

DEFAULT_HOST = "http://127.0.0.1:8000"


class ApiError(Exception):
    """A berth (Databricks-shaped) error answer: ``error_code``, ``message`` and HTTP status."""

    def __init__(self, error_code: str, message: str, status: int) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message
        self.status = status


def resolve_host(host: str | None) -> str:
    return (host or os.environ.get("BERTH_HOST") or DEFAULT_HOST).rstrip("/")


def resolve_token(token: str | None) -> str | None:
    return token or os.environ.get("BERTH_TOKEN")


class Transport:
    """One pooled httpx client per SDK client."""

    def __init__(self, host: str | None = None, token: str | None = None, timeout: float = 60.0):
        self.host = resolve_host(host)
        headers = {"User-Agent": "berth-sdk"}
        resolved = resolve_token(token)
        if resolved:
            headers["Authorization"] = f"Bearer {resolved}"
        self._http = httpx.Client(base_url=self.host, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise _as_api_error(response)
        if not response.content:
            return {}
        return response.json()

    @contextmanager
    def stream_lines(self, method: str, path: str, **kwargs: Any) -> Iterator[Iterator[str]]:
        """The answer's lines as they arrive; an error answer raises before any line."""
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if response.is_error:
                    response.read()
                    raise _as_api_error(response)
                yield response.iter_lines()
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def close(self) -> None:
        self._http.close()

    def _unreachable(self, exc: httpx.TransportError) -> ApiError:
        return ApiError(
            "TEMPORARILY_UNAVAILABLE",
            f"Cannot reach berth at {self.host}: {exc}. Is 'berth serve' running "
            "and BERTH_HOST set to its address?",
            503,
        )


def _as_api_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error_code" in body:
        return ApiError(str(body["error_code"]), str(body.get("message", "")), response.status_code)
    return ApiError("INTERNAL_ERROR", response.text or response.reason_phrase, response.status_code)
