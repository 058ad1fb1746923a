"""What runs images on a host: podman found on PATH as root, else why not, in words that say
what to do."""

from __future__ import annotations

import os
import shutil

import pytest

from berth.core import images
from berth.core.images import find_image_runtime


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A host with podman at /usr/bin/podman, berth running as root; tests change either."""
    found: dict[str, object] = {"podman": "/usr/bin/podman", "uid": 0}
    monkeypatch.setattr(shutil, "which", lambda name: found.get(name))
    monkeypatch.setattr(os, "geteuid", lambda: found["uid"])
    return found


def test_auto_runs_the_podman_on_path(host: dict[str, object]) -> None:
    assert find_image_runtime("auto") == images.ImageRuntime(("/usr/bin/podman",))


def test_a_command_line_keeps_its_global_flags(host: dict[str, object]) -> None:
    runtime = find_image_runtime("podman --runtime runc")
    assert runtime.command == ("/usr/bin/podman", "--runtime", "runc")


def test_none_runs_no_image(host: dict[str, object]) -> None:
    runtime = find_image_runtime("none")
    assert (runtime.command, runtime.missing) == (
        (),
        "BERTH_REPLICAS__CONTAINER_RUNTIME=none turns image-backed replicas off",
    )


def test_without_podman_it_says_what_to_install(host: dict[str, object]) -> None:
    del host["podman"]
    assert find_image_runtime("auto").missing == (
        "podman is not installed (podman is not on PATH); install podman (Debian and Ubuntu: "
        "apt-get install podman)"
    )


def test_docker_is_refused_since_its_containers_would_be_on_the_hosts_network(
    host: dict[str, object],
) -> None:
    host["docker"] = "/usr/bin/docker"
    missing = find_image_runtime("docker").missing
    assert missing.startswith("BERTH_REPLICAS__CONTAINER_RUNTIME names docker")
    assert "install podman" in missing


def test_rootless_berth_runs_no_image(host: dict[str, object]) -> None:
    host["uid"] = 1000
    assert find_image_runtime("auto").missing.startswith("berth does not run as root")
