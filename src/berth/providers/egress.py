"""Where berth's calls to LLM providers may go: never turned on the inside.

An endpoint's creator chooses its provider's base URL. Left unchecked, that makes berth a
proxy into the network it runs in: cloud metadata services, the loopback, private hosts. So a
base URL must be https (unless the operator allows http) and its host must resolve only to
public addresses, unless the operator's allow-list names it. The check runs when the config
is stored, for a clear error, and again in the resolver of every connection, so a name that
resolves elsewhere later (DNS rebinding) still cannot reach the inside. Redirects are never
followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from berth.core.errors import InvalidParameter
from berth.settings import Settings


@dataclass(frozen=True, slots=True)
class Egress:
    allowed_hosts: frozenset[str] = frozenset()
    """Host names or IPs that may be internal and may use http (an operator's own proxy)."""
    allow_http: bool = False

    def allowed(self, host: str) -> bool:
        return host.lower().strip("[]") in self.allowed_hosts

    def check_connect(self, url: str) -> None:
        """Before each call: an address written as such (which no resolver sees) must be
        public or allowed; host names are checked as they resolve (`GuardedResolver`)."""
        host = (urlsplit(url).hostname or "").strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return
        if not self.allowed(host) and not _public(host):
            raise OSError(f"{host} is an internal address; berth does not call it")

    def check_url(self, url: str, field: str) -> None:
        """At create or update: ``url`` may be called, or an error naming ``field``."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise InvalidParameter(f"{field} must be an https:// URL, got {url!r}.")
        if self.allowed(host):
            return
        if parts.scheme == "http" and not self.allow_http:
            raise InvalidParameter(
                f"{field} must use https ({url!r}); an operator may allow http with "
                "BERTH_PROVIDERS__ALLOW_HTTP or name the host in BERTH_PROVIDERS__ALLOWED_HOSTS."
            )
        inside = internal(host)
        if inside:
            raise InvalidParameter(
                f"{field} points at {host}, which resolves to an internal address "
                f"({inside[0]}); berth does not call loopback, link-local, private or metadata "
                "addresses. An operator may name the host in BERTH_PROVIDERS__ALLOWED_HOSTS."
            )


def egress_of(settings: Settings) -> Egress:
    given = settings.providers
    return Egress(frozenset(h.lower() for h in given.allowed_hosts), given.allow_http)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses of hosts not allow-listed."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if self._egress.allowed(host):
            return found
        public = [entry for entry in found if _public(entry["host"])]
        if not public:
            raise OSError(
                f"{host} resolves to an internal address only; berth does not call it "
                "(BERTH_PROVIDERS__ALLOWED_HOSTS)"
            )
        return public

    async def close(self) -> None:
        await self._inner.close()


def internal(host: str) -> list[str]:
    """The addresses of ``host`` that are not public (an IP literal is its own)."""
    try:
        infos: list[Any] = socket.getaddrinfo(host.strip("[]"), None)
    except (OSError, UnicodeError):
        return []
    return [str(i[4][0]) for i in infos if not _public(str(i[4][0]))]


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_global and not ip.is_multicast
