"""Replica ids: content-addressed, so they must not move between berth versions."""

from __future__ import annotations

from dataclasses import replace

from berth.backends.base import ReplicaSpec

PLAIN = ReplicaSpec("ep", "m-1", "/art/m/1", "score_py", "/usr/bin/python3", 4)
FULL = ReplicaSpec(
    "ep",
    "m-1",
    "/art/m/1",
    "mlflow",
    "/envs/x/bin/python",
    8,
    pythonpath="/envs/rt",
    env=(("A", "1"), ("B", "é")),
    warmup_json='{"x": 1}',
    max_batch_size=4,
    max_batch_wait_ms=2.5,
    gpus=1,
    task="llm/v1/chat",
    container='{"c": [1]}',
)


def test_fingerprints_are_those_earlier_versions_gave() -> None:
    """Computed with ``json.dumps(dataclasses.asdict(spec), sort_keys=True)``: a restarted
    server finds the replicas an older one started."""
    assert PLAIN.fingerprint() == "63edd480ac"
    assert FULL.fingerprint() == "bb8f3e3238"
    assert FULL.replica_id(3) == "ep.m-1.bb8f3e3238.3"


def test_the_environment_spec_leaves_ids_alone() -> None:
    """``python`` names the environment already; ids from before the field existed hold."""
    assert replace(FULL, environment='{"python": "3.11"}').fingerprint() == "bb8f3e3238"


def test_replica_ids_are_each_replica_id() -> None:
    assert FULL.replica_ids(3) == tuple(FULL.replica_id(i) for i in range(3))
    assert PLAIN.replica_ids(0) == ()
