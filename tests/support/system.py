"""Server binaries the tests start (PostgreSQL, Redis), installed from Debian's packages when
they are missing, so ``./uvw run pytest`` works on a fresh machine as ``.ci/run`` does."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable


def ensure_installed(package: str, find: Callable[[], str | None]) -> str:
    """``find()``'s answer, after installing ``package`` with apt-get if it found nothing."""
    found = find()
    if found is not None:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = find()
    if found is None:
        raise RuntimeError(f"{package} is needed by the tests: apt-get install {package}")
    return found
