"""Running a probe script in a model environment (pandas, numpy, scikit-learn, MLflow, which
berth's own environment lacks) with berth importable, and reading the JSON it prints last."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import berth

SRC = str(Path(berth.__file__).resolve().parents[1])


def run_probe(script: Path, python: Path, work: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(script), str(work)],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report
