"""Reading a running server's secrets back in-process, and running ``berth secrets`` itself."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from berth.core.clock import SystemClock
from berth.secrets import SecretCipher, SecretsService, load_key
from berth.settings import Settings
from berth.store.db import Database
from tests.support.servers import BerthServer


@dataclass
class Reader:
    """The server's own secrets service, opened on its store and key: reads values back."""

    server: BerthServer
    secret_key: str | None = None

    def reveal(self, scope: str, key: str) -> bytes:
        settings = Settings(
            home=self.server.home,
            database_url=self.server.database_url,
            secret_key=SecretStr(self.secret_key) if self.secret_key else None,
        )
        db = Database(settings.store_url)
        try:
            return SecretsService(db, SystemClock(), SecretCipher(load_key(settings))).reveal(
                scope, key
            )
        finally:
            db.dispose()


def run_cli(server: BerthServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DATABRICKS_"))}
    env.update(BERTH_HOST=server.url, BERTH_TOKEN=server.token)
    return subprocess.run(
        [sys.executable, "-m", "berth", "secrets", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


REFERENCED = {("llm", "openai"), ("llm", "anthropic"), ("a", "b"), ("team", "token")}
"""Secrets that endpoint tests reference: the controller resolves references, so they exist."""


def ensure_referenced_secrets(api: httpx.Client) -> None:
    for scope, key in sorted(REFERENCED):
        made = api.post("/api/2.0/secrets/scopes/create", json={"scope": scope})
        assert made.status_code in (200, 409), made.text
        put = {"scope": scope, "key": key, "string_value": f"test-value-of-{scope}-{key}"}
        assert api.post("/api/2.0/secrets/put", json=put).status_code == 200
