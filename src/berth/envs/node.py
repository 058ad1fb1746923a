"""The environment a replica runs in on a machine that does not see the server's files (a Ray
node): built there, or found in its cache there, never read from the server's paths.

The server hands `replica_environment` to the ray backend (which does not import berth.envs),
and Ray ships it to the node by reference, where berth is installed too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from berth.envs.builder import build_env
from berth.envs.runtime_copy import runtime_path
from berth.envs.spec import EnvSpec
from berth.sandbox import Sandbox


def replica_environment(
    environment: str | None, root: Path, artifact: Path, sandbox: Sandbox
) -> tuple[str, str]:
    """The interpreter and ``PYTHONPATH`` a replica runs with on this machine.

    ``environment`` (a spec as JSON, see ``ReplicaSpec.environment``) is built under ``root``
    as the server builds it (by the same hash, with uv in the builders' box of ``sandbox``),
    unless ``root`` holds it already; None runs this process's own interpreter, berth's
    environment here. ``PYTHONPATH`` is the runtime's copy under ``root`` either way. Raises
    ``EnvBuildFailed`` saying why a build failed."""
    pythonpath = str(runtime_path(root))
    if environment is None:
        return sys.executable, pythonpath
    spec = EnvSpec.from_json(json.loads(environment))
    built = build_env(spec, root, artifact=artifact, sandbox=sandbox)
    return str(built.python), pythonpath
