"""Calls to providers cannot be turned on the inside: checked when a config is stored and again
as each connection resolves, so a name that resolves elsewhere later still cannot."""

from __future__ import annotations

import pytest

from berth.core.errors import InvalidParameter
from berth.providers.egress import Egress

STRICT = Egress()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://api.example.com/v1", "https"),
        ("https://127.0.0.1:8443/v1", "internal address"),
        ("https://localhost/v1", "internal address"),
        ("https://169.254.169.254/latest", "internal address"),
        ("https://10.1.2.3/v1", "internal address"),
        ("https://[::1]/v1", "internal address"),
        ("ftp://files.example.com/x", "https://"),
    ],
)
def test_internal_or_plain_http_base_urls_are_refused_when_stored(url: str, says: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        STRICT.check_url(url, "openai_config.openai_api_base")
    assert says in refused.value.message
    assert "openai_config.openai_api_base" in refused.value.message


def test_the_operators_allow_list_admits_a_host_over_http() -> None:
    Egress(frozenset({"localhost"})).check_url("http://localhost:9000/v1", "x")
    Egress(allow_http=True).check_url("http://1.1.1.1/v1", "x")
