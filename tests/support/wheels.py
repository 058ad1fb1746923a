"""Wheels made in a test, and a local package index serving them over HTTP: uv reads it in
place of PyPI (``UV_DEFAULT_INDEX``), even from inside a sandbox.

The index is a folder holding a folder per project (its normalised name) with the project's
files; the HTTP server's listing of such a folder is a PEP 503 project page."""

from __future__ import annotations

import functools
import re
import threading
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.envs import WHEEL


def package_wheel(
    index: Path, package: str, version: str, files: Mapping[str, bytes], requires: str = ""
) -> Path:
    """A pure-Python wheel of ``package`` on ``index``, whose module holds ``files``;
    ``requires`` names one dependency it declares."""
    folder = project(index, package)
    module = package.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
    if requires:
        metadata += f"Requires-Dist: {requires}\n"
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "")
        for name, data in files.items():
            archive.writestr(f"{module}/{name}", data)
        archive.writestr(f"{info}/METADATA", metadata)
        archive.writestr(f"{info}/WHEEL", WHEEL)
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def project(index: Path, package: str) -> Path:
    """The folder of ``package``'s files on ``index``."""
    folder = index / re.sub(r"[-_.]+", "-", package).lower()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not the test's output."""


@contextmanager
def wheel_index(folder: Path) -> Iterator[str]:
    """``folder`` served on the loopback as a package index; yields its URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
