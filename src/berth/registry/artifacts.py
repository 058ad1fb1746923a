"""The artifact folders at ``<root>/<model>/<version>/``: under ``$BERTH_HOME/artifacts``, a
shared directory (``BERTH_ARTIFACTS_URI=/mnt/berth/artifacts``), or an object store's URL
(``s3://bucket/berth``).

In a directory, artifacts are built in a staging folder beside their final place and renamed
into it, and removed by renaming them aside first, so that a failed store transaction can undo
either and no half-made or half-removed folder is ever seen. Staging and removed folders
start with '~', which no model name can. At a URL, artifacts are staged on this machine and
uploaded; a failed transaction deletes what was uploaded, and removals wait until the
transaction has committed (an object store has no rename to undo). Readers only ever see a
version once its row is committed, so they never see half an upload.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec

from berth.core.artifact_copies import is_url, local_dir, make_readable

_STAGING_PREFIX = "~staging-"
_REMOVED_PREFIX = "~removed-"

Place = Callable[[Path, str], None]
Remove = Callable[[str], None]


class ArtifactStore:
    def __init__(self, root: str, work: Path) -> None:
        """Artifacts at ``root`` (a directory or a URL); a URL's are staged under ``work``."""
        self.root = root.rstrip("/")
        self._url = is_url(root)
        self._work = work if self._url else local_dir(root)

    def model_location(self, model: str) -> str:
        return f"{self.root}/{model}" if self._url else str(self._work / model)

    def version_location(self, model: str, version: int) -> str:
        return f"{self.model_location(model)}/{version}"

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """An empty work folder (on the artifacts' filesystem when they are in a directory),
        removed at the end."""
        self._work.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self._work))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @contextmanager
    def placing(self) -> Iterator[Place]:
        """Yields ``place(built, target)``; what was placed is taken back if the block fails."""
        placed: list[str] = []

        def place(built: Path, target: str) -> None:
            make_readable(built)
            placed.append(target)
            if self._url:
                _upload(built, target)
            else:
                _rename_into(built, Path(target))

        try:
            yield place
        except BaseException:
            for target in placed:
                self._delete(target)
            raise

    @contextmanager
    def removing(self) -> Iterator[Remove]:
        """Yields ``remove(target)``; removals are undone if the block fails, final otherwise."""
        aside: list[tuple[Path, Path]] = []
        deferred: list[str] = []

        def remove(target: str) -> None:
            if self._url:
                deferred.append(target)
                return
            path = Path(target)
            if path.exists():
                moved = self._work / f"{_REMOVED_PREFIX}{uuid.uuid4().hex}"
                os.rename(path, moved)
                aside.append((moved, path))

        try:
            yield remove
        except BaseException:
            for moved, path in reversed(aside):
                path.parent.mkdir(parents=True, exist_ok=True)
                os.rename(moved, path)
            raise
        for moved, _path in aside:
            shutil.rmtree(moved, ignore_errors=True)
        for target in deferred:
            self._delete(target)

    def _delete(self, target: str) -> None:
        if self._url:
            fs, root = fsspec.core.url_to_fs(target)
            with contextlib.suppress(FileNotFoundError):
                fs.rm(root, recursive=True)
            return
        path = Path(target)
        shutil.rmtree(path, ignore_errors=True)
        _remove_if_empty(path.parent)


def _rename_into(built: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        # The store has just handed out this version number, so whatever is
        # here was left by a crash and belongs to no version.
        shutil.rmtree(target)
    os.rename(built, target)


def _upload(built: Path, target: str) -> None:
    """Every file of ``built`` to ``target``, at the same relative paths; links are not
    followed out of the artifact (registration has already refused any that lead out)."""
    fs, root = fsspec.core.url_to_fs(target)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(root, recursive=True)  # left by a crash: the number was just handed out
    for folder, _, files in os.walk(built):
        for name in files:
            path = Path(folder, name)
            remote = f"{root}/{path.relative_to(built).as_posix()}"
            fs.makedirs(posixpath.dirname(remote), exist_ok=True)  # FTP, SFTP; no-op on S3
            fs.put_file(str(path), remote)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
