"""Schemathesis over the control plane's OpenAPI document, against a real ``berth serve``:
zero 5xx and zero answers that break the document's own response schemas."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

EXAMPLES = 25
"""Per operation; derandomized, so every run sends the same requests."""
LEFT_OUT = {
    ("GET", "/api/2.0/berth/data-plane"): "a long poll: each call may wait up to a minute",
    ("POST", "/api/2.0/token/delete"): "could revoke the admin token the fuzzer runs with",
}
ADMIN_PATHS = ("/api/2.0/preview/scim/v2/Users/{principal_id}",)
"""Changing or deleting the admin itself would lock the fuzzer out: its id is skipped."""


def test_the_control_plane_answers_no_5xx_and_keeps_its_schema(
    make_server: Callable[..., BerthServer],
) -> None:
    server = make_server()
    headers = {"Authorization": f"Bearer {server.token}"}
    document = httpx.get(f"{server.url}/api/2.0/openapi.json").json()
    admin_id = httpx.get(f"{server.url}/api/2.0/preview/scim/v2/Me", headers=headers).json()["id"]
    schema = schemathesis.openapi.from_dict(document)
    failures: Counter[str] = Counter()
    sent = Counter[str]()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key not in LEFT_OUT:
            _fuzz(operation, key, server, headers, admin_id, sent, failures)
    total = sum(sent.values())
    print(f"\nfuzzed {len(sent)} operations x up to {EXAMPLES} examples: {total} requests")
    assert len(sent) > 50
    assert failures == Counter(), "\n".join(failures)


def _fuzz(
    operation: Any,
    key: tuple[str, str],
    server: BerthServer,
    headers: dict[str, str],
    admin_id: str,
    sent: Counter[str],
    failures: Counter[str],
) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def check(case: Any) -> None:
        params = case.path_parameters or {}
        if key[1] in ADMIN_PATHS and str(params.get("principal_id")) == admin_id:
            return
        sent[f"{key[0]} {key[1]}"] += 1
        answer = case.call(base_url=server.url, headers=headers, timeout=30)
        try:
            case.validate_response(answer, checks=[not_a_server_error, response_schema_conformance])
        except BaseException as exc:  # schemathesis raises exception groups
            failures[f"{key[0]} {key[1]} -> {answer.status_code}: {str(exc)[:300]}"] += 1

    check()
