"""The artifact folders under ``$BERTH_HOME/artifacts/<model>/<version>/``.

Artifacts are built in a staging folder beside their final place and renamed into it, and
removed by renaming them aside first, so that a failed store transaction can undo either
and no half-made or half-removed folder is ever seen. Staging and removed folders start
with '~', which no model name can.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_STAGING_PREFIX = "~staging-"
_REMOVED_PREFIX = "~removed-"

Place = Callable[[Path, Path], None]
Remove = Callable[[Path], None]


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def model_dir(self, model: str) -> Path:
        return self.root / model

    def version_dir(self, model: str, version: int) -> Path:
        return self.root / model / str(version)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """An empty work folder on the same filesystem as the artifacts, removed at the end."""
        self.root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self.root))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @contextmanager
    def placing(self) -> Iterator[Place]:
        """Yields ``place(built, target)``; what was placed is taken back if the block fails."""
        placed: list[Path] = []

        def place(built: Path, target: Path) -> None:
            _readable(built)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                # The store has just handed out this version number, so whatever is
                # here was left by a crash and belongs to no version.
                shutil.rmtree(target)
            os.rename(built, target)
            placed.append(target)

        try:
            yield place
        except BaseException:
            for target in placed:
                shutil.rmtree(target, ignore_errors=True)
                _remove_if_empty(target.parent)
            raise

    @contextmanager
    def removing(self) -> Iterator[Remove]:
        """Yields ``remove(target)``; removals are undone if the block fails, final otherwise."""
        aside: list[tuple[Path, Path]] = []

        def remove(target: Path) -> None:
            if target.exists():
                moved = self.root / f"{_REMOVED_PREFIX}{uuid.uuid4().hex}"
                os.rename(target, moved)
                aside.append((moved, target))

        try:
            yield remove
        except BaseException:
            for moved, target in reversed(aside):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(moved, target)
            raise
        for moved, _target in aside:
            shutil.rmtree(moved, ignore_errors=True)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def _readable(tree: Path) -> None:
    """Every folder and file of an artifact readable (and folders traversable) by anyone: the
    sandbox runs model code as another uid, which must read the artifact however restricted
    the copied source was. ``$BERTH_HOME`` (0700) keeps everyone else out."""
    for folder, _, files in os.walk(tree):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)
