"""Registering models and their versions."""

from __future__ import annotations

from pathlib import Path

from berth.core.clock import Clock
from berth.store.db import Database


class Registry:
    def __init__(self, db: Database, clock: Clock, artifacts_dir: Path) -> None:
        self._db = db
        self._clock = clock
        self._artifacts_dir = artifacts_dir
