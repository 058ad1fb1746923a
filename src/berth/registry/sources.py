"""Bringing an artifact into a work folder: a path on this machine, an fsspec URI, an upload,
the files of a model garden entry, or nothing (a custom container that needs no files).

Local folders are copied with their links followed, so the stored artifact is whole and
does not change when the original does. A single ``.gguf`` file, however it comes, is stored
as a folder holding that one file.
"""

from __future__ import annotations

import posixpath
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import fsspec

from berth.core.errors import BerthError, InvalidParameter, PermissionDenied
from berth.registry import archives
from berth.registry.formats import GGUF_SUFFIX
from berth.registry.source_policy import SourcePolicy


@dataclass(frozen=True, slots=True)
class SourceUri:
    """A path on the server's machine, a ``file://`` URI or any other fsspec URI."""

    uri: str

    @property
    def recorded(self) -> str:
        return self.uri

    @property
    def label(self) -> str:
        return f"source '{self.uri}'"


@dataclass(frozen=True, slots=True)
class UploadedArchive:
    """An uploaded archive, or an uploaded ``.gguf`` file (told apart by ``filename``)."""

    filename: str
    stream: BinaryIO

    @property
    def recorded(self) -> str:
        return f"upload:{self.filename}"

    @property
    def label(self) -> str:
        return f"uploaded file '{self.filename}'"


@dataclass(frozen=True, slots=True)
class PackagedFiles:
    """Files berth itself chose from an installed package (a model garden entry), each with
    its name in the artifact. They are read without the source policy, which rules what
    callers name: no caller named these."""

    recorded: str
    label: str
    files: Sequence[tuple[Path, str]]


@dataclass(frozen=True, slots=True)
class NoArtifact:
    """No files: a custom container whose server needs none gets an empty artifact folder."""

    recorded: str = ""
    label: str = "no source"


ArtifactSource = SourceUri | UploadedArchive | PackagedFiles | NoArtifact


def fetch(source: ArtifactSource, work: Path, policy: SourcePolicy, admin: bool) -> Path:
    """Copy or unpack ``source`` under the empty folder ``work`` as ``policy`` allows for the
    caller (``admin`` or not); returns the artifact root."""
    if isinstance(source, PackagedFiles):
        return _copy_packaged(source.files, work / "tree")
    if isinstance(source, NoArtifact):
        tree = work / "tree"
        tree.mkdir()
        return tree
    if isinstance(source, UploadedArchive):
        weights = _gguf_name(source.filename)
        if weights is not None:
            target = _lone_file(work, weights)
            with target.open("wb") as out:
                _copy_capped(source.stream, out, policy, source.label)
            return target.parent
        archive = work / "upload"
        with archive.open("wb") as out:
            _copy_capped(source.stream, out, policy, source.label)
        return archives.extract(archive, work / "tree", source.label, policy)
    uri = source.uri
    if "://" not in uri:
        return _fetch_local(Path(uri).expanduser(), work, source.label, policy, admin)
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidParameter(
                f"{source.label} names host '{parts.netloc}'; file:// URIs must point at this "
                "machine (file:///path/to/model)."
            )
        return _fetch_local(Path(unquote(parts.path)), work, source.label, policy, admin)
    policy.check_remote(uri, source.label)
    return _fetch_remote(uri, work, source.label, policy)


def _gguf_name(path: str) -> str | None:
    """The file name of ``path`` (``/`` or ``\\`` separated) when it names a ``.gguf`` file."""
    name = PurePosixPath(path.replace("\\", "/")).name
    return name if PurePosixPath(name).suffix == GGUF_SUFFIX else None


def _lone_file(work: Path, name: str) -> Path:
    """Where a single ``.gguf`` file goes: into a folder that holds only it."""
    tree = work / "tree"
    tree.mkdir()
    return tree / name


def _copy_packaged(files: Sequence[tuple[Path, str]], tree: Path) -> Path:
    tree.mkdir()
    for path, name in files:
        if path.is_dir():
            shutil.copytree(path, tree / name)
        else:
            shutil.copy2(path, tree / name)
    return tree


def _copy_capped(stream: BinaryIO, out: BinaryIO, policy: SourcePolicy, label: str) -> None:
    size = 0
    while chunk := stream.read(1 << 20):
        size += len(chunk)
        policy.check_upload(size, label)
        out.write(chunk)


def _fetch_local(path: Path, work: Path, label: str, policy: SourcePolicy, admin: bool) -> Path:
    if not path.is_absolute():
        raise InvalidParameter(
            f"{label} is a relative path; give an absolute path on the server's machine, "
            "a file:// URI or an fsspec URI such as s3://bucket/model."
        )
    policy.check_path(path, admin, label)  # before saying whether it exists
    if not path.exists():
        raise InvalidParameter(f"{label} does not exist on the server's machine.")
    if path.is_file():
        weights = _gguf_name(path.name)
        if weights is None:
            return archives.extract(path, work / "tree", label, policy)
        try:
            return Path(shutil.copy2(path, _lone_file(work, weights))).parent
        except OSError as exc:
            raise InvalidParameter(f"{label} cannot be copied: {exc.strerror or exc}.") from exc
    if work.resolve().is_relative_to(path.resolve()):
        raise InvalidParameter(f"{label} contains berth's own artifact store; copy the model out.")
    tree = work / "tree"

    def copy(src: str, dst: str) -> object:
        """Each file as its links lead: never from where the caller may not read."""
        policy.check_path(Path(src), admin, label)
        return shutil.copy2(src, dst)

    try:
        shutil.copytree(path, tree, copy_function=copy)
    except shutil.Error as exc:
        first = exc.args[0][0] if exc.args and exc.args[0] else ("", "", str(exc))
        raise InvalidParameter(f"{label} cannot be copied: {first[0]}: {first[2]}.") from exc
    except PermissionDenied:
        raise
    except OSError as exc:
        raise InvalidParameter(f"{label} cannot be copied: {exc}.") from exc
    return tree


def _fetch_remote(uri: str, work: Path, label: str, policy: SourcePolicy) -> Path:
    """Any fsspec filesystem; its backends raise their own errors, all reported as the cause."""
    try:
        fs, root = fsspec.core.url_to_fs(uri)
        if fs.isdir(root):
            return _copy_remote_tree(fs, root, work / "tree", label)
        if fs.isfile(root):
            weights = _gguf_name(root)
            if weights is not None:
                target = _lone_file(work, weights)
                fs.get_file(root, str(target))
                return target.parent
            archive = work / "download"
            fs.get_file(root, str(archive))
            return archives.extract(archive, work / "tree", label, policy)
    except BerthError:
        raise
    except ImportError as exc:
        raise InvalidParameter(f"{label} needs a package the server lacks: {exc}.") from exc
    except Exception as exc:
        raise InvalidParameter(f"{label} cannot be read: {type(exc).__name__}: {exc}.") from exc
    raise InvalidParameter(f"{label} does not exist.")


def _copy_remote_tree(fs: Any, root: str, tree: Path, label: str) -> Path:
    tree.mkdir()
    root = root.rstrip("/")
    for remote in sorted(fs.find(root)):
        relative = posixpath.relpath(remote, root)
        if relative == ".." or relative.startswith(("../", "/")):
            raise InvalidParameter(f"{label} lists {remote!r}, outside the folder asked for.")
        local = tree / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(local))
    return tree
