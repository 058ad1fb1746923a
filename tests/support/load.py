"""A bounded background load: a few clients querying an endpoint until told to stop; and a
burst: a fixed number of queries from many clients at once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.net import wait_until

CLIENTS = 32
"""Concurrent clients of a burst."""


@dataclass
class Load:
    url: str
    token: str
    endpoint: str
    clients: int = 4
    max_seconds: float = 120.0
    body: dict[str, Any] = field(default_factory=lambda: {"instances": [[1, 2]]})
    failures: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    answers: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for i in range(self.clients):
            thread = threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        # Under load means already answering: a fast change must not slip in before it.
        wait_until(lambda: self.total >= self.clients, timeout=30, what="the load to flow")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    @property
    def total(self) -> int:
        return sum(self.versions.values()) + len(self.failures)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    answer = client.post(
                        f"/serving-endpoints/{self.endpoint}/invocations", json=self.body
                    )
                except httpx.HTTPError as exc:
                    self.failures.append(f"transport: {exc!r}")
                    continue
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code}: {answer.text}")
                    continue
                version = str(answer.json().get("version"))
                self.versions[version] += 1
                self.answers.append((time.monotonic(), version))


def hammer(urls: list[str], token: str, name: str, total: int) -> list[httpx.Response]:
    """``total`` queries spread over ``urls`` from CLIENTS concurrent clients: query ``i`` goes
    to ``urls[i % len(urls)]`` (for one or two urls, or any count dividing CLIENTS)."""
    clients = [
        httpx.Client(base_url=urls[i % len(urls)], headers={"Authorization": f"Bearer {token}"})
        for i in range(CLIENTS)
    ]

    def send(i: int) -> httpx.Response:
        return clients[i % CLIENTS].post(f"/serving-endpoints/{name}/invocations", json={"i": i})

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            return list(pool.map(send, range(total)))
    finally:
        for client in clients:
            client.close()
