"""What registration may read: server-side paths, remote URIs and archives, within limits.

A model version's source is read by the server, with the server's rights. So a path on the
server's machine is read only for admins or under the roots an operator lists, and never inside
``$BERTH_HOME`` (its store, secret key and admin token), ``$BERTH_SHARED_DIR`` (every
endpoint's payloads and access logs) or the artifact store (other models' artifacts, whether a
shared directory or an object store's URL), whichever links lead there; a remote
URI only with an allow-listed protocol, and never from a host that resolves to a loopback,
link-local, private or otherwise internal address (unless the operator names the host); and
archives only within a size and a member count.
"""

from __future__ import annotations

import ipaddress
import posixpath
import socket
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from berth.core.artifact_copies import is_url, local_dir
from berth.core.errors import InvalidParameter, PayloadTooLarge, PermissionDenied

GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    home: Path
    """Never read from, by anyone: ``$BERTH_HOME``."""
    artifacts: str | None = None
    """Never read from, by anyone either: the artifact store's directory or URL."""
    shared: Path | None = None
    """Never read from either: where payloads and access logs live (``$BERTH_SHARED_DIR``)."""
    roots: tuple[Path, ...] = ()
    """Where users other than admins may register server-side paths from."""
    protocols: frozenset[str] = field(
        default_factory=lambda: frozenset({"https", "s3", "gs", "gcs", "abfs", "az"})
    )
    allowed_hosts: frozenset[str] = frozenset()
    max_upload_bytes: int = 2 * GIB
    max_members: int = 20_000
    max_extracted_bytes: int = 8 * GIB

    def check_path(self, path: Path, admin: bool, label: str) -> None:
        """``path`` (resolved, links followed) may be read for a caller (``admin`` or not)."""
        real = path.resolve()
        private = (self.home,) if self.shared is None else (self.home, self.shared)
        if any(real.is_relative_to(folder.resolve()) for folder in private):
            raise PermissionDenied(
                f"{label} is inside berth's own data directory, which registration never "
                "reads; copy the model elsewhere."
            )
        store = self.artifacts
        if store is not None and not is_url(store) and real.is_relative_to(local_dir(store)):
            raise PermissionDenied(
                f"{label} is inside berth's artifact store, which registration never reads; "
                "register the model from where it came from."
            )
        if admin or any(real.is_relative_to(root.resolve()) for root in self.roots):
            return
        where = ", ".join(str(r) for r in self.roots) or "none are configured"
        raise PermissionDenied(
            f"{label} is a path on the server's machine: only admins may register from there, "
            f"or anyone under the roots in BERTH_REGISTRY__SOURCE_ROOTS ({where}). Upload the "
            "artifact instead (berth models register NAME PATH --upload)."
        )

    def check_remote(self, uri: str, label: str) -> None:
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme not in self.protocols:
            raise InvalidParameter(
                f"{label} uses '{scheme}://', which this server does not read from; allowed: "
                f"{', '.join(sorted(self.protocols))} (BERTH_REGISTRY__SOURCE_PROTOCOLS)."
            )
        if self.artifacts is not None and is_url(self.artifacts) and _under(uri, self.artifacts):
            raise PermissionDenied(
                f"{label} is inside berth's artifact store, which registration never reads; "
                "register the model from where it came from."
            )
        host = parts.hostname
        if scheme in ("http", "https", "ftp", "sftp", "ssh") and host:
            self.check_host(host, label)

    def check_host(self, host: str, label: str) -> None:
        """``host`` resolves only to public addresses, or the operator allowed it."""
        if host.lower() in self.allowed_hosts:
            return
        internal = internal_addresses(host)
        if internal:
            raise PermissionDenied(
                f"{label} names host '{host}', which resolves to an internal address "
                f"({internal[0]}); berth does not fetch from loopback, link-local or private "
                "networks. An operator may allow it in BERTH_REGISTRY__SOURCE_ALLOWED_HOSTS."
            )

    def check_archive(self, members: int, size: int, label: str) -> None:
        if members > self.max_members:
            raise InvalidParameter(
                f"{label} holds {members} members, over the cap of {self.max_members} "
                "(BERTH_REGISTRY__MAX_ARCHIVE_MEMBERS)."
            )
        if size > self.max_extracted_bytes:
            raise InvalidParameter(
                f"{label} unpacks to {size} bytes, over the cap of {self.max_extracted_bytes} "
                "(BERTH_REGISTRY__MAX_EXTRACTED_BYTES)."
            )

    def check_upload(self, size: int, label: str) -> None:
        if size > self.max_upload_bytes:
            raise PayloadTooLarge(
                f"{label} is {size} bytes, over the upload cap of {self.max_upload_bytes} "
                "bytes (BERTH_REGISTRY__MAX_UPLOAD_BYTES)."
            )


def _under(uri: str, root: str) -> bool:
    """``uri`` names ``root`` or something in it: same scheme and host (any case), and a path
    under root's once dot segments and repeated slashes are gone."""
    a, b = urlsplit(uri), urlsplit(root)
    if (a.scheme.lower(), (a.netloc or "").lower()) != (b.scheme.lower(), (b.netloc or "").lower()):
        return False
    path, top = (
        posixpath.normpath("/" + "/".join(filter(None, p.split("/")))) for p in (a.path, b.path)
    )
    return PurePosixPath(path).is_relative_to(top)


def internal_addresses(host: str) -> list[str]:
    """The addresses ``host`` resolves to that are not public (empty when it resolves to
    none: it cannot be fetched from then anyway)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return []
    found = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global or address.is_multicast:
            found.append(str(address))
    return found
