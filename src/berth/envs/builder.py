"""Building environments with uv into the cache, once per spec, atomically.

A build runs ``uv venv --relocatable`` in a temporary directory beside its final place, then
``uv pip install``, then renames the directory to the spec's hash: a failed or interrupted
build leaves no ``<hash>/`` behind, only its log. A file lock per hash makes concurrent builds
of one spec (threads or processes) build it once. Slow (seconds to minutes): never call this
on the request path.

Installing a package may run its build script, which is someone else's code: with a
`Sandbox`, uv runs in it as model code does, seeing the interpreter, the artifact, its own
cache (``<root>/.uv-cache``, not the server's) and the one directory it builds, nothing else.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from berth.core.errors import BerthError
from berth.envs.cache import (
    build_lock,
    built_python,
    env_dir,
    env_python,
    log_path,
    mark_used,
    new_tmp_dir,
    write_metadata,
)
from berth.envs.requirements import LOCAL_PREFIX, project_name
from berth.envs.spec import EnvSpec, current_platform
from berth.envs.uv_command import Confine, find_python, find_uv, stream
from berth.sandbox import Sandbox, python_dirs

LineSink = Callable[[str], None]

_REQUIREMENTS_FILE = "berth-requirements.txt"
_CONSTRAINTS_FILE = "berth-constraints.txt"
UV_CACHE = ".uv-cache"
"""berth's own uv cache, in the environments' root: sandboxed uv never uses the server's."""
_TAIL_LINES = 15
_FAILED_PACKAGE = (
    re.compile(r"Because ([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the package registry"),
    re.compile(r"Because there is no version of ([A-Za-z0-9][A-Za-z0-9._-]*)"),
    re.compile(r"Failed to \w+ `([^`]+)`"),
)
_REASON = re.compile(r"^\s*(?:error:|×|cause:|Caused by:|╰─▶|├─▶)\s*(.+?):?$")


@dataclass(frozen=True, slots=True)
class BuiltEnv:
    """An environment ready to run replicas; ``built`` is False when it came from the cache."""

    hash: str
    path: Path
    python: Path
    built: bool


class EnvBuildFailed(BerthError):
    """uv could not build an environment; ``log`` holds its whole output."""

    def __init__(self, message: str, *, requirement: str | None, log: Path) -> None:
        super().__init__(message)
        self.requirement = requirement
        self.log = log


def build_env(
    spec: EnvSpec,
    root: Path,
    *,
    artifact: Path | None = None,
    on_line: LineSink | None = None,
    uv: Path | None = None,
    sandbox: Sandbox | None = None,
) -> BuiltEnv:
    """The environment for ``spec`` under ``root``, built now unless the cache has it.

    ``artifact`` is needed when the spec installs wheels from the artifact; ``on_line``
    receives each line of the build log as it is written (progress for a CLI or events).
    """
    env_hash = spec.hash(current_platform())
    cached = _cached(root, env_hash)
    if cached is not None:
        return cached
    if spec.uses_artifact_files and artifact is None:
        raise ValueError("this spec installs wheels from its artifact: pass artifact=")
    root.mkdir(parents=True, exist_ok=True)
    with build_lock(root, env_hash):
        cached = _cached(root, env_hash)
        if cached is not None:
            return cached
        try:
            uv = uv or find_uv()
        except BerthError as exc:
            raise _failed_before_uv(spec, root, env_hash, exc.message) from exc
        job = _Job(spec, root, env_hash, artifact or root, uv, on_line or _ignore)
        return job.run(sandbox)


def builders_box(
    sandbox: Sandbox,
    uv: Path,
    python: str,
    *,
    readable: Sequence[Path],
    writable: Sequence[Path],
    cache: Path,
) -> Confine:
    """Runs uv in the builders' box: uv itself, ``python`` and ``readable`` readable;
    ``writable`` (which must exist) and berth's uv ``cache`` writable; nothing else."""
    box = sandbox.box("environment builds")
    cache.mkdir(exist_ok=True)
    for path in (*writable, cache):
        sandbox.own(path, box)
    seen = [str(uv.resolve().parent), *python_dirs(python), *map(str, readable)]
    extra = {"UV_CACHE_DIR": str(cache), "UV_LINK_MODE": "copy", "UV_PYTHON_DOWNLOADS": "never"}

    def confine(
        command: list[str], env: dict[str, str], cwd: Path
    ) -> tuple[list[str], dict[str, str]]:
        wrapped = sandbox.command(
            command,
            box,
            readable=seen,
            writable=[*map(str, writable), str(cache)],
            env={**sandbox.base_env(), **extra},
            tell_pid=False,
            cwd=str(cwd),
        )
        return wrapped.argv, wrapped.env

    return confine


def _failed_before_uv(spec: EnvSpec, root: Path, env_hash: str, reason: str) -> EnvBuildFailed:
    """The build log says why a build failed even when uv never ran."""
    log = log_path(root, env_hash)
    lines = [*_header(spec, env_hash), f"# failed before uv ran: {reason}"]
    log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return EnvBuildFailed(
        f"Environment build failed before uv ran: {reason}", requirement=None, log=log
    )


def _cached(root: Path, env_hash: str) -> BuiltEnv | None:
    python = built_python(root, env_hash)
    if python is None:
        return None
    mark_used(root, env_hash)
    return BuiltEnv(env_hash, env_dir(root, env_hash), python, built=False)


def _ignore(line: str) -> None:
    """The default ``on_line``: the log file keeps every line anyway."""


@dataclass
class _Job:
    spec: EnvSpec
    root: Path
    hash: str
    cwd: Path
    uv: Path
    on_line: LineSink
    output: list[str] = field(default_factory=list)
    confine: Confine | None = None
    python: str = ""

    def run(self, sandbox: Sandbox | None) -> BuiltEnv:
        tmp = new_tmp_dir(self.root, self.hash)
        self.python = self.spec.python
        started = time.monotonic()
        try:
            with self._log() as log:
                if sandbox is not None:
                    self._confine(sandbox, tmp, log)
                self._steps(tmp, log)
                self._emit(log, f"# built in {time.monotonic() - started:.1f} s")
            target = env_dir(self.root, self.hash)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        mark_used(self.root, self.hash)
        return BuiltEnv(self.hash, target, env_python(target), built=True)

    def _confine(self, sandbox: Sandbox, tmp: Path, log: TextIO) -> None:
        """uv, from now on, in the builders' box: the exact interpreter, the artifact and
        uv itself readable; the build directory and berth's uv cache writable."""
        python = find_python(self.spec.python, self.uv)
        if python is None:
            self._emit(log, f"# failed: no Python {self.spec.python} is installed here")
            raise EnvBuildFailed(
                f"Python {self.spec.python} is not installed on this server; berth does not "
                f"download interpreters (uv python install {self.spec.python}).",
                requirement=None,
                log=log_path(self.root, self.hash),
            )
        self.python = str(python)
        tmp.mkdir(exist_ok=True)  # uv venv fills it; it must exist to be the builder's
        self.confine = builders_box(
            sandbox,
            self.uv,
            self.python,
            readable=[self.cwd],
            writable=[tmp],
            cache=self.root / UV_CACHE,
        )

    def _steps(self, tmp: Path, log: TextIO) -> None:
        venv = ["venv", "--python", self.python, "--relocatable", "--no-project"]
        self._uv(log, [*venv, "--no-python-downloads", tmp], cwd=self.root)
        if self.spec.requirements:
            # Bytecode compiled now makes every replica start fast, whatever the environment
            # says about writing .pyc files (PYTHONDONTWRITEBYTECODE); importlib fixes the
            # compile-time paths recorded in them after the rename.
            install: list[str | Path] = ["pip", "install", "--compile-bytecode"]
            install += ["--python", env_python(tmp)]
            install += ["-r", _write_lines(tmp / _REQUIREMENTS_FILE, self.spec.requirements)]
            if self.spec.constraints:
                install += ["-c", _write_lines(tmp / _CONSTRAINTS_FILE, self.spec.constraints)]
            self._uv(log, install, cwd=self.cwd)
        write_metadata(tmp, self.hash, self.spec, current_platform())

    def _uv(self, log: TextIO, args: Sequence[str | Path], cwd: Path) -> None:
        self._emit(log, "$ uv " + " ".join(map(str, args)))

        def record(line: str) -> None:
            self.output.append(line)
            self._emit(log, line)

        status = stream(self.uv, args, cwd, record, self.confine)
        if status != 0:
            self._emit(log, f"# failed: uv exited with status {status}")
            raise self._failure(status)

    @contextmanager
    def _log(self) -> Iterator[TextIO]:
        with log_path(self.root, self.hash).open("w", encoding="utf-8") as log:
            for line in _header(self.spec, self.hash):
                self._emit(log, line)
            yield log

    def _emit(self, log: TextIO, line: str) -> None:
        log.write(line + "\n")
        log.flush()
        self.on_line(line)

    def _failure(self, status: int) -> EnvBuildFailed:
        requirement = _failed_requirement(self.spec, self.output)
        reason = _reason(self.output) or f"uv exited with status {status}"
        subject = f"installing {requirement}" if requirement else "building the environment"
        log = log_path(self.root, self.hash)
        tail = "\n".join(self.output[-_TAIL_LINES:])
        return EnvBuildFailed(
            f"uv failed {subject} (Python {self.spec.python}): {reason}\n"
            f"Build log: {log}; its last lines:\n{tail}",
            requirement=requirement,
            log=log,
        )


def _header(spec: EnvSpec, env_hash: str) -> list[str]:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    listed = [f"#   {line}" for line in spec.requirements] or ["#   (none)"]
    constraints = [f"# constraint: {line}" for line in spec.constraints]
    return [
        f"# berth environment {env_hash}",
        f"# python {spec.python} on {current_platform()}, started {started}",
        "# requirements:",
        *listed,
        *constraints,
    ]


def _write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _failed_requirement(spec: EnvSpec, output: list[str]) -> str | None:
    """The spec's line for the package uv's output blames, if it blames one."""
    for line in output:
        for pattern in _FAILED_PACKAGE:
            match = pattern.search(line)
            if match is None:
                continue
            blamed = match.group(1)
            return next((r for r in spec.requirements if _blames(blamed, r)), blamed)
    return None


def _blames(blamed: str, requirement: str) -> bool:
    """Whether uv's ``blamed`` (``pkg==1.0``, ``pkg @ file:///...``) is ``requirement``."""
    if requirement.startswith(LOCAL_PREFIX):
        return blamed.endswith(requirement.split()[0].removeprefix("."))
    name = project_name(blamed)
    return name is not None and project_name(requirement) == name


def _reason(output: list[str]) -> str | None:
    """uv's explanation: its "Because ..." sentence, else its deepest cause."""
    reasons = [m.group(1) for line in output if (m := _REASON.match(line))]
    because = next((r for r in reasons if r.startswith("Because")), None)
    return because or (reasons[-1] if reasons else None)
