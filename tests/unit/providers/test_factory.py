"""Building providers from Databricks external_model blocks."""

from __future__ import annotations

import pytest

from berth.core.errors import InvalidParameter
from berth.providers import provider_for
from tests.support.providers import no_secrets


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"provider": "cohere", "cohere_config": {}}, "not supported by berth yet"),
        ({"provider": "openai"}, "needs its openai_config block"),
        ({"provider": "openai", "openai_config": {}}, "openai_api_key or openai_api_key_plaintext"),
        (
            {
                "provider": "openai",
                "openai_config": {"openai_api_key_plaintext": "k", "openai_api_type": "azure"},
            },
            "needs openai_api_base",
        ),
        (
            {
                "provider": "openai",
                "openai_config": {"openai_api_key_plaintext": "k", "openai_api_type": "x"},
            },
            "use openai, azure or azuread",
        ),
        ({"provider": "custom", "custom_provider_config": {}}, "needs custom_provider_url"),
    ],
)
def test_configs_that_cannot_work_are_refused_with_the_fix(
    model: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        provider_for({"name": "m", **model}, no_secrets)
