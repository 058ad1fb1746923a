"""A hostile score.py, deployed like any model, reaches nothing of the server or other models."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.deploy import ECHO, FAKES, deploy, entity, register, unique, wait_settled
from tests.support.net import wait_until
from tests.support.replicas import replica_socket
from tests.support.servers import ADMIN_TOKEN, BerthServer

pytestmark = pytest.mark.integration

SPY = FAKES / "spy"


def test_a_hostile_model_finds_nothing_of_the_server_nor_of_other_models(
    make_server: Callable[..., BerthServer],
) -> None:
    server = make_server()
    home = server.home
    with server.client() as api:
        victim = deploy(api, ECHO, prefix="victim")
        spy = deploy(api, SPY, prefix="spy")
        wait_until(
            lambda: len(list(home.glob("boxes/*/z-*.sock"))) >= 2,
            timeout=30,
            what="both models' zygotes",
        )
        spy_box = replica_socket(home, spy).parent
        victim_socket = replica_socket(home, victim)
        assert victim_socket.parent != spy_box
        others = [s for s in home.glob("boxes/*/*.sock") if s.parent != spy_box]
        assert any(s.name.startswith("z-") for s in others)  # another environment's zygote
        victim_artifact = next(home.glob(f"artifacts/{victim}/*/score.py"))
        spy_artifact = next(home.glob(f"artifacts/{spy}/*/score.py"))
        secrets = [home / "secret-key", home / "admin-token", home / "berth.db", victim_artifact]
        probes = {
            "read": [str(p) for p in secrets],
            "list": [str(home), str(home / "artifacts"), str(home / "boxes")],
            "connect": [str(s) for s in others],
            "write": [str(spy_artifact)],
        }
        answer = api.post(f"/serving-endpoints/{spy}/invocations", json=probes)
        assert answer.status_code == 200, answer.text
        found = answer.json()

    env: dict[str, str] = found.pop("env")
    assert [name for name in env if name.startswith("BERTH_")] == []
    assert not any(ADMIN_TOKEN in value for value in env.values())
    assert "postgresql" not in json.dumps(env)  # no database URL either
    reached = {probe: result for probe, result in found.items() if str(result).startswith("r")}
    assert reached == {}, reached
    assert len(found) == 2 + sum(len(targets) for targets in probes.values())
    assert server.proc is not None and server.proc.pid not in found["pids"]
    assert len(found["pids"]) <= 3  # its own PID namespace: the zygote and what it forked
    if os.geteuid() == 0:
        assert found["uid"] != 0


HOSTILE_SETUP = """
import json, os, socket
found = {"berth_env": sorted(k for k in os.environ if k.startswith("BERTH_"))}
for path in PATHS:
    try:
        with open(path, "rb") as fh:
            found[path] = "reached " + fh.read(16).hex()
    except Exception as exc:
        found[path] = type(exc).__name__
raise SystemExit("HOSTILE-FINDINGS " + json.dumps(found) + " END")
"""


def test_a_hostile_package_build_script_finds_nothing_of_the_server(
    make_server: Callable[..., BerthServer], tmp_path: Path
) -> None:
    """A package built from source at deploy time runs its setup.py: sandboxed like a model."""
    server = make_server()
    home = server.home
    targets = [str(home / "secret-key"), str(home / "admin-token"), str(home / "berth.db")]
    source = tmp_path / "hostile-0.1"
    source.mkdir()
    (source / "setup.py").write_text(f"PATHS = {targets!r}\n{HOSTILE_SETUP}")
    artifact = tmp_path / "model"
    shutil.copytree(ECHO, artifact)
    with tarfile.open(artifact / "hostile-0.1.tar.gz", "w:gz") as archive:
        archive.add(source, arcname="hostile-0.1")
    (artifact / "requirements.txt").write_text("./hostile-0.1.tar.gz\n")
    with server.client() as api:
        name = unique("hostile")
        register(api, name, artifact)
        config = {"served_entities": [entity(name, "1")]}
        created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
        assert created.status_code == 200, created.text
        assert wait_settled(api, name)["state"]["config_update"] == "UPDATE_FAILED"
        logs = api.get(f"/api/2.0/serving-endpoints/{name}/served-models/{name}-1/build-logs")
    text = logs.json()["logs"]
    assert "HOSTILE-FINDINGS" in text, text[-2000:]
    found = json.loads(text.split("HOSTILE-FINDINGS ", 1)[1].split(" END", 1)[0])
    assert found.pop("berth_env") == []
    assert set(found) == set(targets)
    assert not any(result.startswith("reached") for result in found.values()), found


def test_berth_home_and_its_secrets_are_private(make_server: Callable[..., BerthServer]) -> None:
    server = make_server()
    assert stat.S_IMODE(server.home.stat().st_mode) == 0o700
    for name in ("berth.db", "secret-key"):
        assert stat.S_IMODE((server.home / name).stat().st_mode) == 0o600, name
    assert "sandbox: " in server.log_path.read_text()
