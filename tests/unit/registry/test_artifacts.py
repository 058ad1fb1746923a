"""Artifact folders are placed and removed all-or-nothing, in a directory and at a URL."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from berth.registry.artifacts import ArtifactStore


class Boom(Exception):
    pass


def _built(work: Path) -> Path:
    built = work / "tree"
    (built / "code").mkdir(parents=True)
    (built / "score.py").write_text("x")
    (built / "code" / "util.py").write_text("y")
    return built


def test_placed_folder_is_taken_back_when_the_block_fails(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path), tmp_path / "unused")
    with store.staging() as work, pytest.raises(Boom), store.placing() as place:
        place(_built(work), store.version_location("m", 1))
        assert (Path(store.version_location("m", 1)) / "score.py").exists()
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_placing_replaces_a_leftover_folder(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path), tmp_path / "unused")
    leftover = Path(store.version_location("m", 1))
    leftover.mkdir(parents=True)
    (leftover / "stale.txt").write_text("old")
    with store.staging() as work, store.placing() as place:
        place(_built(work), str(leftover))
    assert sorted(p.name for p in leftover.iterdir()) == ["code", "score.py"]
    assert list(tmp_path.iterdir()) == [tmp_path / "m"]


def test_removal_is_undone_when_the_block_fails(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path), tmp_path / "unused")
    target = Path(store.version_location("m", 2))
    target.mkdir(parents=True)
    (target / "score.py").write_text("x")
    with pytest.raises(Boom), store.removing() as remove:
        remove(str(target))
        assert not target.exists()
        raise Boom
    assert (target / "score.py").read_text() == "x"
    assert list(tmp_path.iterdir()) == [tmp_path / "m"]


def test_removal_is_final_when_the_block_succeeds(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path), tmp_path / "unused")
    Path(store.version_location("m", 1)).mkdir(parents=True)
    with store.removing() as remove:
        remove(store.model_location("m"))
        remove(store.model_location("never-made"))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def url() -> str:
    """A fresh root in fsspec's in-memory filesystem (a real fsspec filesystem, in process)."""
    return f"memory://artifacts-{uuid.uuid4().hex}"


def _files(url: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(url)
    return sorted(name.removeprefix(root + "/") for name in fs.find(root))


def test_a_url_store_uploads_every_file_and_stages_on_this_machine(
    tmp_path: Path, url: str
) -> None:
    store = ArtifactStore(url, tmp_path / "work")
    with store.staging() as work, store.placing() as place:
        assert work.parent == tmp_path / "work"
        place(_built(work), store.version_location("m", 1))
    assert store.version_location("m", 1) == f"{url}/m/1"
    assert _files(url) == ["m/1/code/util.py", "m/1/score.py"]
    assert list((tmp_path / "work").iterdir()) == [], "the staging folder is gone"


def test_a_url_store_deletes_an_upload_whose_block_fails(tmp_path: Path, url: str) -> None:
    store = ArtifactStore(url, tmp_path / "work")
    with store.staging() as work, pytest.raises(Boom), store.placing() as place:
        place(_built(work), store.version_location("m", 1))
        assert _files(url) == ["m/1/code/util.py", "m/1/score.py"]
        raise Boom
    assert _files(url) == []


def test_a_url_store_removes_only_once_the_block_succeeds(tmp_path: Path, url: str) -> None:
    store = ArtifactStore(url, tmp_path / "work")
    with store.staging() as work, store.placing() as place:
        place(_built(work), store.version_location("m", 1))
    with pytest.raises(Boom), store.removing() as remove:
        remove(store.version_location("m", 1))
        raise Boom
    assert _files(url) == ["m/1/code/util.py", "m/1/score.py"]
    with store.removing() as remove:
        remove(store.version_location("m", 1))
        remove(store.model_location("never-made"))
        assert _files(url) == ["m/1/code/util.py", "m/1/score.py"], "not before the commit"
    assert _files(url) == []
