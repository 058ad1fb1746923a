"""Quotas on what one user may ask for, and caps on control-plane bodies."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.support.deploy import ECHO, entity, register, unique
from tests.support.identity import make_user
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


@pytest.fixture
def small(make_server: Callable[..., BerthServer]) -> BerthServer:
    return make_server(
        BERTH_QUOTAS__ENDPOINTS_PER_USER="1",
        BERTH_QUOTAS__MODELS_PER_USER="1",
        BERTH_QUOTAS__REPLICAS_PER_ENTITY="2",
        BERTH_QUOTAS__REPLICAS_PER_USER="3",
        BERTH_SERVER__MAX_BODY_BYTES="20000",
    )


def endpoint(model: str, **extra: object) -> dict[str, object]:
    return {"name": unique("q"), "config": {"served_entities": [entity(model, "1", **extra)]}}


def test_quotas_name_themselves_and_their_setting(small: BerthServer) -> None:
    with small.client() as api:
        model = unique("shared")
        register(api, model, ECHO)
        # Per entity: binds admins too.
        big = endpoint(
            model, workload_size=None, min_provisioned_concurrency=4, max_provisioned_concurrency=12
        )
        refused = api.post("/api/2.0/serving-endpoints", json=big)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
        assert "BERTH_QUOTAS__REPLICAS_PER_ENTITY" in refused.json()["message"]

        name = f"quota-{uuid.uuid4().hex[:6]}"
        _, user = make_user(api, small, name)
        reader = {"user_name": name, "permission_level": "CAN_READ"}
        grant = {"access_control_list": [reader]}
        assert api.patch(f"/api/2.0/permissions/registered-models/{model}", json=grant).is_success
        with user:
            assert user.post("/api/2.0/models", json={"name": unique("m")}).status_code == 200
            second = user.post("/api/2.0/models", json={"name": unique("m")})
            assert second.status_code == 400, second.text
            assert "BERTH_QUOTAS__MODELS_PER_USER" in second.json()["message"]

            eight = endpoint(
                model,
                workload_size=None,
                min_provisioned_concurrency=4,
                max_provisioned_concurrency=8,
            )
            assert user.post("/api/2.0/serving-endpoints", json=eight).status_code == 200
            another = user.post("/api/2.0/serving-endpoints", json=endpoint(model))
            assert another.status_code == 400, another.text
            assert "BERTH_QUOTAS__ENDPOINTS_PER_USER" in another.json()["message"]


def test_control_plane_bodies_are_capped(small: BerthServer) -> None:
    with small.client() as api:
        body = {"name": unique("m"), "description": "x" * 30_000}
        refused = api.post("/api/2.0/models", json=body)
        assert refused.status_code == 413, refused.text
        assert "20000" in refused.json()["message"]

        def chunks() -> object:
            yield b'{"name": "chunked", "description": "'
            for _ in range(30):
                yield b"x" * 1000
            yield b'"}'

        streamed = httpx.post(
            f"{small.url}/api/2.0/models",
            content=chunks(),  # type: ignore[arg-type]
            headers={"Authorization": f"Bearer {small.token}", "content-type": "application/json"},
        )
        assert streamed.status_code == 413, streamed.text
