"""Registering fake models and waiting on endpoints through the real REST API."""

from __future__ import annotations

import io
import shutil
import tarfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.load import Load
from tests.support.net import wait_until

FAKES = Path(__file__).resolve().parent.parent / "fakes" / "models"
ECHO = FAKES / "echo"
FAILING_LOAD = FAKES / "failing_load"
SLOW_LOAD = FAKES / "slow_load"

# Two iris rows in each of MLflow's four scoring formats.
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
FORMATS = {
    "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
    "dataframe_records": {"dataframe_records": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]},
    "instances": {"instances": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]},
    "inputs": {"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}},
}
"""Answers each request with its input: for endpoints where what is served does not matter."""


OBSERVED = frozenset({"state", "current_replicas", "desired_replicas"})
"""Served-entity fields the controller fills in, not the requests."""


def versioned_artifact(root: Path, version: str) -> Path:
    """A copy of the ``versioned`` fake that answers with ``version``."""
    target = root / f"versioned-{version}"
    shutil.copytree(FAKES / "versioned", target, dirs_exist_ok=True)
    (target / "version.txt").write_text(version)
    return target


def register(api: httpx.Client, model: str, artifact: Path) -> str:
    """Register ``artifact`` as a new version of ``model`` (made if missing); its version."""
    created = api.post("/api/2.0/models", json={"name": model})
    assert created.status_code in (200, 409), created.text
    answer = api.post(f"/api/2.0/models/{model}/versions", json={"source": str(artifact)})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["model_version"]["version"])


def upload_version(client: httpx.Client, model: str, folder: Path) -> httpx.Response:
    """Register ``folder`` as a new version of ``model`` by uploading it (as users other than
    admins do: server-side paths are for admins)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname="model")
    files = {"file": ("model.tgz", buffer.getvalue(), "application/octet-stream")}
    return client.post(f"/api/2.0/models/{model}/versions", files=files)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register_model(api: httpx.Client, *artifacts: Path, prefix: str = "model") -> str:
    """A new uniquely named model with one version per artifact, in order (one ``ECHO`` if
    none is given); its name."""
    name = unique(prefix)
    for artifact in artifacts or (ECHO,):
        register(api, name, artifact)
    return name


def deploy(api: httpx.Client, artifact: Path, *, prefix: str = "ep", **body: Any) -> str:
    """A new endpoint serving a new model registered from ``artifact`` (both named alike),
    created with ``body``'s extra fields and READY; its name."""
    name = unique(prefix)
    register(api, name, artifact)
    config = {"served_entities": [entity(name, "1")]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config, **body})
    assert created.status_code == 200, created.text
    wait_ready(api, name)
    return name


def entity(model: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"entity_name": model, "entity_version": version, "workload_size": "Small", **extra}


def endpoint(api: httpx.Client, name: str) -> dict[str, Any]:
    answer = api.get(f"/api/2.0/serving-endpoints/{name}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def wait_settled(api: httpx.Client, name: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until no update is in progress and return the endpoint."""
    wait_until(
        lambda: endpoint(api, name)["state"]["config_update"] != "IN_PROGRESS",
        timeout=timeout,
        what=f"endpoint {name} to finish its config update",
    )
    return endpoint(api, name)


def wait_ready(api: httpx.Client, name: str, timeout: float = 60) -> dict[str, Any]:
    state = wait_settled(api, name, timeout)["state"]
    assert state["config_update"] == "NOT_UPDATING", state
    wait_until(
        lambda: endpoint(api, name)["state"]["ready"] == "READY",
        timeout=timeout,
        what=f"endpoint {name} to be READY",
    )
    return endpoint(api, name)


def requested(detail: dict[str, Any]) -> dict[str, Any]:
    """An endpoint's JSON as requests left it: without what the controller observes on its
    own, the endpoint's ``ready`` and each served entity's deployment ``state`` and replica
    counts."""
    body = {**detail, "state": {"config_update": detail["state"]["config_update"]}}
    for key in ("config", "pending_config"):
        if key in body:
            body[key] = {part: _stateless(value) for part, value in body[key].items()}
    return body


def _stateless(value: Any) -> Any:
    """A list of served entities (or models) without what the controller observes; anything
    else as is."""
    if not isinstance(value, list):
        return value
    return [{k: v for k, v in item.items() if k not in OBSERVED} for item in value]


def update_under_load(
    api: httpx.Client, url: str, token: str, name: str, version: str, timeout: float = 60
) -> tuple[dict[str, Any], Load]:
    """Switch ``name`` to ``version`` of its model while clients query it; wait it out."""
    with Load(url, token, name) as load:
        put = api.put(
            f"/api/2.0/serving-endpoints/{name}/config",
            json={"served_entities": [entity(name, version)]},
        )
        assert put.status_code == 200, put.text
        settled = wait_settled(api, name, timeout=timeout)
    return settled, load


def swap_under_load(
    api: httpx.Client, url: str, token: str, name: str, versions: list[str]
) -> Load:
    """Switch ``name`` through each of ``versions`` in turn while six clients query it at
    ``url``, each update waited out; the load, for the caller to check."""
    with Load(url, token, name, clients=6) as load:
        for version in versions:
            put = api.put(
                f"/api/2.0/serving-endpoints/{name}/config",
                json={"served_entities": [entity(name, version)]},
            )
            assert put.status_code == 200, put.text
            assert wait_settled(api, name)["state"]["config_update"] == "NOT_UPDATING"
            answer = api.post(f"/serving-endpoints/{name}/invocations", json={"x": 1})
            assert answer.json()["version"] == version
    return load
