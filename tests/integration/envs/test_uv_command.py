"""berth finds a runnable uv on a fresh machine: the ``uv`` package installed beside berth."""

from __future__ import annotations

import subprocess

import pytest

from berth.envs.uv_command import find_uv

pytestmark = pytest.mark.integration

WITHOUT_UV = "/usr/bin:/bin"
"""A PATH that holds no uv on a machine where only ./uvw installed it."""


def test_without_uv_on_path_the_uv_package_beside_berth_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("UV", raising=False)
    monkeypatch.setenv("PATH", WITHOUT_UV)
    found = find_uv()
    assert found.name == "uv"
    assert subprocess.run([found, "--version"], capture_output=True, check=True).stdout
