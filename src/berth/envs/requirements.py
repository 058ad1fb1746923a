"""Reading pip requirement lines into the normalised lists an environment is built from.

Includes are inlined, comments dropped, duplicates removed; local wheels inside the artifact
are pinned by content hash so the spec (and the cache key) changes when a wheel does. Options
that would install from elsewhere than a package index, or in editable mode, are refused here,
at registration, rather than failing later in a build.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from berth.core.errors import InvalidParameter

#: Index hosts that mean "the package registry"; an index option naming one is dropped, since
#: uv installs from the registry configured for it on this server anyway.
REGISTRY_HOSTS = frozenset({"pypi.org", "pypi.python.org", "files.pythonhosted.org"})
MLFLOW_PACKAGES = frozenset({"mlflow", "mlflow-skinny"})
LOCAL_PREFIX = "./"

_COMMENT = re.compile(r"(^|\s+)#.*$")
_OPTION = re.compile(r"^(--[A-Za-z-]+|-[A-Za-z])\s*=?\s*(.*)$")
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
_DIRECT_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?\s*@\s*(\S+)")
_HASH_OPTION = re.compile(r"--hash[=\s]\S+")
_VCS = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVES = (".whl", ".tar.gz", ".zip", ".tar.bz2")
_INCLUDES = {"-r": "requirements", "--requirement": "requirements"}
_CONSTRAINTS = {"-c", "--constraint"}
_INDEXES = {"-i", "--index-url", "--extra-index-url"}
_EDITABLE = {"-e", "--editable"}
_SUPPORTED = (
    "package lines (with markers and --hash), paths of wheels inside the artifact, "
    "-r/--requirement and -c/--constraint files inside the artifact, and --index-url "
    "naming pypi.org"
)
_WHEEL_HINT = (
    "list the package by name and version, or put its wheel in the artifact and list the "
    "wheel's path (e.g. ./wheels/pkg-1.0-py3-none-any.whl)"
)


@dataclass(frozen=True, slots=True)
class Requirements:
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]


def project_name(requirement: str) -> str | None:
    """The canonical (PEP 503) project name a requirement line starts with, if it names one."""
    match = _NAME.match(requirement)
    if match is None:
        return None
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def read_requirements(artifact: Path, lines: Iterable[str], where: str) -> Requirements:
    """Normalise requirement ``lines`` found in ``where`` (a file at the artifact's root).

    As pip does, ``-r``/``-c`` paths are relative to the file naming them, and wheel paths
    to the directory pip runs in, which MLflow and OCI make the artifact's root.
    """
    reader = _Reader(artifact.resolve())
    reader.read(list(lines), where, reader.artifact, reader.requirements)
    return Requirements(tuple(reader.requirements), tuple(reader.constraints))


@dataclass
class _Reader:
    artifact: Path
    requirements: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    included: set[Path] = field(default_factory=set)

    def read(self, lines: list[str], where: str, base: Path, into: list[str]) -> None:
        for line in _logical_lines(lines):
            if line.startswith("-"):
                self._option(line, where, base, into)
            else:
                _add(into, self._requirement(line, where))

    def _option(self, line: str, where: str, base: Path, into: list[str]) -> None:
        match = _OPTION.match(line)
        name, value = (match.group(1), match.group(2).strip()) if match else (line, "")
        if name in _INCLUDES or name in _CONSTRAINTS:
            target = self.constraints if name in _CONSTRAINTS else into
            self._include(base / value, where, f"{name} {value}", target)
        elif name in _INDEXES:
            _check_index(value, where, line)
        elif name in _EDITABLE:
            raise InvalidParameter(
                f"{where}: '{line}' installs a package in editable mode from a source tree, "
                f"which berth cannot build environments from; {_WHEEL_HINT}."
            )
        else:
            raise InvalidParameter(
                f"{where}: the pip option '{line}' is not supported; berth reads {_SUPPORTED}."
            )

    def _include(self, path: Path, where: str, line: str, into: list[str]) -> None:
        path = self._inside(path, where, line)
        if not path.is_file():
            raise InvalidParameter(f"{where}: '{line}' names a file the artifact does not have.")
        if path in self.included:
            return
        self.included.add(path)
        text = path.read_text(encoding="utf-8", errors="replace")
        name = path.relative_to(self.artifact).as_posix()
        self.read(text.splitlines(), name, path.parent, into)

    def _requirement(self, line: str, where: str) -> str:
        head, _, marker = line.partition(";")
        direct = _DIRECT_REFERENCE.match(head)
        target = direct.group(1) if direct else (head.split() or [""])[0]
        if target.startswith(_VCS):
            raise InvalidParameter(
                f"{where}: '{line}' installs from a version-control repository, which berth "
                f"cannot reach from where it builds environments; {_WHEEL_HINT}."
            )
        local = _local_path(target)
        if local is None:
            return line
        path = self._inside(self.artifact / local, where, line)
        if not path.is_file():
            kind = "a directory" if path.is_dir() else "no file"
            raise InvalidParameter(
                f"{where}: '{line}' names {kind} of the artifact; berth installs local "
                f"packages only from wheel or source-archive files, pinned by content; "
                f"{_WHEEL_HINT}."
            )
        relative = LOCAL_PREFIX + path.relative_to(self.artifact).as_posix()
        marker = _HASH_OPTION.sub("", marker).strip()
        condition = f" ; {marker}" if marker else ""
        return f"{relative}{condition} --hash=sha256:{_sha256(path)}"

    def _inside(self, path: Path, where: str, line: str) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.artifact):
            raise InvalidParameter(
                f"{where}: '{line}' points outside the artifact; berth builds environments "
                "from the artifact alone, so copy the file into the artifact and name it by "
                "a path relative to the artifact's root."
            )
        return resolved


def _logical_lines(lines: list[str]) -> Iterator[str]:
    """Lines as pip reads them: continuations joined, comments and blank lines dropped."""
    pending = ""
    for raw in lines:
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            yield " ".join(line.split())
    tail = _COMMENT.sub("", pending).strip()
    if tail:
        yield " ".join(tail.split())


def _local_path(target: str) -> str | None:
    """The artifact-relative path a requirement target names, or None for a package or URL."""
    if target.startswith("file:"):
        return unquote(urlsplit(target).path)
    if "://" in target:
        return None
    looks_like_path = target.startswith((".", "/", "~")) or "/" in target or "\\" in target
    return target if looks_like_path or target.endswith(_ARCHIVES) else None


def _check_index(value: str, where: str, line: str) -> None:
    host = urlsplit(value).hostname
    if host not in REGISTRY_HOSTS:
        raise InvalidParameter(
            f"{where}: '{line}' names a package index berth does not install from; berth "
            "installs from the package registry configured for uv on the server. Remove the "
            "option, or ask the server's operator to configure that index for uv."
        )


def _add(into: list[str], requirement: str) -> None:
    if requirement not in into:
        into.append(requirement)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
