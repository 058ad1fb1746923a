"""The replica runtime, copied out of the installed berth for use inside model environments.

Replicas run ``python -m berth.runtime`` with a model's own interpreter. Installing berth
there would drag in its server dependencies (and could clash with the model's), so only the
standard-library-only modules (``berth/__init__.py``, ``berth.core``, ``berth.runtime``) are
copied, once per version of their sources, into a directory put on ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import berth
from berth.envs.cache import RUNTIME_DIR, new_tmp_dir

_PACKAGES = ("core", "runtime")


def runtime_path(root: Path) -> Path:
    """The directory to put on ``PYTHONPATH`` so any environment can run ``berth.runtime``."""
    package = Path(berth.__file__).resolve().parent
    sources = _sources(package)
    target = root / RUNTIME_DIR / _digest(package, sources)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_tmp_dir(target.parent, target.name)
    try:
        for relative in sources:
            copy = tmp / "berth" / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(package / relative, copy)
        _rename_unless_there(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _sources(package: Path) -> list[Path]:
    modules = [path for name in _PACKAGES for path in (package / name).rglob("*.py")]
    return [Path("__init__.py"), *sorted(path.relative_to(package) for path in modules)]


def _digest(package: Path, sources: list[Path]) -> str:
    digest = hashlib.sha256()
    for relative in sources:
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update((package / relative).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _rename_unless_there(tmp: Path, target: Path) -> None:
    """Move ``tmp`` into place; losing that race to another process is success too."""
    try:
        tmp.rename(target)
    except OSError:
        if not target.is_dir():
            raise
