"""Unpacking uploaded ``.tar.gz``/``.tgz``/``.zip`` artifacts without letting them escape.

Every member is checked before anything is written: absolute names, ``..`` components,
links that point outside the archive and device files are refused with the member named.
Tar extraction also runs under Python's ``data`` filter as a second line of defence.
"""

from __future__ import annotations

import posixpath
import re
import tarfile
import zipfile
import zlib
from pathlib import Path

from berth.core.errors import InvalidParameter
from berth.registry.source_policy import SourcePolicy

KINDS = ".tar.gz, .tgz or .zip"
_IGNORED_TOP_LEVEL = frozenset({"__MACOSX"})
_DRIVE = re.compile(r"^[A-Za-z]:")


def extract(archive: Path, dest: Path, where: str, policy: SourcePolicy) -> Path:
    """Unpack ``archive`` into ``dest`` within ``policy``'s caps on members and unpacked
    size (checked from the archive's index before anything is written); returns the artifact
    root (see ``unwrap``)."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest, where, policy)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, dest, where, policy)
        else:
            raise InvalidParameter(f"{where} is not a {KINDS} archive.")
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InvalidParameter(f"{where} is a damaged archive: {exc}.") from exc
    return unwrap(dest)


def unwrap(tree: Path) -> Path:
    """The single top-level folder of an archive, when that is all it holds, else ``tree``.

    Archives made with ``tar czf model.tgz model/`` wrap the artifact in its folder; macOS
    adds a ``__MACOSX`` folder beside it, which is not part of the artifact.
    """
    entries = [entry for entry in tree.iterdir() if entry.name not in _IGNORED_TOP_LEVEL]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return tree


def _extract_zip(archive: Path, dest: Path, where: str, policy: SourcePolicy) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        policy.check_archive(len(infos), sum(i.file_size for i in infos), where)
        for name in zf.namelist():
            _check_name(name, where)
        zf.extractall(dest)


def _extract_tar(archive: Path, dest: Path, where: str, policy: SourcePolicy) -> None:
    with tarfile.open(archive) as tf:
        members = []
        size = 0
        for member in tf:  # read lazily: a bomb of members stops at the cap
            members.append(member)
            size += member.size
            policy.check_archive(len(members), size, where)
        for member in members:
            _check_tar_member(member, where)
        try:
            tf.extractall(dest, members=members, filter="data")
        except tarfile.FilterError as exc:
            raise InvalidParameter(
                f"{where}: member {exc.tarinfo.name!r} is refused: {exc}."
            ) from exc


def _check_tar_member(member: tarfile.TarInfo, where: str) -> None:
    _check_name(member.name, where)
    if member.issym():
        base = posixpath.dirname(member.name)
        _check_link(member.name, member.linkname, posixpath.join(base, member.linkname), where)
    elif member.islnk():
        _check_link(member.name, member.linkname, member.linkname, where)
    elif not (member.isfile() or member.isdir()):
        raise InvalidParameter(
            f"{where}: member {member.name!r} is a device or pipe; artifacts hold only files, "
            "folders and links."
        )


def _check_name(name: str, where: str) -> None:
    if _is_absolute(name):
        raise InvalidParameter(
            f"{where}: member {name!r} has an absolute path; archive members must be relative."
        )
    if ".." in name.replace("\\", "/").split("/"):
        raise InvalidParameter(
            f"{where}: member {name!r} contains '..' and would land outside the artifact folder."
        )


def _check_link(name: str, target: str, resolved: str, where: str) -> None:
    normalised = posixpath.normpath(resolved)
    if _is_absolute(target) or normalised == ".." or normalised.startswith("../"):
        raise InvalidParameter(
            f"{where}: member {name!r} links to {target!r}, outside the artifact folder."
        )


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name))
