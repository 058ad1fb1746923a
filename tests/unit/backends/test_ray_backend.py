"""The ray backend's choices made before it reaches a cluster: which server uses it, what it
refuses to run, and how its replicas are wrapped so that they die with their actor."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

from berth.backends.base import ReplicaSpec, ReplicaState
from berth.backends.ray import RayBackend, RayConfig, ReplicaActor
from berth.backends.ray_host import SandboxConfig
from berth.core.images import NO_IMAGES
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


def test_an_engine_or_a_container_fails_on_ray_saying_where_it_runs() -> None:
    backend = RayBackend(RayConfig(), SandboxConfig("/tmp/nodes"))
    gguf = ReplicaSpec("ep", "llm-1", "/art", "gguf", "/env/bin/python", 4)
    asyncio.run(backend.start("ep.llm-1.x.0", gguf))
    (status,) = backend.replicas()
    assert status.state is ReplicaState.FAILED
    assert "serve it with the local backend" in status.message


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
