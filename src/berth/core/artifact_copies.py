"""Where a model version's artifact lives, and a folder on this machine to read it from.

An artifact's location (the store's ``artifact_path``) is a directory, under
``$BERTH_HOME/artifacts`` or under a shared directory that every server and Ray node mounts
at the same path, or an fsspec URL (``s3://bucket/berth/<model>/<version>``) when
``BERTH_ARTIFACTS_URI`` names an object store. What reads an artifact (the environment
builder, the OpenAPI docs, a replica on any node) reads a folder: `ArtifactCopies.local`
answers a directory as it is, and for a URL a copy it downloads once into its cache. A
version's artifact never changes once placed, so a copy never goes stale.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

import fsspec

from berth.core.errors import Unavailable

_LOCAL_SCHEMES = frozenset({"", "file", "local"})
_COPYING_PREFIX = "~copying-"


def is_url(location: str) -> bool:
    """An artifact location on another filesystem than this machine's (``file://`` is not)."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() not in _LOCAL_SCHEMES


def local_dir(location: str) -> Path:
    """The folder a local location (a path, or a ``file://`` URL) names."""
    if is_url(location):
        raise ValueError(f"{location} is not on this machine")
    if "://" in location:
        _, root = fsspec.core.url_to_fs(location)
        return Path(root)
    return Path(location)


def as_uri(location: str) -> str:
    """The location as a URL, with no password: what users and a container's
    ``AIP_STORAGE_URI`` see."""
    return shown(location) if is_url(location) else local_dir(location).resolve().as_uri()


def shown(location: str) -> str:
    """``location`` as messages may show it: a URL's password left out."""
    parts = urlsplit(location)
    if parts.password is None:
        return location
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


def make_readable(tree: Path) -> None:
    """Every folder and file of an artifact readable (and folders traversable) by anyone: the
    sandbox runs model code as another uid, which must read the artifact however restricted
    its source was. The folders above (``$BERTH_HOME``, 0700) keep everyone else out."""
    for folder, _, files in os.walk(tree):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)


class ArtifactCopies:
    """Local folders of artifacts: directories as they are, URLs copied into ``cache``."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache

    def where(self, location: str) -> Path:
        """Where `local` puts (or finds) the artifact at ``location``; reads nothing. A local
        folder is its own copy, so ``where(where(x)) == where(x)``."""
        if not is_url(location):
            return local_dir(location)
        return self.cache / hashlib.sha256(location.encode()).hexdigest()[:32]

    def local(self, location: str) -> Path:
        """A folder holding the artifact at ``location``; a URL's is downloaded on first use.

        Copies are made beside their final place and renamed into it, so a reader never sees
        half a copy; two processes copying at once both succeed and one copy is kept. Any
        failure of the artifact store's filesystem is `Unavailable`, saying where from."""
        target = self.where(location)
        if not is_url(location) or target.is_dir():
            return target
        self.cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=_COPYING_PREFIX, dir=self.cache))
        try:
            _download(location, work)
            make_readable(work)
            try:
                os.rename(work, target)
            except OSError:
                if not target.is_dir():
                    raise
        except Exception as exc:  # fsspec's filesystems raise their own errors
            raise Unavailable(
                f"The artifact at {shown(location)} could not be copied to {self.cache}: "
                f"{_without(str(exc), location)}"
            ) from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target


def _without(text: str, location: str) -> str:
    """An error's text with the URL's password, should the filesystem have quoted it, left
    out."""
    password = urlsplit(location).password
    return text.replace(password, "***") if password else text


def _download(location: str, into: Path) -> None:
    """Every file under ``location`` into ``into``, at the same relative paths."""
    fs, root = fsspec.core.url_to_fs(location)
    root = root.rstrip("/")
    found = fs.find(root, withdirs=False)
    if not found:
        raise FileNotFoundError(f"no artifact at {location}")
    for name in found:
        relative = PurePosixPath(name).relative_to(root)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"{location} holds {name}, which is outside the artifact")
        destination = into.joinpath(*relative.parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(name, str(destination))
