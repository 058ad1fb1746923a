"""Narrowing the endpoint list by state (any given) and by tag (all given)."""

from __future__ import annotations

import pytest

from berth.api.endpoint_filters import EndpointFilter
from berth.core.errors import InvalidParameter
from berth.core.states import ConfigUpdate, EndpointReady
from berth.store.endpoints import EndpointRecord
from tests.unit.api.test_endpoint_views import document, record

ENTITY = [{"name": "x", "entity_name": "m", "entity_version": "1", "workload_size": "Small"}]


def _endpoint(
    ready: str = "READY", update: str = "NOT_UPDATING", **tags: str | None
) -> EndpointRecord:
    pairs = [{"key": k} if v is None else {"key": k, "value": v} for k, v in tags.items()]
    return record(
        document(ENTITY),
        ready=EndpointReady(ready),
        config_update=ConfigUpdate(update),
        tags=pairs,
    )


def test_no_filter_keeps_every_endpoint() -> None:
    assert EndpointFilter.parse([], []).matches(_endpoint("NOT_READY", "UPDATE_FAILED"))


def test_a_state_matches_readiness_or_the_config_update_and_any_given_state_will_do() -> None:
    failed = _endpoint("NOT_READY", "UPDATE_FAILED")
    assert EndpointFilter.parse(["update_failed"], []).matches(failed)
    assert EndpointFilter.parse(["NOT_READY"], []).matches(failed)
    assert EndpointFilter.parse(["READY", "UPDATE_FAILED"], []).matches(failed)
    assert not EndpointFilter.parse(["READY"], []).matches(failed)
    assert not EndpointFilter.parse(["IN_PROGRESS"], []).matches(_endpoint())


def test_every_tag_must_match_a_key_alone_matching_any_value() -> None:
    tagged = _endpoint(team="search", bare=None)
    assert EndpointFilter.parse([], ["team"]).matches(tagged)
    assert EndpointFilter.parse([], ["team=search", "bare"]).matches(tagged)
    assert not EndpointFilter.parse([], ["team=ads"]).matches(tagged)
    assert not EndpointFilter.parse([], ["team=search", "owner"]).matches(tagged)
    assert not EndpointFilter.parse([], ["bare=x"]).matches(tagged)


def test_a_value_may_hold_an_equals_sign() -> None:
    assert EndpointFilter.parse([], ["query=a=b"]).matches(_endpoint(query="a=b"))


@pytest.mark.parametrize(
    ("states", "tags", "message"),
    [
        (["RUNNING"], [], "Unknown state RUNNING: filter by READY, NOT_READY, NOT_UPDATING"),
        ([], ["=x"], "tag '=x' has no key: give key or key=value."),
    ],
)
def test_a_bad_filter_is_refused_with_what_to_give(
    states: list[str], tags: list[str], message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(")):
        EndpointFilter.parse(states, tags)
