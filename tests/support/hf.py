"""Hugging Face-style model folders for the suite: a tiny one written by hand (headers and
zeros, enough to register), and SmolLM2 converted from the suite's GGUF by transformers, for
the engine tests that have torch at hand."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.llm import smollm2_gguf

DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I8": 1, "U8": 1}
Tensors = Mapping[str, tuple[str, Sequence[int]]]
TORCH_PYTHON = "BERTH_TEST_TORCH_PYTHON"
"""A Python with torch, transformers and gguf, for the tests of the transformers engine
(about 3 GB that CI does not download): unset, those tests are skipped."""


def write_safetensors(
    path: Path, tensors: Tensors, metadata: Mapping[str, str] | None = None
) -> Path:
    """A safetensors file: the header length, the JSON header (padded with spaces to 8 bytes,
    as safetensors writes it), then zeros for the tensors (name: dtype, shape), end to end."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = math.prod(shape) * DTYPE_BYTES[dtype]
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return path


def tiny_folder(root: Path, *, chat_template: str | None = "{{ messages }}") -> Path:
    """A two-tensor Llama-shaped folder: config, tokenizer files and weights."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 8,
        "max_position_embeddings": 2048,
        "dtype": "bfloat16",
    }
    (root / "config.json").write_text(json.dumps(config))
    (root / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {}}))
    tokenizer_config: dict[str, object] = {"eos_token": "</s>"}
    if chat_template is not None:
        tokenizer_config["chat_template"] = chat_template
    (root / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    write_safetensors(
        root / "model.safetensors",
        {"embed.weight": ("BF16", (16, 8)), "norm.weight": ("BF16", (8,))},
    )
    return root


CONVERT = """
import sys
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, out = Path(sys.argv[1]), sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
config = quantized.config
del config.quantization_config  # dequantized: saved as plain weights
model = AutoModelForCausalLM.from_config(config)
model.load_state_dict(quantized.state_dict())
model.save_pretrained(out)
tokenizer.save_pretrained(out)
"""


def smollm2_folder(root: Path) -> Path:
    """SmolLM2 as ``save_pretrained`` writes it (dequantized from the suite's GGUF by the
    interpreter ``BERTH_TEST_TORCH_PYTHON`` names)."""
    python = os.environ[TORCH_PYTHON]
    done = subprocess.run(
        [python, "-c", CONVERT, str(smollm2_gguf()), str(root)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root
