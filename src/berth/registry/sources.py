"""Bringing an artifact into a work folder: a path on this machine, an fsspec URI, an upload.

Local folders are copied with their links followed, so the stored artifact is whole and
does not change when the original does.
"""

from __future__ import annotations

import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import fsspec

from berth.core.errors import BerthError, InvalidParameter
from berth.registry import archives


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
    filename: str
    stream: BinaryIO

    @property
    def recorded(self) -> str:
        return f"upload:{self.filename}"

    @property
    def label(self) -> str:
        return f"uploaded file '{self.filename}'"


ArtifactSource = SourceUri | UploadedArchive


def fetch(source: ArtifactSource, work: Path) -> Path:
    """Copy or unpack ``source`` under the empty folder ``work``; returns the artifact root."""
    if isinstance(source, UploadedArchive):
        archive = work / "upload"
        with archive.open("wb") as out:
            shutil.copyfileobj(source.stream, out)
        return archives.extract(archive, work / "tree", source.label)
    uri = source.uri
    if "://" not in uri:
        return _fetch_local(Path(uri).expanduser(), work, source.label)
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidParameter(
                f"{source.label} names host '{parts.netloc}'; file:// URIs must point at this "
                "machine (file:///path/to/model)."
            )
        return _fetch_local(Path(unquote(parts.path)), work, source.label)
    return _fetch_remote(uri, work, source.label)


def _fetch_local(path: Path, work: Path, label: str) -> Path:
    if not path.is_absolute():
        raise InvalidParameter(
            f"{label} is a relative path; give an absolute path on the server's machine, "
            "a file:// URI or an fsspec URI such as s3://bucket/model."
        )
    if not path.exists():
        raise InvalidParameter(f"{label} does not exist on the server's machine.")
    if path.is_file():
        return archives.extract(path, work / "tree", label)
    if work.resolve().is_relative_to(path.resolve()):
        raise InvalidParameter(f"{label} contains berth's own artifact store; copy the model out.")
    tree = work / "tree"
    try:
        shutil.copytree(path, tree)
    except shutil.Error as exc:
        first = exc.args[0][0] if exc.args and exc.args[0] else ("", "", str(exc))
        raise InvalidParameter(f"{label} cannot be copied: {first[0]}: {first[2]}.") from exc
    except OSError as exc:
        raise InvalidParameter(f"{label} cannot be copied: {exc}.") from exc
    return tree


def _fetch_remote(uri: str, work: Path, label: str) -> Path:
    """Any fsspec filesystem; its backends raise their own errors, all reported as the cause."""
    try:
        fs, root = fsspec.core.url_to_fs(uri)
        if fs.isdir(root):
            return _copy_remote_tree(fs, root, work / "tree", label)
        if fs.isfile(root):
            archive = work / "download"
            fs.get_file(root, str(archive))
            return archives.extract(archive, work / "tree", label)
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
