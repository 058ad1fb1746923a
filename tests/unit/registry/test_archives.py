"""Unpacking archives: what is refused before anything is written, and unwrapping."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from berth.core.errors import InvalidParameter
from berth.registry.archives import extract
from berth.registry.source_policy import SourcePolicy

SCORE = b"def load_model():\n    pass\n\ndef predict(data):\n    return data\n"

POLICY = SourcePolicy(home=Path("/nonexistent/berth-home"))


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = SCORE) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _zip(path: Path, names: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in names.items():
            zf.writestr(name, data)
    return path


def _refusal(archive: Path, dest: Path) -> str:
    with pytest.raises(InvalidParameter) as caught:
        extract(archive, dest, "upload 'm.tgz'", POLICY)
    return caught.value.message


def test_tar_is_unpacked_and_its_single_folder_unwrapped(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "m.tgz", _file("model/score.py"), _file("model/data/x.txt"))
    root = extract(archive, tmp_path / "out", "upload", POLICY)
    assert root == tmp_path / "out" / "model"
    assert (root / "score.py").read_bytes() == SCORE
    assert (root / "data" / "x.txt").exists()


def test_flat_archive_is_its_own_root(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "m.zip", {"score.py": SCORE, "sub/x.txt": b"x"})
    root = extract(archive, tmp_path / "out", "upload", POLICY)
    assert root == tmp_path / "out"
    assert (root / "score.py").read_bytes() == SCORE


def test_macos_resource_folder_does_not_stop_unwrapping(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "m.zip", {"model/score.py": SCORE, "__MACOSX/model/._x": b""})
    assert extract(archive, tmp_path / "out", "upload", POLICY) == tmp_path / "out" / "model"


def test_links_inside_the_archive_are_kept(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "m.tgz",
        _file("real/score.py"),
        _link("score.py", "real/score.py"),
        _link("copy.py", "real/score.py", tarfile.LNKTYPE),
    )
    root = extract(archive, tmp_path / "out", "upload", POLICY)
    assert (root / "score.py").is_symlink()
    assert (root / "score.py").read_bytes() == SCORE
    assert (root / "copy.py").read_bytes() == SCORE


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (_file("/etc/evil"), "member '/etc/evil' has an absolute path"),
        (_file("../evil"), "member '../evil' contains '..' and would land outside"),
        (_file("model/../../evil"), "member 'model/../../evil' contains '..'"),
        (_link("escape", "../../etc/passwd"), "member 'escape' links to '../../etc/passwd'"),
        (_link("abs", "/etc/passwd"), "member 'abs' links to '/etc/passwd', outside"),
        (_link("sub/up", "../.."), "member 'sub/up' links to '../..', outside"),
        (_link("hard", "../x", tarfile.LNKTYPE), "member 'hard' links to '../x', outside"),
        (_link("fifo", "", tarfile.FIFOTYPE), "member 'fifo' is a device or pipe"),
    ],
)
def test_escaping_tar_members_are_refused_before_anything_is_written(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None], expected: str
) -> None:
    archive = _tar(tmp_path / "m.tgz", _file("score.py"), member)
    message = _refusal(archive, tmp_path / "out")
    assert message.startswith("upload 'm.tgz': ")
    assert expected in message
    assert list((tmp_path / "out").iterdir()) == []


def test_link_through_an_inner_link_is_refused(tmp_path: Path) -> None:
    """Each name looks harmless alone; ``here/../x`` really is ``../x`` once ``here`` is '.'."""
    archive = _tar(tmp_path / "m.tgz", _link("here", "."), _link("here/up", "../x"))
    message = _refusal(archive, tmp_path / "out")
    assert message.startswith("upload 'm.tgz': member 'here/up' is refused: ")
    assert "outside the destination" in message
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["/abs.py", "../up.py", "C:/windows.py"])
def test_escaping_zip_members_are_refused(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "m.zip", {"score.py": SCORE, name: b"x"})
    assert f"member {name!r}" in _refusal(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_file_that_is_no_archive_is_named(tmp_path: Path) -> None:
    plain = tmp_path / "m.tgz"
    plain.write_bytes(b"just text")
    assert _refusal(plain, tmp_path / "out") == (
        "upload 'm.tgz' is not a .tar.gz, .tgz or .zip archive."
    )


def test_a_truncated_archive_is_called_damaged(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "m.tgz", _file("score.py", SCORE * 1000))
    truncated = tmp_path / "cut.tgz"
    truncated.write_bytes(archive.read_bytes()[:200])
    assert "is a damaged archive" in _refusal(truncated, tmp_path / "out")
