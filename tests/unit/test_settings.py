"""Where a server keeps what it writes: its home, except what every server reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.settings import Settings


def test_inference_tables_and_access_logs_go_to_the_shared_dir_and_nothing_else_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BERTH_SHARED_DIR", raising=False)
    home, shared = tmp_path / "home", tmp_path / "shared"
    alone = Settings(home=home)
    sharing = Settings(home=home, shared_dir=shared)

    assert (alone.inference_dir, alone.logs_dir) == (home / "inference", home / "logs")
    assert (sharing.inference_dir, sharing.logs_dir) == (shared / "inference", shared / "logs")
    assert (sharing.artifacts_location, sharing.envs_dir, sharing.store_url) == (
        alone.artifacts_location,
        alone.envs_dir,
        alone.store_url,
    )
