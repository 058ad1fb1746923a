"""`berth endpoints ...` as a person runs it: the real CLI in a subprocess against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from berth.cli.demo import DEMO_QUERY
from tests.support.deploy import FAILING_LOAD, SLOW_LOAD, register_model, unique, wait_ready
from tests.support.net import free_port, wait_until
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "endpoints" / "iris.yaml"


@dataclass
class Cli:
    """Runs ``python -m berth endpoints ...`` with BERTH_HOST and BERTH_TOKEN set."""

    host: str
    token: str

    def __call__(
        self, *args: str, stdin: str = "", group: str = "endpoints"
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DATABRICKS_"))}
        env.update(BERTH_HOST=self.host, BERTH_TOKEN=self.token)
        return subprocess.run(
            [sys.executable, "-m", "berth", group, *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str, stdin: str = "") -> str:
        done = self(*args, stdin=stdin)
        assert done.returncode == 0, f"berth endpoints {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def models(self, *args: str) -> str:
        done = self(*args, group="models")
        assert done.returncode == 0, f"berth models {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--output", "json"))


@pytest.fixture
def cli(server: BerthServer) -> Cli:
    return Cli(server.url, server.token)


@pytest.fixture(scope="module")
def echo_model(server: BerthServer) -> str:
    """A registered model (version 1) for endpoints to serve."""
    with server.client() as api:
        return register_model(api, prefix="cli-echo")


def _spec(name: str, model: str, entity: str = "echo-1", **extra: Any) -> dict[str, Any]:
    served = {
        "name": entity,
        "entity_name": model,
        "entity_version": "1",
        "workload_size": "Small",
        "scale_to_zero_enabled": False,
    }
    route = {"served_entity_name": entity, "traffic_percentage": 100}
    config = {"served_entities": [served], "traffic_config": {"routes": [route]}}
    return {"name": name, "config": config, **extra}


def _write(tmp_path: Path, file_name: str, data: dict[str, Any]) -> str:
    path = tmp_path / file_name
    text = json.dumps(data) if path.suffix == ".json" else yaml.safe_dump(data)
    path.write_text(text)
    return str(path)


def _create(cli: Cli, tmp_path: Path, name: str, model: str, **extra: Any) -> str:
    return cli.ok("create", "-f", _write(tmp_path, f"{name}.yaml", _spec(name, model, **extra)))


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.replace("┃", "│").split("│") if cell.strip()]


def _row_with(out: str, needle: str) -> list[str]:
    return _cells(next(line for line in out.splitlines() if needle in line))


def _field(out: str, label: str) -> str:
    """The value of one ``Label  value`` line of a header block."""
    line = next(line for line in out.splitlines() if line.startswith(f"{label} "))
    return line.removeprefix(label).strip()


def test_create_get_list_delete(
    cli: Cli, api: httpx.Client, echo_model: str, tmp_path: Path
) -> None:
    name = unique("cli-life")
    created = _create(cli, tmp_path, name, echo_model)
    assert _field(created, "Name") == name
    assert _field(created, "State") == "NOT_READY (IN_PROGRESS)"
    assert _field(created, "Config version") == "none yet"
    assert _field(created, "Pending version") == "1"
    wait_ready(api, name)

    shown = cli.ok("get", name)
    assert _field(shown, "State") == "READY"
    assert _field(shown, "Config version") == "1"
    assert "Pending version" not in shown
    assert _row_with(shown, "echo-1 ") == [
        "echo-1",
        echo_model,
        "1",
        "Small CPU",
        "no",
        "1/1",
        "READY",
        "1/1 replicas ready.",
    ]
    assert _row_with(shown, "100%") == ["echo-1", "100%"]

    as_json = cli.json("get", name)
    rest = api.get(f"/api/2.0/serving-endpoints/{name}").json()
    for key in ("name", "id", "creator", "creation_timestamp"):
        assert as_json[key] == rest[key]

    listed = cli.ok("list")
    row = _row_with(listed, name)
    assert row[:2] == [name, "READY"]
    assert f"echo-1 ({echo_model} v1" in row[2]
    assert name in [e["name"] for e in cli.json("list")]

    assert cli.ok("delete", name, "--yes").strip() == f"Deleted endpoint {name}."
    gone = cli("get", name)
    assert gone.returncode == 1
    assert "RESOURCE_DOES_NOT_EXIST (404)" in gone.stderr
    assert name not in cli.ok("list")


def test_list_filters_by_state_and_by_tag_in_the_api_and_the_cli(
    cli: Cli, api: httpx.Client, echo_model: str, tmp_path: Path
) -> None:
    """berth's ``state`` (any given) and ``tag`` (all given) on the list; the Databricks
    clients send neither and get every endpoint as before."""
    search, ads = unique("cli-search"), unique("cli-ads")
    _create(cli, tmp_path, search, echo_model, tags=[{"key": "team", "value": "search"}])
    _create(cli, tmp_path, ads, echo_model, tags=[{"key": "team", "value": "ads"}, {"key": "x"}])
    wait_ready(api, search)
    wait_ready(api, ads)

    def names(**query: str | list[str]) -> set[str]:
        answer = api.get("/api/2.0/serving-endpoints", params=query)
        assert answer.status_code == 200, answer.text
        return {e["name"] for e in answer.json()["endpoints"]} & {search, ads}

    assert names() == {search, ads}
    assert names(tag="team=search") == {search}
    assert names(tag=["team", "x"]) == {ads}
    assert names(tag="team=nobody") == set()
    assert names(state="READY", tag="team") == {search, ads}
    assert names(state=["IN_PROGRESS", "UPDATE_FAILED"]) == set()
    refused = api.get("/api/2.0/serving-endpoints", params={"state": "RUNNING"})
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "filter by READY, NOT_READY" in refused.json()["message"]

    listed = cli.ok("list", "--state", "READY", "--tag", "team=search")
    assert search in listed and ads not in listed
    as_json = cli.json("list", "--tag", "team", "--tag", "x")
    assert [e["name"] for e in as_json] == [ads]
    bad = cli("list", "--state", "RUNNING")
    assert bad.returncode == 1
    assert "Unknown state RUNNING" in bad.stderr


def test_create_from_json_and_a_taken_name_is_refused(
    cli: Cli, echo_model: str, tmp_path: Path
) -> None:
    name = unique("cli-json")
    spec_file = _write(tmp_path, "spec.json", _spec(name, echo_model))
    assert cli.json("create", "-f", spec_file)["name"] == name
    again = cli("create", "-f", spec_file)
    assert again.returncode == 1
    assert again.stderr.startswith("Error RESOURCE_ALREADY_EXISTS (409):")
    assert name in again.stderr


def test_server_validation_errors_reach_the_user(cli: Cli, echo_model: str, tmp_path: Path) -> None:
    spec = _spec(unique("cli-bad"), echo_model)
    spec["config"]["traffic_config"]["routes"][0]["traffic_percentage"] = 90
    done = cli("create", "-f", _write(tmp_path, "bad.yaml", spec))
    assert done.returncode == 1
    assert done.stderr.startswith("Error INVALID_PARAMETER_VALUE (400):")
    assert "90" in done.stderr


@pytest.mark.parametrize("whole_payload", [True, False], ids=["create-payload", "core-config"])
def test_update_config_from_either_file_form(
    cli: Cli, api: httpx.Client, echo_model: str, tmp_path: Path, whole_payload: bool
) -> None:
    name = unique("cli-update")
    _create(cli, tmp_path, name, echo_model)
    wait_ready(api, name)
    payload = _spec(name, echo_model, entity="echo-b")
    file_data = payload if whole_payload else payload["config"]
    answer = cli.json("update-config", name, "-f", _write(tmp_path, "new.yaml", file_data))
    assert answer["name"] == name
    assert answer["state"]["config_update"] == "IN_PROGRESS"
    assert [e["name"] for e in answer["pending_config"]["served_entities"]] == ["echo-b"]

    config = wait_ready(api, name)["config"]
    assert config["config_version"] == 2
    assert [e["name"] for e in config["served_entities"]] == ["echo-b"]
    assert _row_with(cli.ok("get", name), "echo-b ")[:3] == ["echo-b", echo_model, "1"]


def test_tags_add_remove_and_show(
    cli: Cli, api: httpx.Client, echo_model: str, tmp_path: Path
) -> None:
    name = unique("cli-tags")
    _create(cli, tmp_path, name, echo_model, tags=[{"key": "team", "value": "ml"}])
    assert _row_with(cli.ok("tags", name), "team") == ["team", "ml"]

    added = cli.ok("tags", name, "--add", "env=dev", "--add", "owner=alice=ops")
    assert _row_with(added, "team") == ["team", "ml"]
    assert _row_with(added, "env") == ["env", "dev"]
    assert _row_with(added, "owner") == ["owner", "alice=ops"]

    remaining = cli.json("tags", name, "--remove", "env", "--remove", "team")
    assert remaining == [{"key": "owner", "value": "alice=ops"}]
    assert api.get(f"/api/2.0/serving-endpoints/{name}").json()["tags"] == remaining
    assert _field(cli.ok("get", name), "Tags") == "owner=alice=ops"


def test_events_as_table_and_json(
    cli: Cli, api: httpx.Client, echo_model: str, tmp_path: Path
) -> None:
    name = unique("cli-events")
    _create(cli, tmp_path, name, echo_model)
    found = cli.json("events", name)
    # Events only accumulate (oldest first), so what the CLI saw starts what REST sees now.
    rest = api.get(f"/api/2.0/serving-endpoints/{name}/events").json()["events"]
    assert rest[: len(found)] == found
    assert found, "creating an endpoint records at least one event"
    table = cli.ok("events", name)
    assert _cells(next(line for line in table.splitlines() if "message" in line)) == [
        "time",
        "type",
        "message",
    ]
    for event in found:
        assert event["type"] in table


def test_delete_asks_first(cli: Cli, echo_model: str, tmp_path: Path) -> None:
    name = unique("cli-ask")
    _create(cli, tmp_path, name, echo_model)
    kept = cli("delete", name, stdin="n\n")
    assert kept.returncode == 1
    assert f"Delete endpoint {name}?" in kept.stdout
    assert cli("get", name).returncode == 0
    assert cli.ok("delete", name, stdin="y\n").strip().endswith(f"Deleted endpoint {name}.")
    assert cli("get", name).returncode == 1


def test_errors_name_code_status_and_cause(server: BerthServer) -> None:
    missing = Cli(server.url, server.token)("get", "cli-no-such-endpoint")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error RESOURCE_DOES_NOT_EXIST (404):")
    assert "cli-no-such-endpoint" in missing.stderr

    refused = Cli(server.url, "bth_wrong")("list")
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error UNAUTHENTICATED (401):")

    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = Cli(nobody, server.token)("list")
    assert unreachable.returncode == 1
    assert f"Cannot reach berth at {nobody}" in unreachable.stderr


def test_demo_serves_and_the_tour_in_the_readme_works(
    make_server: Callable[..., BerthServer],
) -> None:
    demo = make_server("--demo")

    def demo_ready() -> bool:
        log = demo.log_path.read_text()
        assert "Start-up hook failed" not in log, log
        return "Demo ready: endpoint iris-demo" in log

    wait_until(demo_ready, timeout=120, what="berth serve --demo to deploy iris-demo")
    cli = Cli(demo.url, demo.token)
    deployed = cli.json("get", "iris-demo")
    assert deployed["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    answer = json.loads(cli.ok("query", "iris-demo", "--json", json.dumps(DEMO_QUERY)))
    assert answer == {"predictions": ["setosa", "virginica"]}

    registered = cli.models("register", "iris", str(REPO / "src" / "berth" / "demo" / "iris_model"))
    assert "iris" in registered
    created = cli.ok("create", "-f", str(EXAMPLE), "--wait")
    assert _field(created, "State") == "READY"
    body = '{"instances": [[6.7, 3.0, 5.2, 2.3]]}'
    assert json.loads(cli.ok("query", "iris", "--json", body)) == {"predictions": ["virginica"]}
    assert "model loaded in" in cli.ok("logs", "iris", "iris-1")


def test_wait_shows_a_failed_update_and_exits_1(
    cli: Cli, server: BerthServer, echo_model: str, tmp_path: Path
) -> None:
    name = unique("cli-fail")
    _create(cli, tmp_path, name, echo_model)
    with server.client() as api:
        wait_ready(api, name)
        broken = register_model(api, FAILING_LOAD, prefix="cli-broken")
    spec = _spec(name, broken, entity="broken-1")["config"]
    done = cli("update-config", name, "-f", _write(tmp_path, "broken.yaml", spec), "--wait")
    assert done.returncode == 1
    assert "UPDATE_FAILED" in done.stdout + done.stderr
    assert "model.bin is corrupt" in done.stdout
    assert cli.json("get", name)["config"]["config_version"] == 1


def test_cancel_update_and_query_errors(
    cli: Cli, server: BerthServer, echo_model: str, tmp_path: Path
) -> None:
    name = unique("cli-cancel")
    _create(cli, tmp_path, name, echo_model)
    with server.client() as api:
        wait_ready(api, name)
        slow = register_model(api, SLOW_LOAD, prefix="cli-slow")
    spec = _spec(name, slow, entity="slow-1")["config"]
    cli.ok("update-config", name, "-f", _write(tmp_path, "slow.yaml", spec))
    cancelled = cli.json("cancel-update", name)
    assert cancelled["state"]["config_update"] == "UPDATE_CANCELED"
    again = cli("cancel-update", name)
    assert again.returncode == 1 and "RESOURCE_CONFLICT" in again.stderr
    bad = cli("query", name, "--json", "{not json")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr
    echoed = json.loads(cli.ok("query", name, "--json", '{"inputs": [1, 2]}'))
    assert echoed == {"predictions": {"inputs": [1, 2]}}
