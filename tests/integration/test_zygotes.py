"""Replicas forked from a warm zygote behave like replicas started from scratch."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.deploy import FAKES, entity, register_model, unique, wait_ready
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

ENV_READER = FAKES / "env_reader"


def replica_pid(home: Path, endpoint: str) -> int:
    (state,) = (home / "replicas").glob(f"{endpoint}.*/state.json")
    return int(json.loads(state.read_text())["pid"])


def parent_command(pid: int) -> bytes:
    parent = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[1]
    return Path(f"/proc/{parent}/cmdline").read_bytes()


def deploy(api: httpx.Client, model: str, **env: str) -> str:
    name = unique("zy")
    served = entity(model, "1", environment_vars=env)
    answer = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": name, "config": {"served_entities": [served]}},
    )
    assert answer.status_code == 200, answer.text
    wait_ready(api, name)
    return name


def test_a_second_replica_is_forked_from_the_zygote_and_keeps_its_own_environment(
    make_server: Callable[..., BerthServer],
) -> None:
    server = make_server()
    with server.client() as api:
        model = register_model(api, ENV_READER, prefix="envr")
        first = deploy(api, model, GREETING="hello")
        assert b"berth.runtime.zygote" not in parent_command(replica_pid(server.home, first))
        wait_until(
            lambda: any(server.home.glob("boxes/*/z-*.sock")),
            timeout=30,
            what="the environment's zygote to be ready",
        )
        second = deploy(api, model, GREETING="hello")
        pid = replica_pid(server.home, second)
        assert b"berth.runtime.zygote" in parent_command(pid)

        names = {"names": ["GREETING", "REPLICA_ID"]}
        seen = api.post(f"/serving-endpoints/{second}/invocations", json=names).json()
        assert seen["GREETING"] == "hello"
        assert seen["REPLICA_ID"].startswith(f"{second}.")
        logs = api.get(f"/api/2.0/serving-endpoints/{second}/served-models/{model}-1/logs")
        assert "model loaded" in logs.json()["logs"]

        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: (
                replica_pid(server.home, second) != pid
                and api.post(f"/serving-endpoints/{second}/invocations", json=names).is_success
            ),
            timeout=30,
            what="the killed replica to be replaced",
        )


def test_other_environment_variables_get_another_zygote(
    make_server: Callable[..., BerthServer],
) -> None:
    """A library may read a variable when it is imported: a zygote is never shared across
    different environment variables."""
    server = make_server()
    with server.client() as api:
        model = register_model(api, ENV_READER, prefix="envr")
        deploy(api, model, MODE="a")
        wait_until(
            lambda: any(server.home.glob("boxes/*/z-*.sock")),
            timeout=30,
            what="the first zygote",
        )
        other = deploy(api, model, MODE="b")
        assert b"berth.runtime.zygote" not in parent_command(replica_pid(server.home, other))
        wait_until(
            lambda: len(list(server.home.glob("boxes/*/z-*.sock"))) == 2,
            timeout=30,
            what="a second zygote",
        )


def test_replicas_that_start_together_share_one_zygote(
    make_server: Callable[..., BerthServer],
) -> None:
    """An entity's first replicas start at once; one zygote starts for all of them, and the
    next replica is forked from it (two would bind one socket, one of them unknown)."""
    server = make_server()
    with server.client() as api:
        model = register_model(api, ENV_READER, prefix="envr")
        name = unique("zy")
        served = entity(model, "1", workload_size="Medium")  # two replicas from the start
        created = api.post(
            "/api/2.0/serving-endpoints",
            json={"name": name, "config": {"served_entities": [served]}},
        )
        assert created.status_code == 200, created.text
        wait_ready(api, name)
        wait_until(
            lambda: any(server.home.glob("boxes/*/z-*.sock")),
            timeout=30,
            what="the environment's zygote to be ready",
        )
        later = deploy(api, model)
        assert b"berth.runtime.zygote" in parent_command(replica_pid(server.home, later))
        (log,) = (server.home / "zygotes").glob("*.log")
        assert log.read_text().count("zygote: ready") == 1
