"""The on-disk cache of built environments: its layout, metadata, listing and pruning.

::

    <root>/
      <hash>/              a built environment (relocatable venv) holding berth-env.json
      <hash>.log           uv's output from the last build of <hash>, failed ones included
      .locks/<hash>.lock   one build of a hash at a time, across threads and processes
      .tmp-<hash>-*/       a build in progress, or left by a crash (pruned after a day)
      runtime/<digest>/    berth's replica runtime, put on PYTHONPATH in every environment

An environment exists once ``<hash>/`` does: builds happen in a ``.tmp-`` directory renamed
into place when complete, so nothing half-made ever carries a hash's name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from berth.envs.spec import EnvSpec

METADATA = "berth-env.json"
TMP_PREFIX = ".tmp-"
RUNTIME_DIR = "runtime"
STALE_AFTER_S = 24 * 3600
_USED_MARKER = ".berth-last-used"
_PYTHON = Path("bin", "python")
_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class EnvInfo:
    """One built environment as the cache holds it; times are epoch milliseconds."""

    hash: str
    path: Path
    python: Path
    spec: EnvSpec
    size_bytes: int
    created_ms: int
    last_used_ms: int


def env_dir(root: Path, env_hash: str) -> Path:
    return root / env_hash


def log_path(root: Path, env_hash: str) -> Path:
    return root / f"{env_hash}.log"


def build_lock(root: Path, env_hash: str) -> FileLock:
    """The lock that serialises builds (and removal) of one hash.

    Lock files are never deleted: removing one while another process waits on it would let
    two builders hold "the" lock at once.
    """
    locks = root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(locks / f"{env_hash}.lock")


def new_tmp_dir(parent: Path, name: str) -> Path:
    """A fresh path (not yet created) beside the final one, on the same filesystem."""
    return parent / f"{TMP_PREFIX}{name}-{secrets.token_hex(4)}"


def write_metadata(path: Path, env_hash: str, spec: EnvSpec, platform: str) -> None:
    document = {
        "hash": env_hash,
        "spec": spec.to_json(),
        "platform": platform,
        "python": _PYTHON.as_posix(),
        "created_ms": time.time_ns() // 1_000_000,
    }
    (path / METADATA).write_text(json.dumps(document, indent=2) + "\n")


def env_python(path: Path) -> Path:
    """The interpreter of the environment in ``path``."""
    return path / _PYTHON


def built_python(root: Path, env_hash: str) -> Path | None:
    """The interpreter of the environment built for ``env_hash``, without measuring it."""
    path = env_dir(root, env_hash)
    return env_python(path) if (path / METADATA).is_file() else None


def read_env(root: Path, env_hash: str) -> EnvInfo | None:
    """The environment built for ``env_hash``, or None when there is none."""
    path = env_dir(root, env_hash)
    try:
        document = json.loads((path / METADATA).read_text())
    except (OSError, ValueError):
        return None
    created_ms = int(document["created_ms"])
    return EnvInfo(
        hash=env_hash,
        path=path,
        python=path / str(document["python"]),
        spec=EnvSpec.from_json(document["spec"]),
        size_bytes=_size(path),
        created_ms=created_ms,
        last_used_ms=max(created_ms, _mtime_ms(path / _USED_MARKER)),
    )


def list_envs(root: Path) -> list[EnvInfo]:
    """Every built environment under ``root``, most recently used first."""
    found = [info for env_hash in _hashes(root) if (info := read_env(root, env_hash))]
    return sorted(found, key=lambda info: info.last_used_ms, reverse=True)


def mark_used(root: Path, env_hash: str) -> None:
    """Record that a replica is starting in this environment (what ``last_used_ms`` shows)."""
    (env_dir(root, env_hash) / _USED_MARKER).touch()


def prune(root: Path, keep: set[str], *, stale_after_s: float = STALE_AFTER_S) -> list[EnvInfo]:
    """Remove every environment whose hash is not in ``keep``; return what was removed.

    ``keep`` holds the hashes in use. An environment being built or removed by someone else
    (its lock is held) is left alone. Leftover temporary directories and logs of failed builds
    go too once older than ``stale_after_s``.
    """
    removed = [info for info in list_envs(root) if info.hash not in keep and _remove(root, info)]
    cutoff_ms = (time.time() - stale_after_s) * 1000
    for path in _stale(root, keep, cutoff_ms):
        _delete(path)
    return removed


def _remove(root: Path, info: EnvInfo) -> bool:
    lock = build_lock(root, info.hash)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    try:
        # Renamed first, so the hash stops naming an environment at once even if deleting
        # the files is interrupted; the leftover is then a stale temporary directory.
        doomed = new_tmp_dir(root, info.hash)
        info.path.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        log_path(root, info.hash).unlink(missing_ok=True)
    finally:
        lock.release()
    return True


def _stale(root: Path, keep: set[str], cutoff_ms: float) -> Iterator[Path]:
    for parent in (root, root / RUNTIME_DIR):
        if parent.is_dir():
            for path in parent.iterdir():
                if path.name.startswith(TMP_PREFIX) and _mtime_ms(path) < cutoff_ms:
                    yield path
    for path in root.glob("*.log") if root.is_dir() else ():
        orphan = path.stem not in keep and not env_dir(root, path.stem).is_dir()
        if orphan and _mtime_ms(path) < cutoff_ms:
            yield path


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _hashes(root: Path) -> Iterator[str]:
    if root.is_dir():
        for path in root.iterdir():
            if _HASH.match(path.name) and path.is_dir():
                yield path.name


def _size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # pruned while we look
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _mtime_ms(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns // 1_000_000
    except FileNotFoundError:
        return 0
