"""Artifact folders are placed and removed all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.registry.artifacts import ArtifactStore


class Boom(Exception):
    pass


def _built(work: Path) -> Path:
    built = work / "tree"
    built.mkdir()
    (built / "score.py").write_text("x")
    return built


def test_placed_folder_is_taken_back_when_the_block_fails(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.staging() as work, pytest.raises(Boom), store.placing() as place:
        place(_built(work), store.version_dir("m", 1))
        assert (store.version_dir("m", 1) / "score.py").exists()
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_placing_replaces_a_leftover_folder(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    leftover = store.version_dir("m", 1)
    leftover.mkdir(parents=True)
    (leftover / "stale.txt").write_text("old")
    with store.staging() as work, store.placing() as place:
        place(_built(work), leftover)
    assert [p.name for p in leftover.iterdir()] == ["score.py"]
    assert list(tmp_path.iterdir()) == [tmp_path / "m"]


def test_removal_is_undone_when_the_block_fails(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    target = store.version_dir("m", 2)
    target.mkdir(parents=True)
    (target / "score.py").write_text("x")
    with pytest.raises(Boom), store.removing() as remove:
        remove(target)
        assert not target.exists()
        raise Boom
    assert (target / "score.py").read_text() == "x"
    assert list(tmp_path.iterdir()) == [tmp_path / "m"]


def test_removal_is_final_when_the_block_succeeds(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.version_dir("m", 1).mkdir(parents=True)
    with store.removing() as remove:
        remove(store.model_dir("m"))
        remove(store.model_dir("never-made"))
    assert list(tmp_path.iterdir()) == []
