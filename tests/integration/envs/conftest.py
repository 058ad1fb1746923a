"""Tiny artifact folders written into ``tmp_path`` for the environment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.envs import MakeArtifact, write_artifact


@pytest.fixture
def make_artifact(tmp_path: Path) -> MakeArtifact:
    """``make_artifact({"path": "text"})``: a folder holding those (dedented) files."""
    return lambda files: write_artifact(tmp_path / "artifact", files)
