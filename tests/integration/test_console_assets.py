"""The console's third-party modules are what its npm lock file names: installing the lock and
copying again gives the committed files byte for byte (the console has no other build)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.system import ensure_installed

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "console"
VENDOR = ROOT / "src" / "berth" / "console" / "assets" / "vendor"
NOTES = {"README.txt"}


def test_the_vendored_modules_match_the_lock_file(tmp_path: Path) -> None:
    npm = ensure_installed("npm", lambda: shutil.which("npm"))
    node = shutil.which("node")
    assert node, "npm is installed but node is not on PATH"
    for name in ("package.json", "package-lock.json", "vendor.mjs"):
        shutil.copy(SOURCE / name, tmp_path / name)
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    out = tmp_path / "out"
    subprocess.run([node, "vendor.mjs", str(out)], cwd=tmp_path, check=True, timeout=60)
    built = {p.name: p.read_bytes() for p in out.iterdir()}
    committed = {p.name: p.read_bytes() for p in VENDOR.iterdir() if p.name not in NOTES}
    assert sorted(built) == sorted(committed)
    stale = [name for name in built if built[name] != committed[name]]
    assert not stale, f"run `cd console && npm ci --ignore-scripts && node vendor.mjs`: {stale}"
