"""Fixtures of the controller's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where controllers keep environments (only berth's own runtime copy, made once)."""
    return tmp_path_factory.mktemp("envs")
