"""Model environments: resolving what an artifact asks for, building it with uv, caching it.

Resolution runs at registration; builds run in the controller before replicas start (and on
each Ray node, for the replicas it runs). Nothing here may run on the request path: a build
takes seconds to minutes.
"""

from berth.envs.builder import BuiltEnv, EnvBuildFailed, build_env
from berth.envs.cache import EnvInfo, list_envs, log_path, mark_used, prune
from berth.envs.describe import OWN_ENVIRONMENT, environment_details, spec_of
from berth.envs.node import replica_environment
from berth.envs.packages import install_package
from berth.envs.runtime_copy import runtime_path
from berth.envs.spec import EnvSpec, current_platform, resolve_spec
from berth.envs.uv_command import find_uv

__all__ = [
    "BuiltEnv",
    "EnvBuildFailed",
    "EnvInfo",
    "EnvSpec",
    "OWN_ENVIRONMENT",
    "build_env",
    "current_platform",
    "environment_details",
    "find_uv",
    "install_package",
    "list_envs",
    "log_path",
    "mark_used",
    "prune",
    "replica_environment",
    "resolve_spec",
    "runtime_path",
    "spec_of",
]
