"""What the API routes need, built once by the composition root and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from berth.core.clock import Clock
from berth.identity.tokens import TokenService
from berth.registry.service import Registry
from berth.settings import Settings
from berth.store.db import Database


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    tokens: TokenService
    registry: Registry
