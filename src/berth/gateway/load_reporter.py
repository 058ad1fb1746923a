"""A gateway in another process tells the controller the demand it sees, for autoscaling.

Reports go out twice a second while they change, every two seconds otherwise (so the server
knows this gateway still serves), and at once when a request starts waiting for an entity
scaled to zero, so its replica starts without waiting for the next report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable

import httpx

from berth.core.load import LoadReport, report_to_json

log = logging.getLogger(__name__)

EVERY_S = 0.5
KEEPALIVE_S = 2.0


class LoadReporter:
    def __init__(self, control_url: str, token: str, read: Callable[[], LoadReport]) -> None:
        self._url = control_url.rstrip("/") + "/api/2.0/berth/data-plane/load"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._read = read
        self._source = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = asyncio.Event()

    def demand(self, _endpoint: str, _entity: str) -> None:
        """A request waits for a replica that is not there: report now."""
        self._wake.set()

    async def run(self) -> None:
        last: LoadReport | None = None
        sent_at = 0.0
        async with httpx.AsyncClient(headers=self._headers, timeout=10) as http:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), EVERY_S)
                self._wake.clear()
                report = self._read()
                if report == last and time.monotonic() - sent_at < KEEPALIVE_S:
                    continue
                body = {"source": self._source, "load": report_to_json(report)}
                try:
                    (await http.post(self._url, json=body)).raise_for_status()
                except httpx.HTTPError as exc:
                    log.warning("could not report load to the server: %s", exc)
                    continue
                last, sent_at = report, time.monotonic()
