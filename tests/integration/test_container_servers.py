"""Model servers no one here wrote, each served as a custom container process: llama.cpp's
server (through the ``xllamacpp`` package) on the SmolLM2 GGUF, declared an LLM so that
berth's OpenAI routes reach it, and ``mlflow models serve`` on an MLflow model. Each server
learns its port only from Vertex's variables."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from berth.envs.spec import ENGINE_REQUIREMENTS, PYFUNC_IMPORTS
from tests.support.deploy import FAKES, entity, unique, wait_ready, wait_settled
from tests.support.llm import smollm2_gguf
from tests.support.servers import FAST_SCALING, BerthServer

pytestmark = pytest.mark.integration

CHAT = [{"role": "user", "content": "Name three colors."}]
SERVE_PY = '''
"""llama.cpp's server on the GGUF of this version's artifact (``AIP_STORAGE_URI``), on the
port given as its one argument, until SIGTERM."""
import os, signal, sys
from pathlib import Path
from urllib.parse import urlparse

stop = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before llama.cpp's threads inherit it
import xllamacpp

params = xllamacpp.CommonParams()
params.model.path = str(next(Path(urlparse(os.environ["AIP_STORAGE_URI"]).path).glob("*.gguf")))
params.hostnames = ["127.0.0.1"]
params.port = int(sys.argv[1])
params.n_parallel = 2
params.n_ctx = 2 * 2048
for cpu in (params.cpuparams, params.cpuparams_batch):
    cpu.n_threads = 1
    cpu.poll = 0  # no busy-waiting: the cores are shared
server = xllamacpp.Server(params)
signal.sigwait(stop)
del server
'''
LLAMA_SPEC = {
    "command": ["python", "serve.py"],
    "args": ["$(AIP_HTTP_PORT)"],
    "health_route": "/health",
    # llama-server reads Vertex's variables too: it answers Vertex's predict bodies on
    # AIP_PREDICT_ROUTE, and exits when that is one of its own routes (/v1/chat/completions).
    "predict_route": "/predict",
}

MLSERVER = "mlserver==1.7.1"
MLFLOW_SPEC = {
    "command": ["mlflow", "models", "serve", "-m", ".", "--env-manager", "local"],
    "args": ["--host", "127.0.0.1", "--port", "$(AIP_HTTP_PORT)"],
    "health_route": "/ping",
    "predict_route": "/invocations",
}

MLSERVER_MODEL = """
from mlserver import MLModel
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class RowSums(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensor = payload.inputs[0]
        rows, columns = tensor.shape
        data = list(tensor.data)
        sums = [sum(data[r * columns : (r + 1) * columns]) for r in range(rows)]
        output = ResponseOutput(name="sum", shape=[rows], datatype="FP64", data=sums)
        return InferenceResponse(model_name=self.name, outputs=[output])
"""
MLSERVER_SPEC = {
    "command": ["mlserver", "start", "."],
    # MLServer reads its settings from MLSERVER_* variables: its port from Vertex's.
    "env": [
        {"name": "MLSERVER_HTTP_PORT", "value": "$(AIP_HTTP_PORT)"},
        {"name": "MLSERVER_HOST", "value": "127.0.0.1"},
        {"name": "MLSERVER_PARALLEL_WORKERS", "value": "0"},
        {"name": "MLSERVER_METRICS_DIR", "value": "/tmp"},
    ],
    "health_route": "/v2/health/ready",
    "predict_route": "/v2/models/sums/infer",
}


@pytest.fixture(scope="module")
def server(make_server: Callable[..., BerthServer]) -> BerthServer:
    return make_server(**FAST_SCALING)


@pytest.fixture(scope="module")
def llama(server: BerthServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An endpoint serving llama.cpp's server as a container version that declares
    ``llm/v1/chat``: the GGUF (a link: registration copies it), the launcher, and the same
    xllamacpp that berth's own engine uses, so its environment is the engine's."""
    folder = tmp_path_factory.mktemp("llama")
    os.link(smollm2_gguf(), folder / smollm2_gguf().name)
    (folder / "serve.py").write_text(SERVE_PY)
    (folder / "requirements.txt").write_text("\n".join(ENGINE_REQUIREMENTS) + "\n")
    name = unique("llama")
    with server.client() as api:
        serve(api, name, folder, LLAMA_SPEC, task="llm/v1/chat")
    return name


def serve(api: httpx.Client, name: str, folder: Path, spec: dict[str, Any], **extra: str) -> None:
    """Register ``folder`` as a container version of model ``name`` and serve it from an
    endpoint of the same name, once ready."""
    assert api.post("/api/2.0/models", json={"name": name}).status_code == 200
    body = {"source": str(folder), "container_spec": spec, **extra}
    registered = api.post(f"/api/2.0/models/{name}/versions", json=body)
    assert registered.status_code == 200, registered.text
    config = {"served_entities": [entity(name, "1", scale_to_zero_enabled=False)]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    settled = wait_settled(api, name, timeout=300)
    assert settled["state"]["config_update"] == "NOT_UPDATING", json.dumps(settled)
    wait_ready(api, name)


def test_llama_cpp_chats_through_the_openai_sdk_whole_and_streamed(
    sdk: openai.OpenAI, llama: str
) -> None:
    whole = sdk.chat.completions.create(model=llama, messages=CHAT, max_tokens=8)  # type: ignore[arg-type]
    assert whole.choices[0].message.content
    assert whole.usage is not None and whole.usage.completion_tokens > 0

    chunks = list(
        sdk.chat.completions.create(model=llama, messages=CHAT, max_tokens=8, stream=True)  # type: ignore[arg-type]
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    [usage] = [c.usage for c in chunks if c.usage is not None]
    assert usage.completion_tokens > 0


def test_llama_cpp_completes_through_the_openai_sdk(sdk: openai.OpenAI, llama: str) -> None:
    answer = sdk.completions.create(model=llama, prompt="Once upon a time", max_tokens=8)
    assert answer.choices[0].text
    assert answer.usage is not None and answer.usage.completion_tokens > 0


def test_llama_cpp_answers_a_databricks_chat_body_on_invocations(
    api: httpx.Client, llama: str
) -> None:
    answer = api.post(
        f"/serving-endpoints/{llama}/invocations",
        json={"messages": CHAT, "max_tokens": 8},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["served-model-name"] == f"{llama}-1"
    assert answer.json()["choices"][0]["message"]["content"]
    assert answer.json()["usage"]["completion_tokens"] > 0


def test_llama_cpp_answers_vertex_predict_bodies_on_its_predict_route(
    api: httpx.Client, llama: str
) -> None:
    """llama-server's own Vertex handler: each instance names the route it is for."""
    instance = {"@requestFormat": "chatCompletions", "messages": CHAT, "max_tokens": 8}
    answer = api.post(
        f"/serving-endpoints/{llama}/invocations", json={"instances": [instance]}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    [prediction] = answer.json()["predictions"]
    assert prediction["choices"][0]["message"]["content"]


def test_a_token_limit_settles_on_the_usage_llama_cpp_streams(
    api: httpx.Client, llama: str
) -> None:
    """The stream asks for its usage, and the limit counts it: without it, nothing would be
    spent and no request refused."""
    name = unique("llama-tokens")
    limit = {"tokens": 40, "key": "endpoint", "renewal_period": "minute"}
    body = {
        "name": name,
        "config": {"served_entities": [entity(llama, "1", scale_to_zero_enabled=False)]},
        "ai_gateway": {"rate_limits": [limit]},
    }
    assert api.post("/api/2.0/serving-endpoints", json=body).status_code == 200
    wait_ready(api, name, timeout=120)
    chat = {"messages": CHAT, "max_tokens": 8, "stream": True}
    used = 0
    for _ in range(10):
        answer = api.post(f"/serving-endpoints/{name}/invocations", json=chat, timeout=60)
        if answer.status_code != 200:
            break
        [last] = [e for e in answer.text.split("\n\n") if '"usage"' in e]
        used += json.loads(last.removeprefix("data: "))["usage"]["total_tokens"]
    assert answer.status_code == 429, answer.text
    assert "tokens" in answer.json()["message"]
    assert 0 < used <= 40 + 8


def test_mlflow_models_serve_answers_invocations_on_its_own_routes(
    api: httpx.Client, tmp_path: Path
) -> None:
    """The MLflow model's folder, its environment MLflow's scoring server with what
    ``mlflow.pyfunc`` imports (``requirements.txt``)."""
    folder = tmp_path / "sum"
    shutil.copytree(FAKES / "sum_mlflow", folder)
    (folder / "requirements.txt").write_text("\n".join(("mlflow-skinny", *PYFUNC_IMPORTS)) + "\n")
    name = unique("mlflow-serve")
    serve(api, name, folder, MLFLOW_SPEC)
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4.5]]}}
    answer = api.post(f"/serving-endpoints/{name}/invocations", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [{"0": 3.0}, {"0": 7.5}]}  # MLflow's own shape
    refused = api.post(f"/serving-endpoints/{name}/invocations", json={"dataframe_split": 1})
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "BAD_REQUEST"


def test_mlservers_v2_server_answers_its_inference_protocol(
    api: httpx.Client, tmp_path: Path
) -> None:
    """Seldon's MLServer with a model class of the test's own, on the V2 inference protocol
    (predict ``/v2/models/{name}/infer``, health ``/v2/health/ready``)."""
    folder = tmp_path / "sums"
    folder.mkdir()
    (folder / "models.py").write_text(MLSERVER_MODEL)
    settings = {"name": "sums", "implementation": "models.RowSums"}
    (folder / "model-settings.json").write_text(json.dumps(settings))
    (folder / "requirements.txt").write_text(f"{MLSERVER}\n")
    name = unique("mlserver")
    serve(api, name, folder, MLSERVER_SPEC)
    tensor = {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4.5]}
    answer = api.post(f"/serving-endpoints/{name}/invocations", json={"inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_name"] == "sums"
    assert answer.json()["outputs"][0]["data"] == [3, 7.5]
    wrong = api.post(f"/serving-endpoints/{name}/invocations", json={"inputs": "none"})
    assert wrong.status_code == 422, wrong.text  # MLServer's own validation
