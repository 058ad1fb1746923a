"""Tiny artifact folders written into ``tmp_path`` for the environment tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.unit.envs.support import MakeArtifact


@pytest.fixture
def make_artifact(tmp_path: Path) -> MakeArtifact:
    """``make_artifact({"path": "text"})``: a folder holding those (dedented) files."""

    def make(files: dict[str, str]) -> Path:
        root = tmp_path / "artifact"
        root.mkdir()
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return root

    return make
