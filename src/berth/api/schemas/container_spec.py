"""The wire type of a custom container: Vertex AI's ``ModelContainerSpec``, in snake_case, with
the camelCase of Vertex's REST JSON accepted too (``image_uri`` or ``imageUri``).

What is refused here is what Vertex refuses, or what berth could not honour: a second port,
an ``invoke_route_prefix`` other than ``/*``, a probe with no action or two, and ``env``
names berth sets itself (``AIP_*``, ``BERTH_*``). Each refusal names its field. The stored
form (`ContainerSpec.normalised`) is snake_case with the probes' defaults filled in and the
deployment timeout in seconds; routes left out stay out (their defaults depend on where the
version is deployed: ``core/container_contract.effective_routes``).
"""

from __future__ import annotations

import re
from typing import Any, Self

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from berth.api.schemas.strict import Strict
from berth.core.container_contract import RAW_INVOKE_PREFIX

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_ENV_PREFIXES = ("AIP_", "BERTH_")
"""berth sets these itself: Vertex's contract and berth's own replica settings."""
LONGEST_S = 7200
"""Vertex's cap on ``deployment_timeout``; no probe may wait or count longer than that."""
LARGEST_SHM_MB = 1 << 20
"""1 TiB of shared memory: more than any host berth runs on has."""
PROBE_ACTIONS = ("http_get", "tcp_socket", "exec")

_DURATION = re.compile(r"^(\d+(?:\.\d{1,9})?)s$")
IMAGE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$")
"""An image name as the OCI runtimes take it (``[host[:port]/]path[:tag][@digest]``). A value
that starts with ``-`` or holds a space would reach podman's command line as an option of its
own (``--privileged``, a host volume), so it is refused here, before anything is stored."""


class VertexMessage(Strict):
    """Fields by their snake_case name or the camelCase of Vertex's REST JSON."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )


def _route(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise PydanticCustomError("route", "must be a path on the server, starting with '/'")
    return value


class HttpGet(VertexMessage):
    path: str = "/"
    port: int | None = Field(None, ge=1, le=65535)
    """Default: the port the server listens on."""

    _path = field_validator("path")(_route)


class TcpSocket(VertexMessage):
    port: int | None = Field(None, ge=1, le=65535)


class Exec(VertexMessage):
    command: list[str] = Field(min_length=1)

    @field_validator("command")
    @classmethod
    def _program_first(cls, command: list[str]) -> list[str]:
        """For an image it runs as ``podman exec NAME COMMAND...``: an option there would be
        podman's."""
        if command[0].startswith("-") or not command[0].strip():
            raise PydanticCustomError(
                "exec", "must start with a program to run, not an option or a blank"
            )
        return command


class Probe(VertexMessage):
    """One check of a container: an action and how often, how long, and how many answers
    count. The defaults are Kubernetes' and Vertex's."""

    http_get: HttpGet | None = None
    tcp_socket: TcpSocket | None = None
    exec: Exec | None = None
    period_seconds: int = Field(10, ge=1, le=LONGEST_S)
    timeout_seconds: int = Field(1, ge=1, le=LONGEST_S)
    failure_threshold: int = Field(3, ge=1, le=LONGEST_S)
    success_threshold: int = Field(1, ge=1, le=LONGEST_S)
    initial_delay_seconds: int = Field(0, ge=0, le=LONGEST_S)

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        given = [name for name in PROBE_ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            but = f", not {' and '.join(given)}" if given else ""
            raise PydanticCustomError(
                "probe_action", f"give exactly one of http_get, tcp_socket or exec{but}"
            )
        return self


class EnvVar(VertexMessage):
    name: str
    value: str

    @field_validator("name")
    @classmethod
    def _settable(cls, name: str) -> str:
        if not ENV_NAME.match(name):
            raise PydanticCustomError(
                "env_name",
                "'{name}' is not an environment variable name: use letters, digits and '_', "
                "not starting with a digit",
                {"name": name},
            )
        if name.startswith(RESERVED_ENV_PREFIXES):
            raise PydanticCustomError(
                "env_reserved",
                "{name} is berth's to set (it sets every AIP_* and BERTH_* variable): "
                "choose another name",
                {"name": name},
            )
        return name


class ContainerPort(VertexMessage):
    container_port: int = Field(ge=1, le=65535)


class ContainerSpec(VertexMessage):
    """Vertex's ``ModelContainerSpec``. Without ``image_uri`` the server is a process in the
    model's environment (its artifact's requirements.txt), so ``command`` must say what to
    run; with one it is that image, whose entrypoint ``command`` replaces when given."""

    image_uri: str | None = Field(None, min_length=1)
    command: list[str] = Field(default_factory=list, validate_default=True)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)
    predict_route: str | None = None
    health_route: str | None = None
    invoke_route_prefix: str | None = None
    shared_memory_size_mb: int | None = Field(None, ge=0, le=LARGEST_SHM_MB)
    deployment_timeout: float | None = Field(None, gt=0, le=LONGEST_S)
    """Seconds; given as a Duration (``"1800s"``) as in Vertex's JSON, or a number."""
    startup_probe: Probe | None = None
    health_probe: Probe | None = None
    liveness_probe: Probe | None = None

    _routes = field_validator("predict_route", "health_route")(_route)

    @field_validator("image_uri")
    @classmethod
    def _image_reference(cls, image: str | None) -> str | None:
        if image is not None and not IMAGE_REFERENCE.match(image):
            raise PydanticCustomError(
                "image_uri",
                "must be an image reference such as localhost/server:1 (letters, digits and "
                "._/:@-, not starting with '-', no spaces)",
            )
        return image

    @field_validator("command")
    @classmethod
    def _something_to_run(cls, command: list[str], info: ValidationInfo) -> list[str]:
        """A field check rather than a model one, so the error names ``command``; it can read
        ``image_uri``, validated first as it is declared first."""
        if not command and not info.data.get("image_uri"):
            raise PydanticCustomError(
                "command_needed",
                'give the command that starts the server (e.g. ["python", "server.py"]): '
                "without image_uri there is no image entrypoint to fall back to",
            )
        return command

    @field_validator("env")
    @classmethod
    def _unique_names(cls, env: list[EnvVar]) -> list[EnvVar]:
        seen: set[str] = set()
        for entry in env:
            if entry.name in seen:
                raise PydanticCustomError(
                    "env_twice", "{name} is given twice; give each name once", {"name": entry.name}
                )
            seen.add(entry.name)
        return env

    @field_validator("ports")
    @classmethod
    def _one_port(cls, ports: list[ContainerPort]) -> list[ContainerPort]:
        if len(ports) > 1:
            raise PydanticCustomError(
                "one_port",
                "give at most one port: as on Vertex, the server answers predictions and "
                "health checks on the first, and berth would ignore the others",
            )
        return ports

    @field_validator("invoke_route_prefix")
    @classmethod
    def _raw_invoke(cls, prefix: str | None) -> str | None:
        if prefix is not None and prefix != RAW_INVOKE_PREFIX:
            raise PydanticCustomError(
                "invoke_prefix",
                "only '/*' is accepted (as on Vertex): it lets /invoke/{path} reach every path "
                "of the server; leave it out to reach only the predict route",
            )
        return prefix

    @field_validator("deployment_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """Vertex's JSON writes a Duration as seconds with an ``s`` (``"1800s"``,
        ``"90.5s"``); the stored spec holds the number, which is accepted back."""
        if not isinstance(value, str):
            return value
        match = _DURATION.match(value.strip())
        if match is None:
            raise PydanticCustomError(
                "duration",
                "write a duration in seconds such as '1800s' or '90.5s', not '{value}'",
                {"value": value},
            )
        return float(match.group(1))

    def normalised(self) -> dict[str, Any]:
        """What a version stores: snake_case, probe defaults filled, absent fields left out."""
        return self.model_dump(mode="json", exclude_none=True)
