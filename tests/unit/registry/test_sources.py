"""Fetching sources: local folders, file:// URIs, other fsspec filesystems, uploads."""

from __future__ import annotations

import io
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from berth.core.errors import InvalidParameter, PayloadTooLarge, PermissionDenied
from berth.registry.source_policy import SourcePolicy
from berth.registry.sources import PackagedFiles, SourceUri, UploadedArchive, fetch

SUM_SCORE = Path(__file__).resolve().parents[2] / "fakes" / "models" / "sum_score"
POLICY = SourcePolicy(
    home=Path("/nonexistent/berth-home"), protocols=frozenset({"memory", "nosuchproto"})
)
"""An admin's view: any path outside berth's home, these test protocols."""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "artifacts" / "~staging-test"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A folder of fsspec's in-memory filesystem, standing in for an object store."""
    fs = fsspec.filesystem("memory")
    root = f"/berth-test-{uuid.uuid4().hex}"
    yield root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _names(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _tgz_bytes(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        tf.add(folder, arcname="model")
    return buffer.getvalue()


def _refusal(source: SourceUri, work: Path) -> str:
    with pytest.raises(InvalidParameter) as caught:
        fetch(source, work, POLICY, admin=True)
    return caught.value.message


def test_local_folder_is_copied_with_links_followed(tmp_path: Path, work: Path) -> None:
    source = Path(shutil.copytree(SUM_SCORE, tmp_path / "src"))
    (source / "linked.txt").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "outside.txt").write_text("content")
    root = fetch(SourceUri(str(source)), work, POLICY, admin=True)
    assert _names(root) == {"score.py", "runtime.yaml", "requirements.txt", "linked.txt"}
    assert not (root / "linked.txt").is_symlink()
    assert (root / "linked.txt").read_text() == "content"


def test_file_uri_reads_the_local_path(work: Path) -> None:
    root = fetch(SourceUri(SUM_SCORE.as_uri()), work, POLICY, admin=True)
    assert (root / "score.py").read_bytes() == (SUM_SCORE / "score.py").read_bytes()


def test_local_archive_file_is_unpacked(tmp_path: Path, work: Path) -> None:
    archive = tmp_path / "m.tgz"
    archive.write_bytes(_tgz_bytes(SUM_SCORE))
    root = fetch(SourceUri(str(archive)), work, POLICY, admin=True)
    assert root.name == "model"
    assert "score.py" in _names(root)


def test_upload_is_unpacked(work: Path) -> None:
    upload = UploadedArchive("m.tgz", io.BytesIO(_tgz_bytes(SUM_SCORE)))
    assert "score.py" in _names(fetch(upload, work, POLICY, admin=True))
    assert upload.recorded == "upload:m.tgz"


def test_fsspec_tree_is_copied(memory_root: str, work: Path) -> None:
    fs = fsspec.filesystem("memory")
    for path in SUM_SCORE.iterdir():
        fs.pipe(f"{memory_root}/model/{path.name}", path.read_bytes())
    fs.pipe(f"{memory_root}/model/data/weights.bin", b"\x00\x01")
    root = fetch(SourceUri(f"memory://{memory_root}/model"), work, POLICY, admin=True)
    assert _names(root) == {
        "score.py",
        "runtime.yaml",
        "requirements.txt",
        "data",
        "data/weights.bin",
    }
    assert (root / "data" / "weights.bin").read_bytes() == b"\x00\x01"


def test_fsspec_archive_is_downloaded_and_unpacked(memory_root: str, work: Path) -> None:
    fsspec.filesystem("memory").pipe(f"{memory_root}/m.tgz", _tgz_bytes(SUM_SCORE))
    root = fetch(SourceUri(f"memory://{memory_root}/m.tgz"), work, POLICY, admin=True)
    assert "score.py" in _names(root)


def test_missing_fsspec_path_is_named(memory_root: str, work: Path) -> None:
    uri = f"memory://{memory_root}/nothing"
    assert _refusal(SourceUri(uri), work) == f"source '{uri}' does not exist."


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/no/such/berth/model", "source '/no/such/berth/model' does not exist on the server's"),
        ("file:///no/such/model", "source 'file:///no/such/model' does not exist"),
        ("relative/model", "source 'relative/model' is a relative path; give an absolute path"),
        ("file://elsewhere/model", "names host 'elsewhere'; file:// URIs must point at this"),
        ("nosuchproto://bucket/model", "source 'nosuchproto://bucket/model' cannot be read:"),
    ],
)
def test_bad_sources_are_named(source: str, expected: str, work: Path) -> None:
    assert expected in _refusal(SourceUri(source), work)


def test_a_plain_file_is_not_an_artifact(work: Path) -> None:
    source = SUM_SCORE / "score.py"
    assert _refusal(SourceUri(str(source)), work) == (
        f"source '{source}' is not a .tar.gz, .tgz or .zip archive."
    )


def test_a_source_holding_the_artifact_store_is_refused(tmp_path: Path, work: Path) -> None:
    assert "contains berth's own artifact store" in _refusal(SourceUri(str(tmp_path)), work)


GGUF_BYTES = b"GGUF\x03\x00\x00\x00" + bytes(16)
"""Only the name tells a model file from an archive here; its header is read by ``detect``."""


def test_a_local_gguf_file_is_stored_as_a_folder_holding_it(tmp_path: Path, work: Path) -> None:
    (tmp_path / "tiny.gguf").write_bytes(GGUF_BYTES)
    for source in (str(tmp_path / "tiny.gguf"), (tmp_path / "tiny.gguf").as_uri()):
        shutil.rmtree(work / "tree", ignore_errors=True)
        root = fetch(SourceUri(source), work, POLICY, admin=True)
        assert _names(root) == {"tiny.gguf"}
        assert (root / "tiny.gguf").read_bytes() == GGUF_BYTES


def test_an_uploaded_gguf_file_keeps_its_name_and_nothing_of_its_path(work: Path) -> None:
    upload = UploadedArchive("..\\models/../tiny.gguf", io.BytesIO(GGUF_BYTES))
    root = fetch(upload, work, POLICY, admin=True)
    assert root.parent == work and _names(root) == {"tiny.gguf"}
    assert (root / "tiny.gguf").read_bytes() == GGUF_BYTES


def test_an_uploaded_gguf_file_is_counted_against_the_upload_cap(work: Path) -> None:
    capped = SourcePolicy(home=POLICY.home, max_upload_bytes=len(GGUF_BYTES) - 1)
    with pytest.raises(PayloadTooLarge) as caught:
        fetch(UploadedArchive("tiny.gguf", io.BytesIO(GGUF_BYTES)), work, capped, admin=True)
    assert "over the upload cap of 23 bytes" in caught.value.message


def test_a_remote_gguf_file_is_downloaded_into_a_folder(memory_root: str, work: Path) -> None:
    fsspec.filesystem("memory").pipe(f"{memory_root}/tiny.gguf", GGUF_BYTES)
    root = fetch(SourceUri(f"memory://{memory_root}/tiny.gguf"), work, POLICY, admin=True)
    assert _names(root) == {"tiny.gguf"}
    assert (root / "tiny.gguf").read_bytes() == GGUF_BYTES


def test_a_gguf_file_is_read_only_where_the_caller_may_read(tmp_path: Path, work: Path) -> None:
    (tmp_path / "tiny.gguf").write_bytes(GGUF_BYTES)
    with pytest.raises(PermissionDenied) as caught:
        fetch(SourceUri(str(tmp_path / "tiny.gguf")), work, POLICY, admin=False)
    assert "only admins may register from there" in caught.value.message
    assert not (work / "tree").exists()


def test_nothing_in_the_shared_dir_is_read_even_by_admins_even_through_a_link(
    tmp_path: Path, work: Path
) -> None:
    """Other endpoints' payloads and access logs live there."""
    shared = tmp_path / "shared"
    shutil.copytree(SUM_SCORE, shared / "logs" / "ep")
    (tmp_path / "link").symlink_to(shared / "logs")
    policy = SourcePolicy(home=POLICY.home, shared=shared)
    for source in (shared / "logs" / "ep", tmp_path / "link" / "ep"):
        with pytest.raises(PermissionDenied, match="berth's own data directory"):
            fetch(SourceUri(str(source)), work, policy, admin=True)
    assert fetch(SourceUri(str(SUM_SCORE)), work, policy, admin=True).is_dir()


def test_packaged_files_are_copied_under_their_artifact_names(tmp_path: Path, work: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01")
    files = [(SUM_SCORE, "model"), (tmp_path / "weights.bin", "w.bin")]
    source = PackagedFiles("garden:x", "garden model 'x'", files)
    root = fetch(source, work, POLICY, admin=False)
    assert _names(root) == {"model", "w.bin"} | {f"model/{p.name}" for p in SUM_SCORE.iterdir()}
