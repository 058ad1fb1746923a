"""Finding and running uv, the one tool that creates berth's environments.

uv runs with the server's environment minus any active virtual environment, so that its choice
of interpreter depends only on the version asked for.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from berth.core.errors import BerthError, InvalidParameter

_ACTIVE_ENV_VARIABLES = ("VIRTUAL_ENV", "CONDA_PREFIX")
_PLAIN_OUTPUT = ("--color", "never", "--no-progress")


def find_uv() -> Path:
    """The uv that runs berth (``$UV``, which ``uv run`` sets), else uv on ``PATH``, else the
    binary of the ``uv`` package installed beside berth (one of its dependencies)."""
    given = os.environ.get("UV")
    if given and os.access(given, os.X_OK):
        return Path(given)
    found = shutil.which("uv")
    if found:
        return Path(found)
    try:
        return Path(importlib.import_module("uv").find_uv_bin())
    except (ImportError, FileNotFoundError) as exc:
        raise BerthError(
            "uv was not found ($UV, PATH) nor installed beside berth; berth builds model "
            "environments with uv: install it (pip install uv, or see "
            "https://docs.astral.sh/uv/) and restart the server."
        ) from exc


def own_python() -> str:
    """The major.minor version of the interpreter berth itself runs on."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


Confine = Callable[[list[str], dict[str, str], Path], tuple[list[str], dict[str, str]]]
"""Turns a command, its environment and its directory into the same command run in a
sandbox."""


def stream(
    uv: Path,
    args: Sequence[str | Path],
    cwd: Path,
    on_line: Callable[[str], None],
    confine: Confine | None = None,
) -> int:
    """Run ``uv args...`` in ``cwd`` (confined when ``confine`` is given: a package's build
    script is someone else's code), handing each line of its output to ``on_line``."""
    command = [str(uv), *map(str, args), *_PLAIN_OUTPUT]
    env = _child_env()
    if confine is not None:
        command, env = confine(command, env, cwd)
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                on_line(line.rstrip("\n"))
        except BaseException:
            process.kill()
            raise
        return process.wait()


def ensure_python(version: str, uv: Path) -> None:
    """Refuse a Python version uv cannot find installed here; berth never downloads one."""
    found = _run(uv, "python", "find", "--no-project", "--no-python-downloads", version)
    if found.returncode == 0:
        return
    available = ", ".join(installed_pythons(uv)) or "none"
    raise InvalidParameter(
        f"The artifact asks for Python {version}, which is not installed on this server "
        f"(installed: {available}); berth does not download interpreters. Ask for an "
        f"installed version, or have the server's operator install Python {version} "
        f"(uv python install {version})."
    )


def installed_pythons(uv: Path) -> list[str]:
    """The major.minor versions of the interpreters uv finds on this machine, newest first."""
    listed = _run(uv, "python", "list", "--only-installed", "--output-format", "json")
    if listed.returncode != 0:
        return []
    versions = {_major_minor(str(entry.get("version", ""))) for entry in json.loads(listed.stdout)}
    versions.discard("")
    return sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True)


def _major_minor(version: str) -> str:
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else ""


def _run(uv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(uv), *args],
        env=_child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _ACTIVE_ENV_VARIABLES}


def find_python(version: str, uv: Path) -> Path | None:
    """The interpreter uv would pick for ``version`` here, found without running any."""
    found = _run(uv, "python", "find", "--system", "--no-python-downloads", version)
    return Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else None
