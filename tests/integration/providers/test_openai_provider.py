"""OpenAI, Azure OpenAI and custom providers against the fake server, over real HTTP."""

from __future__ import annotations

import array
import asyncio
import base64
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import pytest

from berth.core.errors import DeadlineExceeded, NotFound, RateLimited, Unavailable
from berth.providers import Provider, ProviderCredentialsRejected, provider_for
from tests.fakes.llm_server import FakeLlmServer
from tests.support.providers import RecordedSleeps, chat, no_secrets, openai_provider, options

pytestmark = pytest.mark.integration

T = TypeVar("T")


def call(provider: Provider, use: Callable[[Provider], Awaitable[T]]) -> T:
    async def scenario() -> T:
        try:
            return await use(provider)
        finally:
            await provider.aclose()

    return asyncio.run(scenario())


async def collect(stream: Any) -> list[dict[str, Any]]:
    async with aclosing(stream) as chunks:
        return [chunk async for chunk in chunks]


def test_chat_sends_the_provider_model_and_answers_openai_json(llm_server: FakeLlmServer) -> None:
    answer = call(
        openai_provider(llm_server), lambda p: p.chat(chat("hello big world", model="ep"))
    )
    assert answer["choices"][0]["message"]["content"] == "world big hello"
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    sent = llm_server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-fake"
    assert sent.headers["authorization"] == f"Bearer {llm_server.api_key}"


def test_extra_params_are_merged_into_the_upstream_body(llm_server: FakeLlmServer) -> None:
    request = chat("a b", extra_params={"seed": 7}, max_tokens=1)
    answer = call(openai_provider(llm_server), lambda p: p.chat(request))
    assert llm_server.requests[0].body["seed"] == 7
    assert "extra_params" not in llm_server.requests[0].body
    assert answer["choices"][0]["finish_reason"] == "length"


def test_stream_yields_chunks_with_usage_on_the_last_one(llm_server: FakeLlmServer) -> None:
    chunks = call(openai_provider(llm_server), lambda p: collect(p.chat_stream(chat("a b c"))))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "c b a"
    assert len(chunks) > 3
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] == 6


def test_stream_with_include_usage_ends_with_a_usage_only_chunk(
    llm_server: FakeLlmServer,
) -> None:
    request = chat("a b c", stream_options={"include_usage": True})
    chunks = call(openai_provider(llm_server), lambda p: collect(p.chat_stream(request)))
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert sum(1 for c in chunks if c.get("usage")) == 1


def test_completions_and_their_stream(llm_server: FakeLlmServer) -> None:
    provider = openai_provider(llm_server)

    async def both(p: Provider) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return await p.completions({"prompt": "one two"}), await collect(
            p.completions_stream({"prompt": "one two"})
        )

    answer, chunks = call(provider, both)
    assert answer["object"] == "text_completion"
    assert answer["choices"][0]["text"] == "two one"
    assert "".join(c["choices"][0]["text"] for c in chunks) == "two one"
    assert chunks[-1]["usage"]["prompt_tokens"] == 2


def test_embeddings_as_floats(llm_server: FakeLlmServer) -> None:
    answer = call(openai_provider(llm_server), lambda p: p.embeddings({"input": ["a b", "c"]}))
    vectors = [item["embedding"] for item in answer["data"]]
    assert [len(v) for v in vectors] == [4, 4]
    assert all(isinstance(x, float) for x in vectors[0])
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_embeddings_in_base64_decode_as_the_openai_sdk_does(llm_server: FakeLlmServer) -> None:
    def both(p: Provider) -> Awaitable[list[dict[str, Any]]]:
        return asyncio.gather(
            p.embeddings({"input": "a b"}),
            p.embeddings({"input": "a b", "encoding_format": "base64"}),
        )

    floats, encoded = call(openai_provider(llm_server), both)
    decoded = array.array("f", base64.b64decode(encoded["data"][0]["embedding"])).tolist()
    assert decoded == floats["data"][0]["embedding"]
    assert all(r.body["encoding_format"] == "float" for r in llm_server.requests)


def test_429_then_success_is_retried_honouring_retry_after(llm_server: FakeLlmServer) -> None:
    llm_server.fail_next(2, status=429, retry_after="3")
    sleeps = RecordedSleeps()
    answer = call(openai_provider(llm_server, sleeps=sleeps), lambda p: p.chat(chat("x y")))
    assert answer["choices"][0]["message"]["content"] == "y x"
    assert sleeps == [3.0, 3.0]
    assert len(llm_server.requests) == 3


def test_503_then_success_backs_off_exponentially(llm_server: FakeLlmServer) -> None:
    llm_server.fail_next(2, status=503)
    sleeps = RecordedSleeps()
    provider = openai_provider(llm_server, sleeps=sleeps, backoff_base_s=1.0)
    call(provider, lambda p: p.chat(chat("x")))
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_5xx_after_the_retries_is_unavailable(llm_server: FakeLlmServer) -> None:
    llm_server.fail_next(3, status=500)
    with pytest.raises(Unavailable, match="openai provider answered 500"):
        call(openai_provider(llm_server), lambda p: p.chat(chat("x")))
    assert len(llm_server.requests) == 3


def test_429_with_a_long_retry_after_is_rate_limited_at_once(llm_server: FakeLlmServer) -> None:
    llm_server.fail_next(1, status=429, retry_after="600")
    with pytest.raises(RateLimited) as raised:
        call(openai_provider(llm_server), lambda p: p.chat(chat("x")))
    assert raised.value.retry_after == 600
    assert len(llm_server.requests) == 1


def test_stream_is_retried_before_its_first_chunk(llm_server: FakeLlmServer) -> None:
    llm_server.fail_next(1, status=429)
    chunks = call(openai_provider(llm_server), lambda p: collect(p.chat_stream(chat("a"))))
    assert chunks[-1]["usage"]["completion_tokens"] == 1


def test_wrong_key_names_the_provider_and_hides_the_key(llm_server: FakeLlmServer) -> None:
    wrong = "sk-wrong-secret-key-123456"
    with pytest.raises(ProviderCredentialsRejected) as raised:
        call(openai_provider(llm_server, key=wrong), lambda p: p.chat(chat("x")))
    message = raised.value.message
    assert "openai" in message and "Incorrect API key provided" in message
    assert wrong not in message and "secret-key" not in message
    assert raised.value.http_status == 403


def test_a_provider_that_does_not_answer_in_time_is_a_deadline(
    llm_server: FakeLlmServer,
) -> None:
    llm_server.hold_next(5)
    with pytest.raises(DeadlineExceeded, match="within 0.2s"):
        call(openai_provider(llm_server, timeout_s=0.2), lambda p: p.chat(chat("x")))


def test_an_unreachable_provider_is_unavailable_after_retries() -> None:
    server = FakeLlmServer().start()
    server.stop()
    sleeps = RecordedSleeps()
    with pytest.raises(Unavailable, match="could not be reached"):
        call(openai_provider(server, sleeps=sleeps), lambda p: p.chat(chat("x")))
    assert len(sleeps) == 2


def azure(server: FakeLlmServer, api_type: str = "azure") -> Provider:
    config = {
        "openai_api_key_plaintext": server.api_key,
        "openai_api_base": server.url,
        "openai_api_type": api_type,
        "openai_deployment_name": "my-gpt",
        "openai_api_version": "2024-10-21",
    }
    model = {"name": "gpt-4o", "provider": "openai", "openai_config": config}
    return provider_for(model, no_secrets, options())


def test_azure_uses_the_deployment_url_and_the_api_key_header(llm_server: FakeLlmServer) -> None:
    llm_server.key_headers = ("api-key",)
    answer = call(azure(llm_server), lambda p: p.chat(chat("p q")))
    sent = llm_server.requests[0]
    assert sent.path == "/openai/deployments/my-gpt/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == llm_server.api_key
    assert "authorization" not in sent.headers
    assert answer["choices"][0]["message"]["content"] == "q p"


def test_azuread_sends_the_token_as_a_bearer(llm_server: FakeLlmServer) -> None:
    call(azure(llm_server, "azuread"), lambda p: p.embeddings({"input": "e"}))
    sent = llm_server.requests[0]
    assert sent.path == "/openai/deployments/my-gpt/embeddings"
    assert sent.headers["authorization"] == f"Bearer {llm_server.api_key}"


def test_organization_header_is_sent(llm_server: FakeLlmServer) -> None:
    config = {
        "openai_api_key": "{{secrets/llm/openai}}",
        "openai_api_base": llm_server.url + "/v1",
        "openai_organization": "org-berth",
    }
    model = {"name": "gpt-fake", "provider": "openai", "openai_config": config}
    secrets = {"{{secrets/llm/openai}}": llm_server.api_key}
    call(provider_for(model, secrets.__getitem__, options()), lambda p: p.chat(chat("x")))
    assert llm_server.requests[0].headers["openai-organization"] == "org-berth"


def custom(server: FakeLlmServer, url: str, auth: dict[str, Any]) -> Provider:
    config = {"custom_provider_url": url, **auth}
    model = {"name": "my-llama", "provider": "custom", "custom_provider_config": config}
    return provider_for(model, no_secrets, options())


def test_custom_provider_with_bearer_auth(llm_server: FakeLlmServer) -> None:
    auth = {"bearer_token_auth": {"token_plaintext": llm_server.api_key}}
    provider = custom(llm_server, llm_server.url + "/v1/", auth)
    answer = call(provider, lambda p: p.chat(chat("m n")))
    assert answer["choices"][0]["message"]["content"] == "n m"
    assert llm_server.requests[0].body["model"] == "my-llama"


def test_custom_provider_with_api_key_auth_and_a_full_route_url(
    llm_server: FakeLlmServer,
) -> None:
    llm_server.key_headers = ("x-llm-key",)
    auth = {"api_key_auth": {"key": "X-LLM-Key", "value_plaintext": llm_server.api_key}}
    provider = custom(llm_server, llm_server.url + "/v1/completions", auth)
    answer = call(provider, lambda p: p.completions({"prompt": "u v"}))
    assert answer["choices"][0]["text"] == "v u"
    assert llm_server.requests[0].headers["x-llm-key"] == llm_server.api_key
    assert "authorization" not in llm_server.requests[0].headers


def test_custom_provider_with_the_wrong_api_key_header_is_refused(
    llm_server: FakeLlmServer,
) -> None:
    auth = {"api_key_auth": {"key": "x-other", "value_plaintext": llm_server.api_key}}
    with pytest.raises(ProviderCredentialsRejected, match="custom"):
        call(custom(llm_server, llm_server.url + "/v1", auth), lambda p: p.chat(chat("x")))


def test_unknown_model_route_is_not_found(llm_server: FakeLlmServer) -> None:
    auth = {"bearer_token_auth": {"token_plaintext": llm_server.api_key}}
    with pytest.raises(NotFound, match="custom provider answered 404"):
        call(custom(llm_server, llm_server.url + "/nowhere", auth), lambda p: p.chat(chat("x")))


def test_a_stream_closed_early_frees_its_connection(llm_server: FakeLlmServer) -> None:
    async def first_then_another(p: Provider) -> dict[str, Any]:
        async with aclosing(p.chat_stream(chat("a b c d"))) as stream:
            async for _ in stream:
                break
        return await p.chat(chat("e f"))

    provider = openai_provider(llm_server, max_connections=1)
    answer = call(provider, first_then_another)
    assert answer["choices"][0]["message"]["content"] == "f e"
