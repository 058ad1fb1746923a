"""The podman command lines a replica runs an image with, without podman."""

from __future__ import annotations

import json
import os

import pytest

from berth.core.container_contract import aip_variables, container_env
from berth.runtime.image import Image, image_port
from tests.unit.core.test_container_contract import DEPLOYMENT

PODMAN = ["/usr/bin/podman", "--runtime", "runc"]


def test_the_server_runs_with_its_limits_mount_and_variables_by_name() -> None:
    spec = {
        "image_uri": "localhost/server:1",
        "command": ["/bin/serve", "--model=$(AIP_STORAGE_URI)"],
        "args": ["--port", "$(AIP_HTTP_PORT)"],
        "env": [{"name": "MODE", "value": "fast"}],
        "shared_memory_size_mb": 256,
    }
    contract = container_env(spec, aip_variables(spec, DEPLOYMENT, port=image_port(spec)))
    image = Image(PODMAN, {"TOKEN": "s3cret", "MODE": "slow"})
    argv = image.run_command("berth-abc", spec, contract, "/a/1")
    head = [*PODMAN, "run", "--rm", "--init", "--pull", "never", "--name", "berth-abc"]
    assert argv[: len(head)] == head
    assert argv[len(head) :][:6] == [
        "--network",
        "host",
        "--shm-size",
        "256m",
        "--volume",
        "/a/1:/a/1:ro",
    ]
    assert argv[argv.index("--env-file") + 1] == "/dev/stdin"
    assert "--env" not in argv and "s3cret" not in " ".join(argv)  # no value on the line
    lines = image.env_file(contract).decode().splitlines()
    assert lines[:2] == ["TOKEN=s3cret", "MODE=fast"]  # the spec's MODE wins over the entity's
    assert "AIP_HTTP_PORT=8080" in lines
    entrypoint = argv[argv.index("--entrypoint") + 1]
    assert json.loads(entrypoint) == ["/bin/serve", "--model=file:///a/1"]
    assert argv[-4:] == ["--", "localhost/server:1", "--port", "8080"]


def test_an_image_without_command_mount_or_shm_keeps_its_entrypoint() -> None:
    spec = {"image_uri": "localhost/server:1", "ports": [{"container_port": 9000}]}
    contract = container_env(spec, aip_variables(spec, DEPLOYMENT, port=image_port(spec)))
    argv = Image(PODMAN, {}).run_command("berth-abc", spec, contract, None)
    assert contract["AIP_HTTP_PORT"] == "9000"
    assert not {"--entrypoint", "--shm-size", "--volume"} & set(argv)
    assert argv[-2:] == ["--", "localhost/server:1"]


def test_exec_probes_run_inside_the_container() -> None:
    probe = {"exec": {"command": ["cat", "/ready"]}, "period_seconds": 1}
    http = {"http_get": {"path": "/health"}, "period_seconds": 1}
    spec = {"image_uri": "x", "startup_probe": probe, "health_probe": http}
    inside = Image(PODMAN, {}).in_container("berth-abc", spec)
    assert inside["startup_probe"] == {
        "exec": {"command": [*PODMAN, "exec", "berth-abc", "cat", "/ready"]},
        "period_seconds": 1,
    }
    assert inside["health_probe"] == http
    assert "liveness_probe" not in inside


def test_a_stop_removes_the_container_after_a_grace() -> None:
    assert Image(PODMAN, {}).remove_command("berth-abc", 30.0) == [
        *PODMAN,
        "rm",
        "--force",
        "--ignore",
        "--time",
        "30",
        "berth-abc",
    ]


def test_vertexs_port_when_the_spec_declares_none() -> None:
    assert image_port({"image_uri": "x"}) == 8080


def test_an_image_that_looks_like_an_option_never_reaches_podmans_command_line() -> None:
    """The API refuses it; a spec stored before that check, or edited on disk, is refused here
    too, rather than read by podman as ``--privileged`` or a host volume."""
    image = Image(["podman"], {})
    spec = {"image_uri": "--volume=/:/host", "command": ["python3"]}
    with pytest.raises(ValueError, match="not an image reference"):
        image.run_command("berth-x", spec, {"AIP_HTTP_PORT": "8080"}, None)


def test_a_variable_with_a_line_break_is_refused_rather_than_split_into_two() -> None:
    image = Image(PODMAN, {"NOTE": "one\nEVIL=two"})
    with pytest.raises(ValueError, match="NOTE hold a line break"):
        image.env_file({"AIP_HTTP_PORT": "8080"})


def test_the_entitys_variables_come_on_the_pipe_the_backend_wrote() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, json.dumps({"TOKEN": "s3cret"}).encode())
    os.close(write_end)
    image = Image.from_json(json.dumps({"runtime": PODMAN, "env_fd": read_end}))
    assert (image.runtime, image.variables) == (PODMAN, {"TOKEN": "s3cret"})
