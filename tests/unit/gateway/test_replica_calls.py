"""How OpenAI-route bodies are adapted for model replicas, and where fallbacks go."""

from __future__ import annotations

import base64
import json
import struct

from berth.core.dataplane import EntityRoute, ReplicaRoute
from berth.gateway.balancer import fallback_order
from berth.gateway.replicas import base64_embeddings, replica_call


def test_plain_bodies_go_through_untouched_and_unparsed() -> None:
    body = b'{"dataframe_split": {"columns": ["model"], "data": [[1]]}, "model": 3}'
    assert replica_call(body, None, openai=False).body is body
    assert not replica_call(body, None, openai=False).stream


def test_an_openai_request_loses_the_endpoint_name_and_the_encoding() -> None:
    request = {"model": "emb", "input": ["a"], "encoding_format": "base64"}
    call = replica_call(json.dumps(request).encode(), request, openai=True)
    assert json.loads(call.body) == {"input": ["a"]}
    assert call.base64 and not call.stream


def test_an_invocations_body_keeps_model_but_may_ask_for_a_stream() -> None:
    call = replica_call(b'{"model": "x", "messages": [], "stream": true}', None, openai=False)
    assert call.stream and call.body == b'{"model": "x", "messages": [], "stream": true}'
    assert not replica_call(b'{"text": "say \\"stream\\""}', None, openai=False).stream
    assert not replica_call(b'["stream"]', None, openai=False).stream


def test_float_embeddings_are_encoded_as_the_openai_sdk_decodes_them() -> None:
    answer = {"data": [{"index": 0, "embedding": [0.5, -1.0]}], "usage": {"prompt_tokens": 2}}
    encoded = json.loads(base64_embeddings(json.dumps(answer).encode()))
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.5, -1.0)
    assert encoded["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert base64_embeddings(b'{"predictions": [1]}') == b'{"predictions": [1]}'


def _external(name: str, traffic: int) -> EntityRoute:
    return EntityRoute(name, traffic, (), {"name": name})


def test_fallbacks_follow_the_configured_order_wrapping_around() -> None:
    a, b, c, d = (_external(n, t) for n, t in [("a", 50), ("b", 50), ("c", 0), ("d", 0)])
    served = EntityRoute("m", 0, (ReplicaRoute("r", "127.0.0.1:1", 1),))
    assert [e.name for e in fallback_order((a, b, served, c, d), b)] == ["b", "c", "d"]
    assert [e.name for e in fallback_order((a, b, c), c)] == ["c", "a", "b"]
    assert [e.name for e in fallback_order((a,), a)] == ["a"]
