"""The replica runtime runs on the model's own Python, 3.9 and up: vermin proves no newer
syntax or standard-library member slipped in (in the runtime and the few ``berth.core``
modules it imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from berth.envs import find_uv, runtime_path
from tests.support.net import wait_until
from tests.support.runtime_sources import SOURCES

pytestmark = pytest.mark.integration


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


OLDEST = "3.9"
SCORE_PY = """\
import sys


def load_model():
    return "model"


def predict(data, model=None):
    return {"python": "%d.%d" % sys.version_info[:2], "model": model, "echo": data}
"""


def _python_3_9() -> Path | None:
    """An installed CPython 3.9: uv's pick, else a pyenv build beside this one (never
    downloaded)."""
    found = subprocess.run(
        [str(find_uv()), "python", "find", "--system", "--no-python-downloads", OLDEST],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 0:
        return Path(found.stdout.strip())
    versions = Path(sys.base_prefix).parent  # e.g. ~/.pyenv/versions
    builds = sorted(versions.glob(f"{OLDEST}.*/bin/python{OLDEST}"))
    return builds[-1] if builds else None


def test_a_replica_serves_a_score_py_model_on_python_3_9(tmp_path: Path) -> None:
    python = _python_3_9()
    assert python is not None, f"no Python {OLDEST} here: this machine kind ships one (pyenv)"
    venv = tmp_path / "venv"
    subprocess.run(
        [str(find_uv()), "venv", "-q", "--no-python-downloads", "--python", str(python), venv],
        check=True,
    )
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "score.py").write_text(SCORE_PY)
    socket = tmp_path / "replica.sock"
    replica = subprocess.Popen(
        [venv / "bin" / "python", "-m", "berth.runtime", "--artifact", artifact]
        + ["--format", "score_py", "--socket", socket],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(runtime_path(tmp_path / "envs"))},
    )
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket))) as client:

            def ready() -> bool:
                assert replica.poll() is None, "the replica exited"
                if not socket.exists():
                    return False
                return bool(client.get("http://r/health").json()["status"] == "ready")

            wait_until(ready, timeout=30, what="the Python 3.9 replica to load its model")
            answer = client.post("http://r/invocations", json={"inputs": [1, 2]})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"python": OLDEST, "model": "model", "echo": {"inputs": [1, 2]}}
    finally:
        replica.terminate()
        replica.wait(timeout=30)
