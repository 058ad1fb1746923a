"""Folders of artifacts on this machine: directories as they are, URLs copied once."""

from __future__ import annotations

import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from berth.core.artifact_copies import ArtifactCopies, as_uri, is_url, local_dir
from berth.core.errors import Unavailable


@pytest.fixture
def stored() -> Iterator[str]:
    """An artifact at a URL of fsspec's in-memory filesystem: two files, one in a folder."""
    fs = fsspec.filesystem("memory")
    root = f"/artifacts-{uuid.uuid4().hex}/m/1"
    fs.pipe({f"{root}/score.py": b"print(1)", f"{root}/code/util.py": b"X = 2"})
    yield f"memory://{root}"
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_a_directory_is_its_own_copy(tmp_path: Path) -> None:
    copies = ArtifactCopies(tmp_path / "copies")
    assert copies.local(str(tmp_path / "a")) == tmp_path / "a"
    assert copies.local((tmp_path / "a").as_uri()) == tmp_path / "a"
    assert not (tmp_path / "copies").exists(), "nothing is copied"
    assert not is_url("/srv/a") and not is_url("file:///srv/a") and is_url("s3://b/a")
    assert local_dir("file:///srv/a") == Path("/srv/a")


def test_a_url_is_copied_once_whole_and_readable_by_the_sandbox(
    tmp_path: Path, stored: str
) -> None:
    copies = ArtifactCopies(tmp_path / "copies")
    where = copies.where(stored)
    assert not where.exists(), "where reads nothing"
    assert copies.local(stored) == where
    assert (where / "score.py").read_bytes() == b"print(1)"
    assert (where / "code" / "util.py").read_bytes() == b"X = 2"
    assert stat.S_IMODE((where / "code").stat().st_mode) == 0o755
    assert stat.S_IMODE((where / "score.py").stat().st_mode) == 0o644
    fsspec.filesystem("memory").rm(stored.removeprefix("memory://"), recursive=True)
    assert copies.local(stored) == where, "a version never changes: the copy is kept"
    assert copies.where(str(where)) == where
    assert list((tmp_path / "copies").iterdir()) == [where], "no half copy is left beside it"


def test_processes_copying_at_once_all_get_the_whole_copy(tmp_path: Path, stored: str) -> None:
    copies = ArtifactCopies(tmp_path / "copies")
    got: list[Path] = []
    threads = [threading.Thread(target=lambda: got.append(copies.local(stored))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == [copies.where(stored)] * 4
    assert (got[0] / "code" / "util.py").read_bytes() == b"X = 2"
    assert list((tmp_path / "copies").iterdir()) == [got[0]]


def test_a_missing_artifact_is_unavailable_and_leaves_nothing(tmp_path: Path) -> None:
    copies = ArtifactCopies(tmp_path / "copies")
    with pytest.raises(Unavailable, match="memory://gone/m/1 could not be copied"):
        copies.local("memory://gone/m/1")
    assert list((tmp_path / "copies").iterdir()) == []


def test_a_url_shown_to_users_carries_no_password() -> None:
    assert as_uri("ftp://berth:s3cret@store:2121/a/m/1") == "ftp://berth@store:2121/a/m/1"
    assert as_uri("s3://bucket/a/m/1") == "s3://bucket/a/m/1"
    assert as_uri("/srv/a/m/1") == "file:///srv/a/m/1"
