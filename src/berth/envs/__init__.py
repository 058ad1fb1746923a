"""Model environments: resolving what an artifact asks for, building it with uv, caching it.

Resolution runs at registration; builds run in the controller before replicas start. Nothing
here may run on the request path: a build takes seconds to minutes.
"""

from berth.envs.builder import BuiltEnv, EnvBuildFailed, build_env
from berth.envs.cache import EnvInfo, list_envs, mark_used, prune
from berth.envs.runtime_copy import runtime_path
from berth.envs.spec import EnvSpec, current_platform, resolve_spec
from berth.envs.uv_command import find_uv

__all__ = [
    "BuiltEnv",
    "EnvBuildFailed",
    "EnvInfo",
    "EnvSpec",
    "build_env",
    "current_platform",
    "find_uv",
    "list_envs",
    "mark_used",
    "prune",
    "resolve_spec",
    "runtime_path",
]
