"""The planner decides rollouts from targets and observed replicas, without processes."""

from __future__ import annotations

from dataclasses import replace

from berth.backends.base import ReplicaSpec, ReplicaState, ReplicaStatus
from berth.controller.planner import FailUpdate, Promote, SaveStates, plan
from berth.controller.targets import (
    ConfigTarget,
    EndpointStates,
    EndpointTarget,
    EntityTarget,
    Scaling,
    scaling,
)
from berth.core.container_contract import Deployment, replica_json
from berth.core.dataplane import ContainerRoute, ReplicaProtocol
from berth.core.endpoint_config import EntityState, ServedEntity
from berth.core.states import DeploymentState, EndpointReady


def spec(artifact: str, entity: str = "m-1") -> ReplicaSpec:
    return ReplicaSpec("ep", entity, artifact, "score_py", "python", 4)


def entity(artifact: str, name: str = "m-1", traffic: int = 100, replicas: int = 1) -> EntityTarget:
    return EntityTarget(name, traffic, spec(artifact, name), replicas)


def target(
    current: ConfigTarget | None,
    pending: ConfigTarget | None = None,
    ready: EndpointReady = EndpointReady.READY,
) -> EndpointTarget:
    stored = EndpointStates(ready, {}, {})
    return EndpointTarget("id1", "ep", current, pending, stored)


def status(rid: str, s: ReplicaSpec, state: ReplicaState, port: int = 9000) -> ReplicaStatus:
    return ReplicaStatus(rid, s, state, address=f"127.0.0.1:{port}", message="boom")


def test_fresh_config_starts_its_replicas_and_routes_nothing_yet() -> None:
    pending = ConfigTarget(1, (entity("/a", replicas=2),))
    decided = plan([target(None, pending, ready=EndpointReady.NOT_READY)], [])
    assert [rid for rid, _ in decided.start] == [spec("/a").replica_id(0), spec("/a").replica_id(1)]
    assert decided.routes["ep"].entities == ()
    assert not decided.routes["ep"].serving


def test_update_is_promoted_only_when_every_new_replica_is_ready() -> None:
    old, new = entity("/old"), entity("/new", replicas=2)
    t = target(ConfigTarget(1, (old,)), ConfigTarget(2, (new,)))
    old_rid, new0, new1 = old.replica_ids()[0], *new.replica_ids()
    observed = [
        status(old_rid, old.spec, ReplicaState.READY),  # type: ignore[arg-type]
        status(new0, new.spec, ReplicaState.READY, 9001),  # type: ignore[arg-type]
        status(new1, new.spec, ReplicaState.STARTING, 9002),  # type: ignore[arg-type]
    ]
    half = plan([t], observed)
    assert not any(isinstance(tr, Promote) for tr in half.transitions)
    assert [r.replica_id for r in half.routes["ep"].entities[0].replicas] == [old_rid]
    assert half.stop == ()

    observed[2] = status(new1, new.spec, ReplicaState.READY, 9002)  # type: ignore[arg-type]
    full = plan([t], observed)
    assert [type(tr) for tr in full.transitions] == [Promote]
    routed = {r.replica_id for r in full.routes["ep"].entities[0].replicas}
    assert routed == {new0, new1}
    assert full.stop == ()  # the old replica is retired on the pass after the switch

    after = plan([target(ConfigTarget(2, (new,)))], observed)
    assert after.stop == (old_rid,)


def test_failed_new_replica_fails_the_update_and_keeps_old_routes() -> None:
    old, new = entity("/old"), entity("/bad")
    t = target(ConfigTarget(1, (old,)), ConfigTarget(2, (new,)))
    observed = [
        status(old.replica_ids()[0], old.spec, ReplicaState.READY),  # type: ignore[arg-type]
        status(new.replica_ids()[0], new.spec, ReplicaState.FAILED, 9001),  # type: ignore[arg-type]
    ]
    decided = plan([t], observed)
    (failure,) = decided.transitions
    assert isinstance(failure, FailUpdate)
    assert "boom" in failure.reason and failure.version == 2
    assert failure.states.pending["m-1"].deployment == DeploymentState.FAILED
    assert [r.replica_id for r in decided.routes["ep"].entities[0].replicas] == [
        old.replica_ids()[0]
    ]


def test_unchanged_entity_keeps_its_replicas_across_versions() -> None:
    same = entity("/a", traffic=100)
    moved = entity("/a", traffic=100)
    t = target(ConfigTarget(1, (same,)), ConfigTarget(2, (moved,)))
    observed = [status(same.replica_ids()[0], same.spec, ReplicaState.READY)]  # type: ignore[arg-type]
    decided = plan([t], observed)
    assert decided.start == ()
    assert [type(tr) for tr in decided.transitions] == [Promote]


def test_states_are_saved_only_when_they_change() -> None:
    e = entity("/a")
    observed = [status(e.replica_ids()[0], e.spec, ReplicaState.READY)]  # type: ignore[arg-type]
    first = plan([target(ConfigTarget(1, (e,)), ready=EndpointReady.NOT_READY)], observed)
    (save,) = first.transitions
    assert isinstance(save, SaveStates) and save.states.ready == EndpointReady.READY
    settled = EndpointTarget("id1", "ep", ConfigTarget(1, (e,)), None, save.states)
    assert plan([settled], observed).transitions == ()


def test_replicas_nobody_wants_are_stopped() -> None:
    stray = status("gone.m-1.abc.0", spec("/x"), ReplicaState.READY)
    assert plan([], [stray]).stop == ("gone.m-1.abc.0",)


def test_bounds_follow_workload_size_provisioned_concurrency_and_scale_to_zero() -> None:
    assert scaling(ServedEntity("e", workload_size="Small")) == Scaling(1, 1)
    assert scaling(ServedEntity("e", workload_size="Medium")) == Scaling(2, 4)
    assert scaling(ServedEntity("e", workload_size="Large")) == Scaling(4, 16)
    provisioned = ServedEntity("e", min_provisioned_concurrency=0, max_provisioned_concurrency=8)
    assert scaling(provisioned) == Scaling(1, 2)
    assert scaling(ServedEntity("e")) == Scaling(1, 1)
    to_zero = ServedEntity("e", workload_size="Medium", scale_to_zero_enabled=True)
    assert scaling(to_zero) == Scaling(0, 4)
    assert scaling(replace(to_zero, scale_to_zero_idle_seconds=30)) == Scaling(0, 4, 30.0)
    assert Scaling(0, 4).initial == 1


def test_an_entity_scaled_to_zero_is_ready_and_routed_cold() -> None:
    idle = EntityTarget("m-1", 100, spec("/a"), 0, Scaling(0, 1))
    decided = plan([target(ConfigTarget(1, (idle,)))], [])
    assert decided.start == ()
    (save,) = decided.transitions
    assert isinstance(save, SaveStates) and save.states.ready == EndpointReady.READY
    assert save.states.current["m-1"].deployment == DeploymentState.READY
    (route,) = decided.routes["ep"].entities
    assert route.cold and route.replicas == () and decided.routes["ep"].serving


def test_waking_from_zero_stays_ready_and_cold_until_a_replica_is() -> None:
    waking = EntityTarget("m-1", 100, spec("/a"), 1, Scaling(0, 1))
    rid = waking.replica_ids()[0]
    starting = [status(rid, spec("/a"), ReplicaState.STARTING)]
    decided = plan([target(ConfigTarget(1, (waking,)))], starting)
    assert decided.routes["ep"].entities[0].cold
    (save,) = decided.transitions
    assert isinstance(save, SaveStates) and save.states.ready == EndpointReady.READY
    woken = plan(
        [target(ConfigTarget(1, (waking,)))], [status(rid, spec("/a"), ReplicaState.READY)]
    )
    (route,) = woken.routes["ep"].entities
    assert not route.cold and [r.replica_id for r in route.replicas] == [rid]


def test_scaling_down_stops_the_highest_replicas() -> None:
    two = EntityTarget("m-1", 100, spec("/a"), 2, Scaling(1, 4))
    r0, r1 = two.replica_ids()
    observed = [
        status(r0, spec("/a"), ReplicaState.READY, 9000),
        status(r1, spec("/a"), ReplicaState.READY, 9001),
    ]
    one = EntityTarget("m-1", 100, spec("/a"), 1, Scaling(1, 4))
    decided = plan([target(ConfigTarget(1, (one,)))], observed)
    assert decided.stop == (r1,)
    assert [r.replica_id for r in decided.routes["ep"].entities[0].replicas] == [r0]


def test_an_entity_waiting_for_its_environment_starts_nothing_and_says_why() -> None:
    building = EntityState(DeploymentState.CREATING, "Building environment abc with uv: resolving")
    waiting = EntityTarget("m-1", 100, None, 0, blocked=building)
    decided = plan([target(None, ConfigTarget(1, (waiting,)), ready=EndpointReady.NOT_READY)], [])
    assert decided.start == ()
    (save,) = decided.transitions
    assert isinstance(save, SaveStates)
    assert save.states.pending == {"m-1": building}
    failed = EntityTarget(
        "m-1", 100, None, 0, blocked=EntityState(DeploymentState.FAILED, "uv failed: x")
    )
    (failure,) = plan([target(None, ConfigTarget(1, (failed,)))], []).transitions
    assert isinstance(failure, FailUpdate) and "uv failed: x" in failure.reason


def test_a_containers_route_says_its_protocol_predict_route_and_raw_invoke() -> None:
    deployment = Deployment("id1", "c-1", "c")
    spec_json = replica_json({"command": ["serve"], "invoke_route_prefix": "/*"}, deployment)
    plain = replace(spec("/a", "c-1"), model_format="container", container=spec_json)
    llm = replace(plain, served_entity="c-2", task="llm/v1/chat")
    current = ConfigTarget(1, (EntityTarget("c-1", 50, plain, 1), EntityTarget("c-2", 50, llm, 1)))
    observed = [status(s.replica_id(0), s, ReplicaState.READY) for s in (plain, llm)]
    first, second = plan([target(current)], observed).routes["ep"].entities
    assert first.protocol is ReplicaProtocol.CONTAINER
    assert second.protocol is ReplicaProtocol.OPENAI
    predict = "/v1/endpoints/id1/deployedModels/c-1:predict"
    assert first.container == ContainerRoute(predict, raw_invoke=True)
