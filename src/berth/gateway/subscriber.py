"""Following the controller from another process: long-polls its snapshots into a local bus."""

from __future__ import annotations

import asyncio
import logging

import httpx

from berth.core.dataplane import Snapshot, SnapshotBus
from berth.secrets.cipher import SecretCipher
from berth.secrets.sealed_snapshot import open_externals

log = logging.getLogger(__name__)


class Subscriber:
    """Keeps ``bus`` at the controller's newest snapshot until cancelled."""

    def __init__(
        self,
        control_url: str,
        token: str,
        bus: SnapshotBus,
        cipher: SecretCipher,
        poll_s: float = 30,
    ) -> None:
        """``cipher`` (the server's secret key) opens external models' sealed credentials."""
        self._cipher = cipher
        self._url = control_url.rstrip("/") + "/api/2.0/berth/data-plane"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._bus = bus
        self._poll_s = poll_s

    async def run(self) -> None:
        async with httpx.AsyncClient(headers=self._headers, timeout=self._poll_s + 10) as http:
            while True:
                try:
                    await self.follow_once(http)
                except httpx.HTTPError as exc:
                    log.warning("cannot reach the controller at %s: %s", self._url, exc)
                    await asyncio.sleep(1.0)

    async def follow_once(self, http: httpx.AsyncClient) -> Snapshot:
        """Wait for the next snapshot after the one held, and publish it locally."""
        params = {"after": self._bus.current.version, "timeout": self._poll_s}
        response = await http.get(self._url, params=params)
        response.raise_for_status()
        snapshot = Snapshot.from_json(open_externals(response.json(), self._cipher))
        if snapshot.version != self._bus.current.version:
            self._bus.publish(snapshot)
        return snapshot
