"""The runtime's code is copied once into the environment cache."""

from __future__ import annotations

from pathlib import Path

from berth.envs import runtime_path


def test_runtime_path_is_copied_once(tmp_path: Path) -> None:
    first = runtime_path(tmp_path)
    assert (first / "berth" / "runtime" / "__main__.py").is_file()
    assert (first / "berth" / "core" / "errors.py").is_file()
    assert not (first / "berth" / "api").exists()
    assert runtime_path(tmp_path) == first
    assert [path.name for path in first.parent.iterdir()] == [first.name]
