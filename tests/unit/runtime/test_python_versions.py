"""The replica runtime runs on the model's own Python, 3.9 and up: vermin proves no newer
syntax or standard-library member slipped in (the runtime imports nothing else of berth but
``berth.core.latency``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import berth

PACKAGE = Path(berth.__file__).parent
SOURCES = [PACKAGE / "runtime", PACKAGE / "__init__.py", PACKAGE / "core" / "latency.py"]


def test_the_runtime_needs_no_python_newer_than_3_9() -> None:
    found = subprocess.run(
        [str(Path(sys.executable).parent / "vermin"), "--target=3.9-", "--violations", "--no-tips"]
        + [str(p) for p in SOURCES],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode == 0, found.stdout + found.stderr
    assert "Minimum required versions: 3.9" in found.stdout


def test_the_runtime_imports_only_what_was_checked() -> None:
    """If the runtime starts importing another berth module, that module joins SOURCES."""
    imported = set()
    for source in (PACKAGE / "runtime").glob("*.py"):
        for line in source.read_text().splitlines():
            if line.startswith(("from berth.", "import berth.")):
                imported.add(line.split()[1])
    assert {name for name in imported if not name.startswith("berth.runtime")} == {
        "berth.core.latency"
    }
