"""The metrics history of an endpoint, from a real server: every request counted per minute
(tracked for usage or not), latency percentiles within what its clients measured, replicas as
the controller saw them; for CAN_VIEW and above, through the API, the SDK and the CLI."""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import httpx
import pytest

from berth.client import BerthClient
from berth.core.latency import LATENCY_BOUNDS_MS, bucket_of
from tests.support.cli import Cli
from tests.support.deploy import FAKES, deploy, unique
from tests.support.identity import make_user
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

SENT = 20


def history(client: httpx.Client, name: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/api/2.0/serving-endpoints/{name}/metrics-history", params=params)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_the_history_shows_each_minutes_requests_latency_tokens_and_replicas(
    api: httpx.Client, server: BerthServer
) -> None:
    name = deploy(api, FAKES / "chat_score")  # no usage_tracking_config: counted all the same
    entity = f"{name}-1"
    body = {"messages": [{"role": "user", "content": "two words"}]}
    took_ms = []
    for _ in range(SENT):
        started = time.perf_counter()
        assert api.post(f"/serving-endpoints/{name}/invocations", json=body).is_success
        took_ms.append((time.perf_counter() - started) * 1000)
    refused = api.post(f"/serving-endpoints/{name}/invocations", json={"messages": []})
    assert refused.status_code == 400

    def shown() -> bool:
        found = history(api, name, minutes=5)
        series = found["series"].get(entity)
        return (
            series is not None
            and sum(series["requests"]) == SENT + 1
            and series["replicas_current"][-1] == 1
        )

    wait_until(shown, timeout=30, what=f"{SENT + 1} requests and a ready replica in the history")
    found = history(api, name, minutes=5)
    assert found["step_s"] == 60 and len(found["minutes"]) == 5
    assert all(b - a == 60_000 for a, b in pairwise(found["minutes"]))
    assert found["minutes"][-1] <= found["now_ms"] < found["minutes"][-1] + 60_000
    assert 1 <= found["last_minute_s"] <= 60
    assert list(found["series"]) == [entity]
    series = found["series"][entity]
    assert sum(series["errors"]) == 1 and sum(series["requests"]) == SENT + 1
    assert series["replicas_desired"][-1] == 1
    assert found["total"]["requests"] == series["requests"]
    busy = [i for i, count in enumerate(series["requests"]) if count]
    assert all(series["p50_ms"][i] is not None for i in busy)
    assert all(series["p50_ms"][i] is None for i in range(5) if i not in busy)
    # berth's latency is within the client's; a percentile is interpolated within its bucket.
    ceiling = LATENCY_BOUNDS_MS[min(bucket_of(max(took_ms)), len(LATENCY_BOUNDS_MS) - 1)]
    for i in busy:
        assert 0 < series["p50_ms"][i] <= series["p99_ms"][i] <= ceiling
        assert series["output_tokens_per_s"][i] > 0 and series["input_tokens_per_s"][i] > 0
        assert series["requests_per_s"][i] > 0 and series["errors_per_s"][i] >= 0
    seconds = [60.0] * 4 + [found["last_minute_s"]]
    tokens = sum(rate * s for rate, s in zip(series["output_tokens_per_s"], seconds, strict=True))
    assert tokens == pytest.approx(2 * SENT, abs=0.1)

    with BerthClient(server.url, server.token) as sdk:
        assert sum(sdk.endpoints.metrics_history(name, minutes=60)["total"]["requests"]) == 21
    cli = Cli(server.url, server.token)
    assert "req/s" in cli.ok("endpoints", "metrics", name, "--entity", entity)
    assert cli.json("endpoints", "metrics", name, "--minutes", "3")["step_s"] == 60
    assert "no served entity 'nope'" in cli.fails(
        "endpoints", "metrics", name, "--entity", "nope", code=2
    )


def test_the_history_needs_can_view_and_an_endpoint_that_exists(
    api: httpx.Client, server: BerthServer
) -> None:
    name = deploy(api, FAKES / "chat_score")
    endpoint_id = api.get(f"/api/2.0/serving-endpoints/{name}").json()["id"]
    user_name = unique("watcher")
    _, user = make_user(api, server, user_name)
    with user:
        path = f"/api/2.0/serving-endpoints/{name}/metrics-history"
        assert user.get(path).status_code == 403
        grant = [{"user_name": user_name, "permission_level": "CAN_QUERY"}]
        permissions = f"/api/2.0/permissions/serving-endpoints/{endpoint_id}"
        assert api.patch(permissions, json={"access_control_list": grant}).is_success
        # CAN_QUERY holds CAN_VIEW (levels are ordered): the querier sees the charts.
        assert len(history(user, name)["minutes"]) == 60
    missing = api.get("/api/2.0/serving-endpoints/no-such-endpoint/metrics-history")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    for minutes in (0, 1441):
        answer = api.get(f"/api/2.0/serving-endpoints/{name}/metrics-history?minutes={minutes}")
        assert answer.status_code == 400, answer.text


def test_gateways_in_other_processes_report_sums_with_their_histograms(
    api: httpx.Client,
) -> None:
    name = deploy(api, FAKES / "chat_score")
    endpoint_id = api.get(f"/api/2.0/serving-endpoints/{name}").json()["id"]
    minute = history(api, name, minutes=2)["minutes"][-1]
    row = {
        "minute": minute,
        "endpoint": endpoint_id,
        "served_entity": f"{name}-1",
        "principal": "",
        "status": 200,
        "requests": 4,
        "input_tokens": 0,
        "output_tokens": 0,
        "latency_ms": 300.0,
    }
    buckets = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    buckets[bucket_of(75.0)] = 4
    report = {"usage": [{**row, "latency_buckets": buckets}, {**row, "status": 503}]}
    assert api.post("/api/2.0/berth/data-plane/usage", json=report).is_success
    series = history(api, name, minutes=2)["series"][f"{name}-1"]  # a minute may have begun
    assert sum(series["requests"]) == 8 and sum(series["errors"]) == 4
    # The 503s, as a gateway of an older berth reports them, come without a histogram.
    assert [ms for ms in series["p50_ms"] if ms is not None] == [75.0]
    too_short = {"usage": [{**row, "latency_buckets": [4]}]}
    assert api.post("/api/2.0/berth/data-plane/usage", json=too_short).status_code == 400
