"""What a replica runs with on a Ray node when its version has no environment of its own."""

from __future__ import annotations

import sys
from pathlib import Path

from berth.envs import replica_environment, runtime_path
from berth.sandbox import Sandbox


def test_berths_own_environment_is_the_nodes_interpreter_and_a_runtime_copy_there(
    tmp_path: Path,
) -> None:
    sandbox = Sandbox(tmp_path / "boxes", mode="none")
    python, pythonpath = replica_environment(None, tmp_path / "envs", tmp_path, sandbox)
    assert python == sys.executable
    assert pythonpath == str(runtime_path(tmp_path / "envs"))
    assert (Path(pythonpath) / "berth" / "runtime" / "__main__.py").is_file()
