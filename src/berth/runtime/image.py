"""A custom container's image, run by podman in the replica's own network namespace.

The replica's supervisor (berth's runtime, `container`) first leaves the host's network for a
namespace of its own holding only a loopback (`private_network`); the ``podman run`` it then
starts stays in that namespace (``--network host`` means podman's own, which is the
supervisor's), so the server listens on a loopback that only its supervisor's probes and relay
reach, and it reaches nothing outside. Each replica has its own loopback, so the server
listens on the port the spec declares (``ports[0].container_port``, else Vertex's 8080) and
``AIP_HTTP_PORT`` says that port, as on Vertex. The image comes from the host's storage only
(``--pull never``). The shared-memory size, the artifact read-only at its own path (so
``AIP_STORAGE_URI`` holds inside), Vertex's variables and the entity's ``environment_vars``
are applied; ``--init`` relays the stop signal to the server; the container is removed when it
stops (``--rm``) and by name (`remove_command`) on the way out, whatever stopped it.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import socket
import struct
from collections.abc import Mapping
from typing import Any

from berth.core.container_contract import expand

DEFAULT_PORT = 8080
"""Vertex's ``AIP_HTTP_PORT`` when the spec declares no port."""
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
_IFREQ = "16sH14x"


ENV_FILE = "/dev/stdin"
"""Where ``podman run`` reads the container's variables: a pipe from the supervisor, so no
value is on a command line, on disk, or in podman's own environment."""


class Image:
    """How this replica runs its image: the podman command line berth found on the host
    (`berth.core.images`) and the entity's own variables, which the container gets besides
    Vertex's. This process and podman run beside the sandbox as berth's user, so those
    variables are never in their environment (``LD_PRELOAD`` or ``CONTAINERS_CONF`` there
    would run code as that user or configure podman): the backend sends them on a pipe."""

    def __init__(self, runtime: list[str], variables: Mapping[str, str]) -> None:
        self.runtime = runtime
        self.variables = dict(variables)

    @classmethod
    def from_json(cls, text: str) -> Image:
        """``told`` by the backend: the runtime, and the pipe holding the entity's variables
        (read whole, then closed)."""
        told = json.loads(text)
        with os.fdopen(int(told["env_fd"]), "rb") as pipe:
            variables = json.loads(pipe.read() or b"{}")
        return cls(list(told["runtime"]), variables)

    def env_file(self, contract: Mapping[str, str]) -> bytes:
        """The container's variables as ``podman run --env-file`` reads them: the entity's,
        then Vertex's and the spec's (which win), one ``NAME=VALUE`` a line."""
        variables = {**self.variables, **contract}
        broken = sorted(name for name, value in variables.items() if "\n" in value)
        if broken:
            raise ValueError(
                f"{', '.join(broken)} hold a line break, which an image's variables cannot "
                "carry (podman reads them one a line)"
            )
        return "".join(f"{name}={value}\n" for name, value in variables.items()).encode()

    def run_command(
        self, name: str, spec: Mapping[str, Any], contract: Mapping[str, str], mount: str | None
    ) -> list[str]:
        """``podman run`` for the server: its variables read from its standard input (`env_file`
        writes them), ``mount`` (the artifact) read-only. ``command`` replaces the image's
        entrypoint and ``args`` its ``CMD``, each expanded with ``contract``."""
        image = spec["image_uri"]
        if image.startswith("-") or any(c.isspace() for c in image):
            # The API refuses such a spec; one that reaches here anyway must not become an
            # option of podman's own (--privileged, a volume of the host's).
            raise ValueError(f"{image!r} is not an image reference")
        argv = [*self.runtime, "run", "--rm", "--init", "--pull", "never", "--name", name]
        argv += ["--network", "host"]
        shm = spec.get("shared_memory_size_mb")
        if shm:
            argv += ["--shm-size", f"{shm}m"]
        if mount is not None:
            argv += ["--volume", f"{mount}:{mount}:ro"]
        argv += ["--env-file", ENV_FILE]
        command = [expand(part, contract) for part in spec.get("command", ())]
        if command:
            argv += ["--entrypoint", json.dumps(command)]
        # "--": whatever follows is the image and its arguments, never podman's options.
        return [*argv, "--", image, *(expand(a, contract) for a in spec.get("args", ()))]

    def remove_command(self, name: str, grace_s: float) -> list[str]:
        """Stop (SIGTERM, SIGKILL past ``grace_s``) and remove the container, if any."""
        return [*self.runtime, "rm", "--force", "--ignore", "--time", str(int(grace_s)), name]

    def in_container(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``spec`` with each ``exec`` probe run inside the container (``podman exec``)."""
        probes = {}
        for key in ("startup_probe", "health_probe", "liveness_probe"):
            probe = spec.get(key)
            if probe and "exec" in probe:
                command = [*self.runtime, "exec", name, *probe["exec"]["command"]]
                probes[key] = {**probe, "exec": {"command": command}}
        return {**spec, **probes}


def image_port(spec: Mapping[str, Any]) -> int:
    """Where the server in the image listens: the spec's port, else Vertex's default."""
    ports = spec.get("ports") or ()
    return int(ports[0]["container_port"]) if ports else DEFAULT_PORT


def private_network() -> None:
    """Move this process (before it starts any thread) into a new network namespace and bring
    its loopback up. Needs root: raises OSError otherwise."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNET): {os.strerror(errno)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        asked = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(control, SIOCGIFFLAGS, asked))[1]
        fcntl.ioctl(control, SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | IFF_UP))
