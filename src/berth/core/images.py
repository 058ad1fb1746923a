"""Whether this host can run image-backed container versions, and with what: podman.

An image's replica is ``podman run`` started by the replica's supervisor inside a network
namespace of the supervisor's own (`berth.runtime.image`), so the server is reachable on that
namespace's loopback only, by the supervisor's probes and relay. Making that namespace takes
root, and so does the container joining it: berth runs images with rootful podman, and only
when it runs as root itself. Docker is not used: its containers are made by a daemon in the
host's namespaces, and it cannot join a namespace given by path, so a docker container would
be on the host's network.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass

SETTING = "BERTH_REPLICAS__CONTAINER_RUNTIME"
INSTALL = "install podman (Debian and Ubuntu: apt-get install podman)"


@dataclass(frozen=True)
class ImageRuntime:
    """How this host runs images, or why it cannot."""

    command: tuple[str, ...] = ()
    """podman's path and any global flags (``--runtime runc``); empty when images cannot run."""
    missing: str = ""
    """Why images cannot run here and what to do about it; empty when they can."""


NO_IMAGES = ImageRuntime(missing="this server was started without an image runtime")
"""Where nothing was found for a server (parts built alone, in tests)."""


def find_image_runtime(setting: str) -> ImageRuntime:
    """The runtime ``setting`` names: ``auto`` (podman on PATH), ``none``, or a podman command
    line with global flags (``podman --runtime runc``)."""
    if setting == "none":
        return ImageRuntime(missing=f"{SETTING}=none turns image-backed replicas off")
    command = ["podman"] if setting == "auto" else shlex.split(setting)
    name = os.path.basename(command[0]) if command else ""
    if name.startswith("docker"):
        return ImageRuntime(
            missing=f"{SETTING} names docker, which berth cannot use: a docker container "
            f"cannot join a replica's own network namespace, so it would be on the host's "
            f"network; {INSTALL}"
        )
    found = shutil.which(command[0]) if command else None
    if found is None:
        return ImageRuntime(
            missing=f"podman is not installed ({command[0] if command else 'empty'} is not on "
            f"PATH); {INSTALL}"
        )
    if os.geteuid() != 0:
        return ImageRuntime(
            missing="berth does not run as root, and an image's replica needs rootful podman "
            "(its container joins the replica's own network namespace); run berth as root"
        )
    return ImageRuntime((found, *command[1:]))
