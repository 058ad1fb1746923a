"""Pinned requirements of every peer and the cached uv venvs they run in.

Each venv lives under ``~/.cache/berth-bench/venvs/<peer>-<hash>``, the hash taken over the
requirements and the Python version, so a rerun with the same pins reuses it and a changed pin
builds a new one. A venv is complete only once its ``.complete`` marker is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from berth.envs import find_uv
from berth.envs.spec import ENGINE_REQUIREMENTS

CACHE = Path(os.environ.get("BERTH_BENCH_CACHE", Path.home() / ".cache" / "berth-bench"))
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

# The model and what it needs to load and predict, the same in every peer and in berth's
# model environment (these are the MLflow model's pip requirements).
MODEL_STACK = (
    "scikit-learn==1.6.1",
    "numpy==2.2.6",
    "pandas==2.2.3",
    "cloudpickle==3.1.1",
)

# Peer servers pinned at the newest release that installs from the registry here; uvloop
# below 0.22 for MLServer (0.22+ crashes its worker). The bare server gets the same
# uvicorn, uvloop, httptools and Starlette as berth's own gateway (uv.lock).
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "mlflow": ("mlflow==3.17.2", *MODEL_STACK),
    "mlserver": ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0", *MODEL_STACK),
    "bentoml": ("bentoml==1.4.39", *MODEL_STACK),
    "ray": ("ray[serve]==2.60.0", *MODEL_STACK),
    "bare": (
        "starlette==1.10.0",
        "uvicorn==0.54.0",
        "uvloop==0.23.0",
        "httptools==0.9.0",
        *MODEL_STACK,
    ),
    "tools": ("py-spy==0.4.3",),
    # bench/llm.py: llama.cpp's server alone, at the version berth's open-LLM replicas run,
    # and LiteLLM's proxy in front of it.
    "engine": ENGINE_REQUIREMENTS,
    "litellm": ("litellm[proxy]==1.108.7",),
}


@dataclass(frozen=True)
class Venv:
    name: str
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def version(self, distribution: str) -> str:
        """The installed version of ``distribution`` in this venv."""
        out = subprocess.run(
            [
                str(self.python),
                "-c",
                "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))",
                distribution,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()


def _uv() -> str:
    return shutil.which("uv") or str(find_uv())


def _uv_env() -> dict[str, str]:
    """uv must not install into the venv this script itself runs in."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}


def venv_path(name: str) -> Path:
    key = json.dumps({"python": PYTHON, "requirements": sorted(REQUIREMENTS[name])})
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return CACHE / "venvs" / f"{name}-{digest}"


def ensure_venv(name: str, log: Callable[[str], None] = print) -> Venv:
    """The venv of ``name``, built with uv the first time (progress goes to ``log``)."""
    path = venv_path(name)
    venv = Venv(name, path)
    if (path / ".complete").exists():
        return venv
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"  building the {name} venv (first run only): {path}")
    uv, env = _uv(), _uv_env()
    subprocess.run([uv, "venv", "-q", "--python", PYTHON, str(path)], check=True, env=env)
    install = [uv, "pip", "install", "--python", str(venv.python), *REQUIREMENTS[name]]
    with subprocess.Popen(
        install, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-30:], line]
            if line.startswith(("Resolved", "Prepared", "Installed")):
                log(f"    {name}: {line}")
    if proc.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(f"uv pip install for {name} failed:\n" + "\n".join(tail))
    (path / ".complete").write_text(json.dumps(REQUIREMENTS[name]))
    log(f"  {name} venv ready in {time.monotonic() - started:.0f} s")
    return venv
