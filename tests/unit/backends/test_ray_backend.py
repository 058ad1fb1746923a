"""The ray backend's choices made before it reaches a cluster: which server uses it, what it
refuses to run, how its replicas are wrapped so that they die with their actor, and how a
node makes a replica's environment."""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import replace
from pathlib import Path

from berth.backends.base import ReplicaSpec, ReplicaState
from berth.backends.local import Liveness
from berth.backends.ray import RayBackend, RayConfig, ReplicaActor, actor_resources
from berth.backends.ray_host import HostPlace, HostStatus, SandboxConfig, Supervisor
from berth.core.errors import BerthError
from berth.core.images import NO_IMAGES
from berth.envs import replica_environment
from berth.sandbox import Sandbox
from berth.server.backends import Local, build_backend
from berth.settings import Settings

SPEC = ReplicaSpec("ep", "m-1", "/art", "score_py", "/env/bin/python", 4)


def settings(home: Path, **changes: object) -> Settings:
    return Settings(home=home, sandbox={"mode": "none"}, **changes)


def backend_of(given: Settings) -> object:
    sandbox = Sandbox(given.sandboxes_dir, mode="none")
    return build_backend(given, sandbox, NO_IMAGES, lambda _text: None, lambda: None)


def test_a_server_runs_local_replicas_unless_told_ray(tmp_path: Path) -> None:
    assert isinstance(backend_of(settings(tmp_path)), Local)
    chosen = backend_of(settings(tmp_path, backend="ray", ray={"address": "10.0.0.5:6379"}))
    assert isinstance(chosen, RayBackend)
    assert "ray at 10.0.0.5:6379, namespace berth" in chosen.describe()


def test_an_actor_reserves_cpus_gpus_and_memory_for_its_weights_and_a_base() -> None:
    config = RayConfig(replica_cpus=2, replica_memory_mb=512)
    llm = ReplicaSpec("ep", "llm-1", "/art", "gguf", "/py", 4, gpus=1, memory_mb=94)
    assert actor_resources(config, llm) == {
        "num_cpus": 2,
        "num_gpus": 1,
        "memory": (512 + 94) * 2**20,
    }
    assert llm.fingerprint() == replace(llm, memory_mb=0).fingerprint(), "ids are unchanged"


def test_a_container_image_fails_on_ray_saying_where_it_runs() -> None:
    """An image runs through the server host's podman; a container run as a process is
    relayed like an engine."""
    backend = RayBackend(RayConfig(), SandboxConfig("/tmp/nodes"), replica_environment)
    asyncio.run(backend.start("ep.srv-1.x.0", IMAGE))
    (status,) = backend.replicas()
    assert status.state is ReplicaState.FAILED
    assert "not images" in status.message
    assert "serve this one with the local backend" in status.message


IMAGE = ReplicaSpec(
    "ep",
    "srv-1",
    "/art",
    "container",
    "/env/bin/python",
    4,
    container=json.dumps({"spec": {"image_uri": "registry.local/srv:1"}}),
)
"""A container version run from an image, which the ray backend refuses."""


def test_a_closed_backend_tells_no_replica() -> None:
    """A server that no longer leads (or follows from its start) follows no actor: its
    metrics and logs name none until it leads and adopts them again."""
    backend = RayBackend(RayConfig(), SandboxConfig("/tmp/nodes"), replica_environment)
    asyncio.run(backend.start("ep.srv-1.x.0", IMAGE))  # refused, so known without a cluster
    assert len(backend.replicas()) == 1
    asyncio.run(backend.close())
    assert backend.replicas() == []


def test_a_replica_on_ray_dies_with_its_actor(tmp_path: Path) -> None:
    """bubblewrap's own init is the namespace's pid 1 and dies with the actor; as pid 1 the
    model's process would lose that signal when setpriv drops its uid."""
    sandbox = Sandbox(tmp_path / "boxes", mode="none")
    box = sandbox.box("/art", "/env/bin/python")
    plain = sandbox.command(["python"], box, readable=[], env={}, die_with_parent=True)
    assert plain.argv == ["setpriv", "--pdeathsig", "KILL", "--", "python"]
    sandbox.bwrap = "/usr/bin/bwrap"  # the view as it would be built where bubblewrap runs
    local = sandbox.command(["python"], box, readable=[], env={})
    on_ray = sandbox.command(["python"], box, readable=[], env={}, die_with_parent=True)
    assert "--as-pid-1" in local.argv and "--die-with-parent" not in local.argv
    assert "--die-with-parent" in on_ray.argv and "--as-pid-1" not in on_ray.argv


def test_the_actor_has_no_coroutine_method() -> None:
    """One would make Ray run every method on one event loop, one call at a time: ``logs`` and
    ``stop`` would wait behind the server's long poll."""
    methods = inspect.getmembers(ReplicaActor, inspect.isfunction)
    assert [name for name, m in methods if inspect.iscoroutinefunction(m)] == []


def test_a_node_builds_the_environment_and_a_failed_build_fails_the_replica(
    tmp_path: Path,
) -> None:
    """The node makes the environment in its own work dir from the spec, not from the
    server's ``python``; meanwhile the replica says so, and a failed build fails it."""
    artifact = tmp_path / "art"
    artifact.mkdir()
    spec = replace(SPEC, artifact=str(artifact), environment='{"python": "3.11"}')
    asked: list[tuple[str | None, Path, Path, HostStatus]] = []

    def environment(given: str | None, root: Path, art: Path, _sandbox: Sandbox) -> tuple[str, str]:
        asked.append((given, root, art, supervisor.watch("", -1, 0)))
        raise BerthError("uv failed installing tinypkg")

    config = SandboxConfig(str(tmp_path / "nodes"), mode="none")
    place = HostPlace("n1", "127.0.0.1")
    supervisor = Supervisor("ep.m-1.x.0", spec, {}, config, place, Liveness(), environment)
    asyncio.run(supervisor.run())
    [(given, root, art, meanwhile)] = asked
    assert (given, root, art) == (spec.environment, tmp_path / "nodes" / "envs", artifact)
    assert meanwhile.state == "STARTING"
    assert meanwhile.message == "Building its environment on node n1."
    failed = supervisor.watch("", -1, 0)
    assert (failed.state, failed.message) == ("FAILED", "On node n1: uv failed installing tinypkg")
