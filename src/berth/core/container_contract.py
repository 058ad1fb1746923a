"""Vertex AI's contract with a custom container, as pure functions: the ``AIP_*`` variables
each replica gets, ``$(VAR)`` expansion as Kubernetes does it, the environment and command
line that result, and the routes the server answers on.

``spec`` is a container version's stored spec (``details["container_spec"]``: snake_case,
validated and normalised by ``api/schemas/container_spec.py``). Whatever runs a container
version (a backend starting it, the gateway forwarding to it) reads the contract from here,
so a process and an image see the same variables. Nothing here starts anything. The replica
runtime imports this module on the model's own Python, so it keeps to Python 3.9.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

AIP_MODE = "PREDICTION"
AIP_MODE_VERSION = "1.0.0"
AIP_FRAMEWORK = "CUSTOM_CONTAINER"
RAW_INVOKE_PREFIX = "/*"
"""The one ``invoke_route_prefix`` Vertex accepts: every path of the server is reachable."""
DEFAULT_DEPLOYMENT_TIMEOUT_S = 300.0
"""How long a replica may take to pass its probes when the spec sets no ``deployment_timeout``:
berth's own start limit for any replica."""
PROBE_SOCKET_SUFFIX = ".probe"

_REFERENCE = re.compile(r"\$(?:\$|\(([^)]*)\))")
"""``$$`` (an escaped ``$``) or ``$(NAME)``; anything else with a ``$`` is left alone."""

Spec = Mapping[str, Any]


@dataclass(frozen=True)
class Deployment:
    """Where a container version is served, as Vertex tells its container: the same for
    every replica of one served entity."""

    endpoint_id: str
    deployed_model_id: str
    """berth's counterpart of Vertex's ``DeployedModel.id``: the served entity."""
    model_name: str
    storage_uri: str | None = None
    """A ``file://`` URI of the version's artifact; None when the version has none."""


@dataclass(frozen=True)
class Routes:
    """The paths on the server that berth sends predictions and health checks to."""

    predict: str
    health: str
    raw_invoke: bool
    """Whether ``/serving-endpoints/{name}/invoke/{path}`` reaches any ``{path}`` on it."""


def effective_routes(spec: Spec, deployment: Deployment) -> Routes:
    """The spec's routes, else Vertex's defaults when a model is deployed:
    ``/v1/endpoints/ENDPOINT/deployedModels/DEPLOYED_MODEL:predict`` and the same path
    without ``:predict`` for health (which is why they need the deployment)."""
    base = f"/v1/endpoints/{deployment.endpoint_id}/deployedModels/{deployment.deployed_model_id}"
    return Routes(
        predict=spec.get("predict_route") or f"{base}:predict",
        health=spec.get("health_route") or base,
        raw_invoke=spec.get("invoke_route_prefix") == RAW_INVOKE_PREFIX,
    )


def aip_variables(spec: Spec, deployment: Deployment, *, port: int) -> dict[str, str]:
    """The ``AIP_*`` variables of one replica listening on ``port``:

    - ``AIP_HTTP_PORT``: the port berth assigned the replica, where the server must listen;
    - ``AIP_PREDICT_ROUTE``, ``AIP_HEALTH_ROUTE``: where berth sends predictions and health
      checks (`effective_routes`);
    - ``AIP_STORAGE_URI``: where the version's artifact is, only when it has one;
    - ``AIP_MODE`` (``PREDICTION``), ``AIP_MODE_VERSION`` (``1.0.0``), ``AIP_FRAMEWORK``
      (``CUSTOM_CONTAINER``): what Vertex says of every custom container it serves;
    - ``AIP_DEPLOYED_MODEL_ID``, ``AIP_ENDPOINT_ID``, ``AIP_MODEL_NAME``: which served
      entity, endpoint and registered model the replica serves.
    """
    routes = effective_routes(spec, deployment)
    variables = {
        "AIP_HTTP_PORT": str(port),
        "AIP_PREDICT_ROUTE": routes.predict,
        "AIP_HEALTH_ROUTE": routes.health,
        "AIP_MODE": AIP_MODE,
        "AIP_MODE_VERSION": AIP_MODE_VERSION,
        "AIP_FRAMEWORK": AIP_FRAMEWORK,
        "AIP_DEPLOYED_MODEL_ID": deployment.deployed_model_id,
        "AIP_ENDPOINT_ID": deployment.endpoint_id,
        "AIP_MODEL_NAME": deployment.model_name,
    }
    if deployment.storage_uri is not None:
        variables["AIP_STORAGE_URI"] = deployment.storage_uri
    return variables


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``$(VAR)`` replaced by VAR's value where ``variables`` defines it, left as written where
    not; ``$$`` is one literal ``$`` (so ``$$(VAR)`` is the text ``$(VAR)``, never expanded);
    any other ``$`` stays. This is Kubernetes' expansion, which Vertex applies to a container's
    ``command``, ``args`` and ``env``; it is not a shell's (``$VAR`` is left alone)."""

    def replace(reference: re.Match[str]) -> str:
        name = reference.group(1)
        if name is None:
            return "$"
        return variables.get(name, reference.group(0))

    return _REFERENCE.sub(replace, text)


def container_env(spec: Spec, aip: Mapping[str, str]) -> dict[str, str]:
    """The ``AIP_*`` variables and the spec's ``env``. Each entry's value is expanded with
    those variables and the entries before it, as Kubernetes does: a reference to a later
    entry, or to a variable of the host or the image, stays as written."""
    env = dict(aip)
    for entry in spec.get("env", ()):
        env[entry["name"]] = expand(entry["value"], env)
    return env


def command_line(spec: Spec, env: Mapping[str, str]) -> list[str]:
    """``command`` then ``args``, each expanded with ``env`` (`container_env`'s answer).

    For an image, the first ``len(spec["command"])`` items replace its entrypoint and the rest
    its ``CMD``; with no command, every item is an argument to the image's own entrypoint.
    """
    return [expand(part, env) for part in (*spec.get("command", ()), *spec.get("args", ()))]


def replica_json(spec: Spec, deployment: Deployment) -> str:
    """What a container replica is told (``--container-json``): its spec and deployment."""
    return json.dumps({"spec": spec, "deployment": asdict(deployment)}, sort_keys=True)


def read_replica_json(text: str) -> tuple[dict[str, Any], Deployment]:
    """`replica_json`'s spec and deployment back."""
    told = json.loads(text)
    return told["spec"], Deployment(**told["deployment"])


def probe_socket(socket: str) -> str:
    """Where a container replica listening on ``socket`` answers berth's health checks: its
    probes' verdict, apart from the relay to the server (same length as ``socket`` plus one
    byte, so it fits wherever ``socket`` does)."""
    return os.path.splitext(socket)[0] + PROBE_SOCKET_SUFFIX


def container_name(socket: str) -> str:
    """The name of the image container of the replica listening on ``socket``, so the
    replica's next start and the backend stopping it find a container it left."""
    return "berth-" + os.path.splitext(os.path.basename(socket))[0]


def replica_image(told: str) -> str | None:
    """The image a container replica runs (``told`` is `replica_json`'s); None: a process."""
    image = json.loads(told)["spec"].get("image_uri")
    return str(image) if image else None
