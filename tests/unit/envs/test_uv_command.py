"""berth finds uv where a fresh machine has it: ``$UV`` (``uv run`` sets it), PATH, or the
``uv`` package installed beside berth."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from berth.envs.uv_command import find_uv

WITHOUT_UV = "/usr/bin:/bin"
"""A PATH that holds no uv on a machine where only ./uvw installed it."""


def test_the_uv_running_berth_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    own = tmp_path / "uv"
    own.write_text("#!/bin/sh\necho uv 0.0.0\n")
    own.chmod(0o755)
    monkeypatch.setenv("UV", str(own))
    assert find_uv() == own


def test_a_uv_variable_naming_nothing_runnable_is_passed_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UV", str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", WITHOUT_UV)
    assert find_uv() != tmp_path / "missing"
    assert os.access(find_uv(), os.X_OK)
